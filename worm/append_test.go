package worm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// abandon stops the appender as a crash would: no stop event, no final
// fsync, no clean marker.
func (a *Appender) abandon() {
	a.abandoned.Store(true)
	a.closing.Store(true)
	close(a.stop)
	<-a.seqDone
	close(a.sealStop)
	<-a.sealDone
	a.unlock()
}

type appendFixture struct {
	t       *testing.T
	key     testKey
	store   Store
	spool   string
	notices []Finding // from the last verify
}

func newAppendFixture(t *testing.T) *appendFixture {
	return &appendFixture{t: t, key: newTestKey(t, "gw-test"), store: NewMemStore(), spool: t.TempDir()}
}

func (f *appendFixture) options() AppenderOptions {
	return AppenderOptions{
		Stream: "s1", Spool: f.spool,
		Sealer:        &Sealer{Store: f.store, Signer: f.key.signer},
		RetryInterval: 10 * time.Millisecond,
	}
}

func (f *appendFixture) open(o AppenderOptions) *Appender {
	f.t.Helper()
	a, err := OpenAppender(context.Background(), o)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *appendFixture) close(a *Appender) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// verify checks the whole trail and returns its records.
func (f *appendFixture) verify() []map[string]any {
	f.t.Helper()
	trust, err := ParseTrust("test", []byte(f.key.vkey+"\n"))
	if err != nil {
		f.t.Fatal(err)
	}
	rep := vtVerify(f.t, f.store, VerifyOptions{Trust: trust})
	if !rep.OK() {
		f.t.Fatalf("trail does not verify: %v", rep.all())
	}
	f.notices = nil
	for _, s := range rep.Streams {
		f.notices = append(f.notices, s.Notices...)
	}
	var recs []map[string]any
	r := &Reader{Store: f.store}
	err = r.Scan(context.Background(), Filter{}, func(stream string, index uint64, line []byte) error {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return err
		}
		if uint64(len(recs)) != index {
			return fmt.Errorf("record %d comes at position %d", index, len(recs))
		}
		recs = append(recs, m)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return recs
}

var appendTestID atomic.Uint64

func testRecord(route string) []byte {
	n := appendTestID.Add(1)
	return fmt.Appendf(nil, `{"v":1,"id":"rec-%d","time":%q,"kind":"inference","stream":"s1","route":%q,"body":%q}`,
		n, time.Now().UTC().Format(TimeLayout), route, strings.Repeat("x", 200))
}

func kinds(recs []map[string]any) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[r["kind"].(string)]++
	}
	return m
}

func TestAppenderWritesAVerifiableTrail(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	o.MaxRecords = 10
	a := f.open(o)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				var err error
				if g%2 == 0 {
					err = a.Append(testRecord("async"))
				} else {
					err = a.AppendSync(context.Background(), testRecord("strict"))
				}
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	f.close(a)
	recs := f.verify()
	k := kinds(recs)
	if k["inference"] != 100 || k["event"] != 2 || k["gap"] != 0 {
		t.Errorf("kinds %v, want 100 inference and 2 events", k)
	}
	if got := recs[0]["event"].(map[string]any)["name"]; got != "trail.start" {
		t.Errorf("first record is %v, want the start event", recs[0])
	}
	if got := recs[len(recs)-1]["event"].(map[string]any)["name"]; got != "trail.stop" {
		t.Errorf("last record is %v, want the stop event", recs[len(recs)-1])
	}
	mans, _ := (&Reader{Store: f.store}).Manifests(context.Background(), "s1")
	if len(mans) < 11 {
		t.Errorf("%d segments for 102 records at 10 per segment", len(mans))
	}
	for _, m := range mans {
		if m.End-m.Start > 10 {
			t.Errorf("segment [%d, %d) holds more than MaxRecords", m.Start, m.End)
		}
	}
	if _, err := os.Stat(filepath.Join(f.spool, cleanMarker)); err != nil {
		t.Errorf("no clean marker after Close: %v", err)
	}
	if files, _ := spoolFiles(f.spool); len(files) != 0 {
		t.Errorf("spool files left after a clean close: %v", files)
	}
	st := a.Stats()
	if st.Appended != 102 || st.Sealed != 102 || st.Lost != 0 || st.PendingSegments != 0 {
		t.Errorf("stats %+v", st)
	}

	// A clean restart continues the stream with no gap.
	a = f.open(f.options())
	if err := a.Append(testRecord("again")); err != nil {
		t.Fatal(err)
	}
	f.close(a)
	recs = f.verify()
	if k := kinds(recs); k["inference"] != 101 || k["gap"] != 0 || k["event"] != 4 {
		t.Errorf("after a clean restart: kinds %v", k)
	}
}

func TestAppendSyncIsOnDiskWhenItReturns(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	var syncs atomic.Int64
	o.OpenFile = openHooked(hookFile{onSync: func() { syncs.Add(1) }})
	o.CommitInterval = time.Hour // only AppendSync fsyncs
	a := f.open(o)
	defer f.close(a)
	before := syncs.Load()
	line := testRecord("strict")
	if err := a.AppendSync(context.Background(), line); err != nil {
		t.Fatal(err)
	}
	if syncs.Load() == before {
		t.Fatal("AppendSync returned before any fsync")
	}
	data, _ := os.ReadFile(filepath.Join(f.spool, spoolName(0)))
	if !strings.Contains(string(data), string(line)+"\n") {
		t.Errorf("the spool file does not hold the record after AppendSync")
	}
	// Append alone does not fsync until the commit interval.
	before = syncs.Load()
	if err := a.Append(testRecord("async")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if syncs.Load() != before {
		t.Errorf("Append fsynced before its commit interval")
	}
}

// openHooked opens spool files as the appender does, wrapped in a copy
// of h.
func openHooked(h hookFile) func(name string) (SpoolFile, error) {
	return func(name string) (SpoolFile, error) {
		file, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		hf := h
		hf.File = file
		return &hf, err
	}
}

// hookFile wraps a spool file to count fsyncs or inject failures.
type hookFile struct {
	*os.File
	onSync func()
	fail   *atomic.Bool
	// While block is set, writes wait for release to close.
	block   *atomic.Bool
	release chan struct{}
}

func (h *hookFile) Write(p []byte) (int, error) {
	if h.block != nil && h.block.Load() {
		<-h.release
	}
	if h.fail != nil && h.fail.Load() {
		// A partial write, as a full disk gives.
		n, _ := h.File.Write(p[:len(p)/2])
		return n, errors.New("no space left on device")
	}
	return h.File.Write(p)
}

func (h *hookFile) Sync() error {
	if h.fail != nil && h.fail.Load() {
		return errors.New("input/output error")
	}
	if h.onSync != nil {
		h.onSync()
	}
	return h.File.Sync()
}

func TestAppenderRecoversFromACrash(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	o.MaxRecords = 7
	a := f.open(o)
	for range 30 {
		if err := a.AppendSync(context.Background(), testRecord("before")); err != nil {
			t.Fatal(err)
		}
	}
	a.abandon()
	if _, err := os.Stat(filepath.Join(f.spool, cleanMarker)); err == nil {
		t.Fatal("a crash left the clean marker")
	}
	// The crash tore the last line of the open segment.
	files, _ := spoolFiles(f.spool)
	if len(files) == 0 {
		t.Fatal("no spool file after the crash")
	}
	last := filepath.Join(f.spool, spoolName(files[len(files)-1]))
	torn := `{"v":1,"id":"torn","time":"2026-`
	fh, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(torn)
	fh.Close()

	a = f.open(o)
	if err := a.Append(testRecord("after")); err != nil {
		t.Fatal(err)
	}
	f.close(a)
	recs := f.verify()
	k := kinds(recs)
	if k["inference"] != 31 || k["gap"] != 1 {
		t.Fatalf("kinds %v: want 31 inference records and one gap", k)
	}
	var gap map[string]any
	for _, r := range recs {
		if r["kind"] == "gap" {
			gap = r["gap"].(map[string]any)
		}
	}
	if gap["reason"] != "unclean_shutdown" || gap["torn_bytes"] != float64(len(torn)) || gap["after"] != float64(30) {
		t.Errorf("gap record %v: want unclean_shutdown after record 30 with %d torn bytes", gap, len(torn))
	}
	if len(f.notices) != 1 || f.notices[0].Code != NoticeGapRecord {
		t.Errorf("verify notices %v, want the gap record", f.notices)
	}
}

func TestAppenderResealsAfterACrashBetweenSealAndState(t *testing.T) {
	// 5 records, and 1,500 (about 400 KB): the seal loop paces itself
	// between slices of the larger one, and must still write the bytes
	// Seal wrote, or the store would refuse them as a conflict.
	for _, n := range []int{5, 1500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { testReseal(t, n) })
	}
}

func testReseal(t *testing.T, n int) {
	f := newAppendFixture(t)
	o := f.options()
	a := f.open(o)
	for range n {
		a.Append(testRecord("x"))
	}
	if err := a.AppendSync(context.Background(), testRecord("x")); err != nil {
		t.Fatal(err)
	}
	// Seal the open segment by hand, as the crashed run did, without
	// persisting the state or removing the spool file.
	a.abandon()
	r, err := readSpoolFile(filepath.Join(f.spool, spoolName(0)), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Sealer.Seal(context.Background(), SealState{Stream: "s1"}, r.lines, r.first, r.last); err != nil {
		t.Fatal(err)
	}
	a = f.open(o)
	f.close(a)
	if k := kinds(f.verify()); k["inference"] != n+1 || k["gap"] != 1 {
		t.Errorf("kinds %v", k)
	}
}

func TestSealLoopPaced(t *testing.T) {
	l := &sealLoop{a: &Appender{o: AppenderOptions{MaxSpool: 1 << 30}}}
	if l.paced() {
		t.Error("paced with nothing queued")
	}
	l.queue = []*cut{{}}
	if !l.paced() {
		t.Error("not paced with only the segment being sealed queued")
	}
	l.queue = append(l.queue, &cut{})
	if l.paced() {
		t.Error("paced with a backlog")
	}
	l.queue = l.queue[:1]
	l.pendingBytes.Store(1 << 30)
	if l.paced() {
		t.Error("paced with the spool full")
	}
	l.pendingBytes.Store(0)
	l.closed = true
	if l.paced() {
		t.Error("paced while closing")
	}
}

func TestAppenderSpoolFailure(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	var fail atomic.Bool
	o.OpenFile = openHooked(hookFile{fail: &fail})
	o.RetryInterval = 20 * time.Millisecond
	a := f.open(o)
	for range 3 {
		if err := a.AppendSync(context.Background(), testRecord("ok")); err != nil {
			t.Fatal(err)
		}
	}
	fail.Store(true)
	err := a.AppendSync(context.Background(), testRecord("fails"))
	if !errors.Is(err, ErrTrailDown) {
		t.Fatalf("AppendSync on a failing disk: %v, want ErrTrailDown", err)
	}
	if err := a.Ready(); !errors.Is(err, ErrTrailDown) {
		t.Errorf("Ready while the spool fails: %v", err)
	}
	refused := 0 // the AppendSync caller knows; only Append records count as lost
	for range 4 {
		if err := a.Append(testRecord("refused")); !errors.Is(err, ErrTrailDown) {
			t.Errorf("Append while down: %v", err)
		}
		refused++
	}
	fail.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for a.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Ready(); err != nil {
		t.Fatalf("still down after the disk recovered: %v", err)
	}
	if err := a.AppendSync(context.Background(), testRecord("ok")); err != nil {
		t.Fatal(err)
	}
	f.close(a)
	recs := f.verify()
	var gaps []map[string]any
	for _, r := range recs {
		if r["kind"] == "gap" {
			gaps = append(gaps, r["gap"].(map[string]any))
		}
	}
	if len(gaps) != 1 || gaps[0]["reason"] != "trail_failure" || gaps[0]["lost"] != float64(refused) {
		t.Fatalf("gap records %v: want one trail_failure with lost=%d", gaps, refused)
	}
	if k := kinds(recs); k["inference"] != 4 {
		t.Errorf("kinds %v: want the 4 records written while the disk worked", k)
	}
	if st := a.Stats(); st.Lost != uint64(refused) || st.SpoolErrors == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestAppenderPushback(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	var block atomic.Bool
	release := make(chan struct{})
	o.OpenFile = openHooked(hookFile{block: &block, release: release})
	o.QueueRecords = 8
	a := f.open(o)
	block.Store(true)
	// The first record blocks the sequencer in Write; the queue then fills.
	var pushed, queued int
	for range 20 {
		switch err := a.Append(testRecord("x")); {
		case errors.Is(err, ErrPushback):
			pushed++
		case err == nil:
			queued++
		default:
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if pushed == 0 {
		t.Fatal("a full queue took every record")
	}
	if err := a.Ready(); !errors.Is(err, ErrPushback) {
		t.Errorf("Ready with a full queue: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	start := time.Now()
	err := a.AppendWait(ctx, testRecord("w"))
	cancel()
	if !errors.Is(err, ErrPushback) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 20*time.Millisecond {
		t.Errorf("AppendWait on a full queue: %v after %s, want ErrPushback at its deadline", err, time.Since(start))
	}
	pushed++
	// One that waits long enough gets in once the disk moves again.
	waited := make(chan error)
	go func() { waited <- a.AppendWait(context.Background(), testRecord("w")) }()
	time.Sleep(20 * time.Millisecond)
	block.Store(false)
	close(release)
	if err := <-waited; err != nil {
		t.Errorf("AppendWait once the queue drained: %v", err)
	}
	queued++
	f.close(a)
	recs := f.verify()
	k := kinds(recs)
	if k["inference"] != queued {
		t.Errorf("%d inference records in the trail, %d accepted", k["inference"], queued)
	}
	if k["gap"] != 1 {
		t.Errorf("kinds %v: want a gap record for the refused records", k)
	}
	for _, r := range recs {
		if r["kind"] == "gap" && r["gap"].(map[string]any)["lost"] != float64(pushed) {
			t.Errorf("gap record %v, want lost %d", r["gap"], pushed)
		}
	}
}

func TestAppenderHeartbeatAndAge(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	// Verify reports a silence longer than twice the heartbeat. The
	// heartbeat is long enough that a stall of the race-instrumented
	// sequencer on a busy machine stays well inside that.
	o.Heartbeat = 100 * time.Millisecond
	o.MaxAge = 150 * time.Millisecond
	a := f.open(o)
	time.Sleep(700 * time.Millisecond)
	if st := a.Stats(); st.Seals == 0 {
		t.Errorf("no segment sealed by age: %+v", st)
	}
	f.close(a)
	recs := f.verify()
	if k := kinds(recs); k["heartbeat"] < 3 {
		t.Errorf("kinds %v: want heartbeats every 100ms for 700ms", k)
	}
	if len(f.notices) != 0 {
		t.Errorf("notices on a trail with its heartbeats: %v", f.notices)
	}
	for _, r := range recs {
		if r["kind"] == "heartbeat" && r["heartbeat"].(map[string]any)["every_ms"] != float64(100) {
			t.Errorf("heartbeat %v", r)
		}
	}
}

func TestAppenderStoreOutage(t *testing.T) {
	f := newAppendFixture(t)
	flaky := &flakyStore{Store: f.store}
	flaky.down.Store(true)
	o := f.options()
	o.Sealer.Store = flaky
	o.MaxRecords = 3
	a := f.open(o)
	for range 10 {
		if err := a.Append(testRecord("x")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := a.Close(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "left unsealed") {
		t.Fatalf("Close with the store down: %v", err)
	}
	flaky.down.Store(false)
	a = f.open(o)
	f.close(a)
	if k := kinds(f.verify()); k["inference"] != 10 || k["gap"] != 0 {
		t.Errorf("kinds %v", k)
	}
}

// TestSealRefusesAChangedSpoolFile: a spool file changed on disk after
// its records were sequenced is not sealed; once it is as written again,
// it is.
func TestSealRefusesAChangedSpoolFile(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	a := f.open(o)
	for range 3 {
		if err := a.AppendSync(context.Background(), testRecord("x")); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(f.spool, spoolName(0))
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(orig, []byte(`"route":"x"`)) + len(`"route":"`)
	changed := bytes.Clone(orig)
	changed[i] = 'y'
	if err := os.WriteFile(path, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = a.Close(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "changed on disk") {
		t.Fatalf("Close with a changed spool file: %v", err)
	}
	if keys, err := f.store.List(context.Background(), ""); err != nil || len(keys) != 0 {
		t.Errorf("objects stored from a changed spool file: %v %v", keys, err)
	}
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	a = f.open(o)
	f.close(a)
	if k := kinds(f.verify()); k["inference"] != 3 {
		t.Errorf("kinds %v", k)
	}
}

type flakyStore struct {
	Store
	down atomic.Bool
}

func (s *flakyStore) Put(ctx context.Context, key string, data []byte) error {
	if s.down.Load() {
		return errors.New("connection refused")
	}
	return s.Store.Put(ctx, key, data)
}

func TestOpenAppenderRefuses(t *testing.T) {
	f := newAppendFixture(t)
	a := f.open(f.options())
	if _, err := OpenAppender(context.Background(), f.options()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second appender on one spool: %v", err)
	}
	f.close(a)

	// A fresh spool for a stream the store already holds.
	o := f.options()
	o.Spool = t.TempDir()
	if _, err := OpenAppender(context.Background(), o); err == nil || !strings.Contains(err.Error(), "already holds stream s1") {
		t.Errorf("new spool over an existing stream: %v", err)
	}

	a = f.open(f.options())
	defer f.close(a)
	for _, bad := range []string{``, `[1]`, `{"v":1}`, `{"v":1,"time":"yesterday"}`, "{\"time\":\"2026-01-01T00:00:00Z\",\n\"a\":1}", "{\"time\":\"2026-01-01T00:00:00Z\",\r\"a\":1}", "{\"time\":\"2026-01-01T00:00:00Z\",\"a\":\"\xff\"}"} {
		if err := a.Append([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("Append(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}

// TestAppenderCloseUnderLoad closes the appender while eight goroutines
// append: every record an Append call accepted is in the trail, every one
// it pushed back (appending as fast as it can, it may outrun the writer)
// is counted by a gap record, and every call after Close began is refused
// with ErrClosed.
func TestAppenderCloseUnderLoad(t *testing.T) {
	f := newAppendFixture(t)
	a := f.open(f.options())
	var accepted, pushedBack atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var err error
				switch g % 3 {
				case 0:
					err = a.Append(testRecord("x"))
				case 1:
					err = a.AppendWait(context.Background(), testRecord("x"))
				default:
					err = a.AppendSync(context.Background(), testRecord("x"))
				}
				switch {
				case err == nil:
					accepted.Add(1)
				case g%3 == 0 && errors.Is(err, ErrPushback):
					pushedBack.Add(1)
				case errors.Is(err, ErrClosed):
					return
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	f.close(a)
	wg.Wait()
	recs := f.verify()
	var lost int64
	for _, r := range recs {
		if r["kind"] == "gap" {
			n, _ := r["gap"].(map[string]any)["lost"].(float64)
			lost += int64(n)
		}
	}
	if k := kinds(recs); int64(k["inference"]) != accepted.Load() || lost != pushedBack.Load() {
		t.Errorf("kinds %v, %d records accepted; gap records state %d lost, %d were pushed back", k, accepted.Load(), lost, pushedBack.Load())
	}
}

// TestAppenderGapSurvivesFailedRetries: while the disk keeps failing, each
// retry writes the gap record again and loses it; once the disk works, one
// gap record states every lost record.
func TestAppenderGapSurvivesFailedRetries(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	var fail atomic.Bool
	o.OpenFile = openHooked(hookFile{fail: &fail})
	o.RetryInterval = 5 * time.Millisecond
	a := f.open(o)
	fail.Store(true)
	if err := a.AppendSync(context.Background(), testRecord("x")); !errors.Is(err, ErrTrailDown) {
		t.Fatalf("AppendSync on a failing disk: %v", err)
	}
	for range 10 {
		a.Append(testRecord("refused"))
	}
	time.Sleep(100 * time.Millisecond) // about 20 failed retries
	if st := a.Stats(); st.Lost != 10 {
		t.Errorf("Stats().Lost = %d while failing, want 10", st.Lost)
	}
	fail.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for a.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	f.close(a)
	var lost []any
	for _, r := range f.verify() {
		if r["kind"] == "gap" {
			lost = append(lost, r["gap"].(map[string]any)["lost"])
		}
	}
	if len(lost) != 1 || lost[0] != float64(10) {
		t.Errorf("gap records state %v lost, want one stating 10", lost)
	}
	if st := a.Stats(); st.Lost != 10 {
		t.Errorf("Stats().Lost = %d, want 10", st.Lost)
	}
}

// TestAppenderCloseWhileFailing keeps the count of lost records across a
// stop with the disk still failing: the next start states it.
func TestAppenderCloseWhileFailing(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	var fail atomic.Bool
	o.OpenFile = openHooked(hookFile{fail: &fail})
	a := f.open(o)
	fail.Store(true)
	for range 5 {
		a.Append(testRecord("accepted, then lost"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Ready() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Close(ctx); err == nil {
		t.Fatal("Close with a failing disk reported no error")
	}
	fail.Store(false)
	a = f.open(o)
	f.close(a)
	var gaps []map[string]any
	for _, r := range f.verify() {
		if r["kind"] == "gap" {
			gaps = append(gaps, r["gap"].(map[string]any))
		}
	}
	var stated float64
	for _, g := range gaps {
		if g["reason"] == "trail_failure" {
			stated += g["lost"].(float64)
		}
	}
	if stated != 5 {
		t.Errorf("gap records %v state %v lost, want 5", gaps, stated)
	}
}

// TestRecoveryRefusesDamage: a damaged record inside a cut segment makes
// Open fail without changing the spool; zeros after the last record of
// the open segment are a torn write, and are cut.
func TestRecoveryRefusesDamage(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	flaky := &flakyStore{Store: f.store}
	flaky.down.Store(true) // keep the cut segments in the spool
	o.Sealer.Store = flaky
	o.MaxRecords = 5
	a := f.open(o)
	for range 12 {
		if err := a.AppendSync(context.Background(), testRecord("x")); err != nil {
			t.Fatal(err)
		}
	}
	a.abandon()
	first := filepath.Join(f.spool, spoolName(0))
	data, _ := os.ReadFile(first)
	damaged := append([]byte(nil), data...)
	i := strings.Index(string(damaged), "\n") + 1
	damaged[i] = 'X' // the second record's opening brace
	os.WriteFile(first, damaged, 0o600)
	if _, err := OpenAppender(context.Background(), o); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Open over a damaged segment: %v", err)
	}
	if got, _ := os.ReadFile(first); len(got) != len(damaged) {
		t.Errorf("a failed Open changed the damaged file from %d to %d bytes", len(damaged), len(got))
	}
	os.WriteFile(first, data, 0o600)

	files, _ := spoolFiles(f.spool)
	last := filepath.Join(f.spool, spoolName(files[len(files)-1]))
	fh, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	fh.Write(make([]byte, 300))
	fh.Close()
	flaky.down.Store(false)
	a = f.open(o)
	f.close(a)
	recs := f.verify()
	if k := kinds(recs); k["inference"] != 12 || k["gap"] != 1 {
		t.Errorf("kinds %v", k)
	}
}

// TestAppenderStoreOutageBoundAndAlerts: with the store down, cut segments
// wait in the spool; at MaxSpool the trail refuses records with
// ErrSpoolFull; alert records say when the store failed and came back; and
// once it is back everything is sealed with the refusals counted.
func TestAppenderStoreOutageBoundAndAlerts(t *testing.T) {
	f := newAppendFixture(t)
	flaky := &flakyStore{Store: f.store}
	flaky.down.Store(true)
	o := f.options()
	o.Sealer.Store = flaky
	o.MaxRecords = 4
	o.MaxSpool = 3000 // about ten records of testRecord
	o.RetryInterval = 5 * time.Millisecond
	a := f.open(o)
	accepted, refused := 0, 0
	for range 40 {
		switch err := a.AppendSync(context.Background(), testRecord("x")); {
		case err == nil:
			accepted++
		case errors.Is(err, ErrSpoolFull):
			refused++
			if err := a.Append(testRecord("async")); !errors.Is(err, ErrSpoolFull) {
				t.Errorf("Append with the spool full: %v", err)
			}
		default:
			t.Fatal(err)
		}
	}
	if refused == 0 || accepted == 0 {
		t.Fatalf("%d accepted, %d refused: the spool bound did not apply", accepted, refused)
	}
	if err := a.Ready(); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Ready with the spool full: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // several failed seals: an alert
	flaky.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats().PendingSegments > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready once the store took the backlog: %v", err)
	}
	f.close(a)
	recs := f.verify()
	var alerts []string
	var lost float64
	for _, r := range recs {
		switch r["kind"] {
		case "alert":
			alerts = append(alerts, r["alert"].(map[string]any)["name"].(string))
		case "gap":
			lost += r["gap"].(map[string]any)["lost"].(float64)
		}
	}
	if len(alerts) != 2 || alerts[0] != "store_unreachable" || alerts[1] != "store_recovered" {
		t.Errorf("alerts %v, want store_unreachable then store_recovered", alerts)
	}
	if k := kinds(recs); k["inference"] != accepted || lost != float64(refused) {
		t.Errorf("%d inference records for %d accepted; gap records state %v lost for %d Append refusals", k["inference"], accepted, lost, refused)
	}
}

func TestAppenderRecentAndLatestCheckpoint(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	o.Recent = 3
	o.MaxRecords = 2
	a := f.open(o)
	if _, err := a.LatestCheckpoint(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("LatestCheckpoint before any seal: %v", err)
	}
	var lines [][]byte
	for range 5 {
		l := testRecord("x")
		lines = append(lines, l)
		a.AppendSync(context.Background(), l)
	}
	got := a.Recent(10)
	if len(got) != 3 || got[0].Index != 3 || string(got[2].Line) != string(lines[4]) || got[2].Index != 5 {
		t.Errorf("Recent = %d records, first index %d", len(got), got[0].Index)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats().Sealed < 4 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cp, err := a.LatestCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	trust, _ := ParseTrust("t", []byte(f.key.vkey+"\n"))
	c, err := OpenCheckpoint(cp, trust, "s1")
	// Sealing goes on meanwhile: the checkpoint is at least the one waited
	// for, and at most the latest.
	if err != nil || c.Size < 4 || c.Size > a.Stats().Sealed {
		t.Errorf("latest checkpoint: %v, size %d, sealed %d", err, c.Size, a.Stats().Sealed)
	}
	f.close(a)
}

// unreachableStore fails every call as an unreachable server does.
type unreachableStore struct{ Store }

func (unreachableStore) List(context.Context, string) ([]string, error) {
	return nil, fmt.Errorf("list: %w: connection refused", ErrUnavailable)
}

// TestOpenAppenderStoreUnreachable: a new stream starts although the store
// cannot be asked whether it holds the stream already.
func TestOpenAppenderStoreUnreachable(t *testing.T) {
	f := newAppendFixture(t)
	o := f.options()
	o.Sealer.Store = unreachableStore{f.store}
	a := f.open(o)
	if err := a.Append(testRecord("x")); err != nil {
		t.Fatal(err)
	}
	f.close(a)
	if k := kinds(f.verify()); k["inference"] != 1 {
		t.Errorf("kinds %v", k)
	}
}
