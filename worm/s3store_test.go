package worm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/auditgate/auditgate/worm/s3test"
)

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want S3Options
	}{
		{"s3://trail", S3Options{Bucket: "trail"}},
		{"s3://trail/", S3Options{Bucket: "trail"}},
		{"s3://trail/audit/eu/", S3Options{Bucket: "trail", Prefix: "audit/eu"}},
		{"s3://trail/audit?endpoint=127.0.0.1:7070&region=us-east-1&secure=false",
			S3Options{Bucket: "trail", Prefix: "audit", Endpoint: "127.0.0.1:7070", Region: "us-east-1", Insecure: true}},
		{"s3://trail?endpoint=s3.example.com&secure=true&mode=governance&retention=190d&legal_hold=true",
			S3Options{Bucket: "trail", Endpoint: "s3.example.com", Mode: S3ModeGovernance, Retention: 190 * 24 * time.Hour, LegalHold: true}},
		{"s3://trail?mode=COMPLIANCE&retention=4560h&legal_hold=false",
			S3Options{Bucket: "trail", Mode: S3ModeCompliance, Retention: 4560 * time.Hour}},
		{"s3://trail?endpoint=[::1]:9000", S3Options{Bucket: "trail", Endpoint: "[::1]:9000"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseS3URL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ParseS3URL(%q) = %+v, want %+v", tc.url, got, tc.want)
			}
		})
	}
}

func TestParseS3URLErrors(t *testing.T) {
	for _, tc := range []struct {
		url  string
		errs []string // each must appear in the error
	}{
		{"s3:trail", []string{"want s3://bucket/prefix"}},
		{"http://trail/x", []string{"want s3://bucket/prefix"}},
		{"s3:///prefix", []string{`bucket ""`}},
		{"s3://Trail_Bucket", []string{`bucket "Trail_Bucket"`}},
		{"s3://trail/a//b", []string{"prefix", "empty path element"}},
		{"s3://trail/a b", []string{"prefix", "not allowed"}},
		{"s3://key:secret@trail", []string{"credentials do not belong in the URL", "xxxxx"}},
		{"s3://trail#frag", []string{"fragment"}},
		{"s3://trail?endpoint=http://host:9000", []string{`endpoint "http://host:9000"`, "without scheme"}},
		{"s3://trail?endpoint=host:99999", []string{"endpoint", `port "99999"`}},
		{"s3://trail?endpoint=", []string{"endpoint is empty"}},
		{"s3://trail?endpoint=!", []string{`endpoint "!"`, "neither a host name nor an IP address"}},
		{"s3://trail?endpoint=:9000", []string{`endpoint ":9000"`, "neither"}},
		{"s3://trail?region=US_EAST", []string{`region "US_EAST"`}},
		{"s3://trail?secure=maybe", []string{`secure="maybe"`}},
		{"s3://trail?legal_hold=yes", []string{`legal_hold="yes"`}},
		{"s3://trail?mode=strict", []string{`mode="strict"`, "compliance or governance"}},
		{"s3://trail?retention=6m", []string{`retention="6m"`, "less than a day"}},
		{"s3://trail?retention=0d", []string{`retention="0d"`, "whole number of days"}},
		{"s3://trail?retention=six", []string{`retention="six"`}},
		{"s3://trail?retention=1d&retention=2d", []string{"retention is given 2 times"}},
		{"s3://trail?bucket=x", []string{`unknown parameter "bucket"`, "known: endpoint"}},
		// Every problem at once, not only the first.
		{"s3://trail?mode=x&secure=x&retention=x&colour=red", []string{`mode="x"`, `secure="x"`, `retention="x"`, `unknown parameter "colour"`}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := ParseS3URL(tc.url)
			if err == nil {
				t.Fatalf("ParseS3URL(%q) succeeded", tc.url)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("ParseS3URL(%q) = %q, want it to say %q", tc.url, err, want)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the URL's password: %v", err)
			}
		})
	}
}

func FuzzParseS3URL(f *testing.F) {
	f.Add("s3://trail/audit?endpoint=127.0.0.1:7070&region=us-east-1&secure=false&retention=190d&mode=governance&legal_hold=true")
	f.Add("s3://trail?retention=4560h")
	f.Add("s3://trail?endpoint=!")
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := ParseS3URL(raw)
		if err != nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("ParseS3URL(%q) accepted options that do not validate: %v", raw, err)
		}
		if _, err := NewS3Store(o); err != nil {
			t.Fatalf("ParseS3URL(%q) accepted options NewS3Store refuses: %v", raw, err)
		}
	})
}

func TestS3OptionsValidate(t *testing.T) {
	err := S3Options{Bucket: "trail", AccessKey: "k", Mode: "compliance", Retention: time.Hour}.Validate()
	for _, want := range []string{"credentials: give both", `mode "compliance"`, "retention 1h0m0s: less than a day"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to say %q", err, want)
		}
	}
	if err := (S3Options{Bucket: "trail"}).Validate(); err != nil {
		t.Errorf("zero options but the bucket: %v", err)
	}
}

func TestOpenStoreS3(t *testing.T) {
	st, err := OpenStore("s3://trail/audit/eu?endpoint=127.0.0.1:7070&secure=false")
	if err != nil {
		t.Fatal(err)
	}
	s, ok := st.(*S3Store)
	if !ok {
		t.Fatalf("OpenStore returned %T, want *S3Store", st)
	}
	if got, want := s.Describe(), "S3 bucket trail prefix audit/eu at 127.0.0.1:7070"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	if st, err := OpenStore("s3://trail?mode=x"); err == nil || st != nil || !strings.Contains(err.Error(), `mode="x"`) {
		t.Errorf("OpenStore with a bad mode = %v, %v", st, err)
	}
	s, err = NewS3Store(S3Options{Bucket: "trail"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Describe(), "S3 bucket trail at s3.amazonaws.com"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
}

func TestS3RetentionPolicy(t *testing.T) {
	from := time.Date(2026, 8, 31, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		o    S3Options
		mode string
		want time.Time
	}{
		// AddDate normalizes February 31 to March 3, then adds the day.
		{S3Options{Bucket: "trail"}, S3ModeCompliance, time.Date(2027, 3, 4, 12, 0, 0, 0, time.UTC)},
		{S3Options{Bucket: "trail", Mode: S3ModeGovernance, Retention: 10 * 24 * time.Hour}, S3ModeGovernance, time.Date(2026, 9, 10, 12, 0, 0, 0, time.UTC)},
	} {
		s, err := NewS3Store(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		mode, until := s.RetentionPolicy()
		if mode != tc.mode || !until(from).Equal(tc.want) {
			t.Errorf("%+v: RetentionPolicy() = %s, %v; want %s, %v", tc.o, mode, until(from), tc.mode, tc.want)
		}
	}
}

// s3Fixture is a server with one bucket under Object Lock.
type s3Fixture struct {
	srv    *s3test.Server
	bucket string
	raw    *minio.Client
}

func newS3Fixture(t testing.TB) *s3Fixture {
	t.Helper()
	f := &s3Fixture{srv: s3test.Start(t), bucket: "trail"}
	f.srv.MakeLockedBucket(t, f.bucket)
	f.raw = f.srv.Client(t)
	return f
}

// store opens a store on prefix of the fixture's bucket; query adds URL
// parameters.
func (f *s3Fixture) store(t testing.TB, prefix, query string) *S3Store {
	t.Helper()
	return f.storeIn(t, f.bucket, prefix, query)
}

func (f *s3Fixture) storeIn(t testing.TB, bucket, prefix, query string) *S3Store {
	t.Helper()
	url := f.srv.URL(bucket, prefix)
	if query != "" {
		url += "&" + query
	}
	o, err := ParseS3URL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.AccessKey, o.SecretKey = f.srv.Credentials()
	s, err := NewS3Store(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawName is the bucket's object name for key in s.
func (s *S3Store) rawName(key string) string { return s.object(key) }

func TestS3StoreContract(t *testing.T) {
	f := newS3Fixture(t)
	var n atomic.Int64
	testStoreContract(t, func() Store {
		return f.store(t, fmt.Sprintf("contract-%d", n.Add(1)), "")
	})
}

func TestS3PutGetList(t *testing.T) {
	f := newS3Fixture(t)
	ctx := context.Background()
	s := f.store(t, "root/dir", "")
	key := SegmentKey("audit", "gw", 0, 10)
	data := []byte("segment bytes")
	if err := s.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if keys, err := s.List(ctx, "audit/"); err != nil || !slices.Equal(keys, []string{key}) {
		t.Errorf("List = %q, %v; want the key relative to the store's prefix", keys, err)
	}
	// The object lives under the prefix.
	if _, err := f.raw.StatObject(ctx, f.bucket, "root/dir/"+key, minio.StatObjectOptions{}); err != nil {
		t.Errorf("object not at root/dir/%s: %v", key, err)
	}
	// A store with another prefix does not see it.
	if keys, err := f.store(t, "root", "").List(ctx, "audit/"); err != nil || len(keys) != 0 {
		t.Errorf("store on prefix root lists %q, %v", keys, err)
	}

	if err := s.Put(ctx, key, data); err != nil {
		t.Errorf("second Put of identical bytes: %v", err)
	}
	err := s.Put(ctx, key, []byte("other bytes"))
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Put of other bytes: %v, want ErrConflict", err)
	}
	if err != nil && (!strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "S3 bucket trail prefix root/dir")) {
		t.Errorf("error %q does not name the key and the store", err)
	}
	if got, err := s.Get(ctx, key); err != nil || !bytes.Equal(got, data) {
		t.Errorf("after a conflicting Put, Get = %q, %v", got, err)
	}
	vs, err := s.Versions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Key != key || !vs[0].IsLatest || vs[0].IsDeleteMarker || vs[0].Size != int64(len(data)) || vs[0].VersionID == "" {
		t.Errorf("Versions = %+v, want the one version of %s", vs, key)
	}
}

func TestS3Lock(t *testing.T) {
	f := newS3Fixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, query string
		want        ObjectLock
		// until gives the expected retain-until for an upload at t.
		until func(t time.Time) time.Time
	}{
		{"default", "", ObjectLock{Mode: S3ModeCompliance}, func(t time.Time) time.Time { return t.AddDate(0, 6, 1) }},
		{"governance", "mode=governance&retention=30d", ObjectLock{Mode: S3ModeGovernance}, func(t time.Time) time.Time { return t.AddDate(0, 0, 30) }},
		{"legal hold", "legal_hold=true", ObjectLock{Mode: S3ModeCompliance, LegalHold: true}, func(t time.Time) time.Time { return t.AddDate(0, 6, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := f.store(t, "lock-"+strings.ReplaceAll(tc.name, " ", "-"), tc.query)
			before := time.Now()
			if err := s.Put(ctx, "obj", []byte("locked")); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			vs, err := s.Versions(ctx, "obj")
			if err != nil || len(vs) != 1 {
				t.Fatalf("Versions = %+v, %v", vs, err)
			}
			got, err := s.Lock(ctx, "obj", vs[0].VersionID)
			if err != nil {
				t.Fatal(err)
			}
			// The server keeps whole seconds.
			lo, hi := tc.until(before).Truncate(time.Second), tc.until(after)
			if got.Mode != tc.want.Mode || got.LegalHold != tc.want.LegalHold || got.RetainUntil.Before(lo) || got.RetainUntil.After(hi) {
				t.Errorf("Lock = %+v, want %+v retained until [%v, %v]", got, tc.want, lo, hi)
			}
			mode, until := s.RetentionPolicy()
			if mode != tc.want.Mode || !until(before).Equal(tc.until(before)) {
				t.Errorf("RetentionPolicy = %s, %v; want %s, %v", mode, until(before), tc.want.Mode, tc.until(before))
			}
		})
	}
	s := f.store(t, "lock-missing", "")
	if _, err := s.Lock(ctx, "none", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lock of a missing key: %v, want ErrNotFound", err)
	}
}

// TestS3LockHolds checks that what the store writes cannot be undone with
// the bucket owner's credentials, and that what can be done shows.
func TestS3LockHolds(t *testing.T) {
	f := newS3Fixture(t)
	ctx := context.Background()
	s := f.store(t, "audit", "")
	data := []byte("sealed segment")
	if err := s.Put(ctx, "k", data); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Versions(ctx, "k")
	if err != nil || len(vs) != 1 {
		t.Fatalf("Versions = %+v, %v", vs, err)
	}
	v := vs[0].VersionID
	name := s.rawName("k")

	for _, bypass := range []bool{false, true} {
		err := f.raw.RemoveObject(ctx, f.bucket, name, minio.RemoveObjectOptions{VersionID: v, GovernanceBypass: bypass})
		if err == nil {
			t.Fatalf("deleting the locked version (governance bypass %v) succeeded", bypass)
		}
	}
	mode, earlier := minio.Compliance, time.Now().Add(24*time.Hour)
	if err := f.raw.PutObjectRetention(ctx, f.bucket, name, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &earlier, VersionID: v}); err == nil {
		t.Fatal("shortening the retention succeeded")
	}
	governance := minio.Governance
	if err := f.raw.PutObjectRetention(ctx, f.bucket, name, minio.PutObjectRetentionOptions{Mode: &governance, RetainUntilDate: &earlier, VersionID: v, GovernanceBypass: true}); err == nil {
		t.Fatal("weakening the mode to governance succeeded")
	}

	// A delete without a version id only hides the object behind a marker.
	if err := f.raw.RemoveObject(ctx, f.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get behind a delete marker: %v, want ErrNotFound", err)
	}
	vs, err = s.Versions(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || !vs[0].IsDeleteMarker || !vs[0].IsLatest || vs[1].VersionID != v || vs[1].IsLatest || vs[1].IsDeleteMarker {
		t.Errorf("Versions = %+v, want a delete marker over version %s", vs, v)
	}
	if l, err := s.Lock(ctx, "k", v); err != nil || l.Mode != S3ModeCompliance || time.Until(l.RetainUntil) < 180*24*time.Hour {
		t.Errorf("Lock of the version behind the marker = %+v, %v; want it still in compliance mode", l, err)
	}
	// Putting the same bytes again may not pretend the key holds them.
	err = s.Put(ctx, "k", data)
	if err == nil {
		if got, gerr := s.Get(ctx, "k"); gerr != nil || !bytes.Equal(got, data) {
			t.Errorf("Put over a delete marker succeeded, but Get = %q, %v", got, gerr)
		}
	} else if !errors.Is(err, ErrConflict) {
		t.Errorf("Put over a delete marker: %v, want success or ErrConflict", err)
	}
}

func TestS3Versions(t *testing.T) {
	f := newS3Fixture(t)
	ctx := context.Background()
	s := f.store(t, "audit", "")
	for _, k := range []string{"a/1", "a/2", "b/1"} {
		if err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.Versions(ctx, "a/1")
	if err != nil || len(first) != 1 {
		t.Fatalf("Versions = %+v, %v", first, err)
	}
	// A plain PUT, as anyone with write access could send, adds a version.
	forged := []byte("forged")
	if _, err := f.raw.PutObject(ctx, f.bucket, s.rawName("a/1"), bytes.NewReader(forged), int64(len(forged)),
		minio.PutObjectOptions{DisableMultipart: true}); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Versions(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range vs {
		keys = append(keys, v.Key)
	}
	if !slices.Equal(keys, []string{"a/1", "a/1", "a/2"}) || !vs[0].IsLatest || vs[0].Size != int64(len(forged)) ||
		vs[1].VersionID != first[0].VersionID || vs[1].IsLatest {
		t.Errorf("Versions = %+v, want a/1's new version over the original, then a/2", vs)
	}
	if got, err := s.Get(ctx, "a/1"); err != nil || !bytes.Equal(got, forged) {
		t.Errorf("Get = %q, %v; want the latest version", got, err)
	}
	// The original keeps its lock; the new version has none.
	if l, err := s.Lock(ctx, "a/1", first[0].VersionID); err != nil || l.Mode != S3ModeCompliance || l.RetainUntil.IsZero() {
		t.Errorf("Lock of the original = %+v, %v", l, err)
	}
	if l, err := s.Lock(ctx, "a/1", vs[0].VersionID); err != nil || l != (ObjectLock{}) {
		t.Errorf("Lock of the plain version = %+v, %v; want none", l, err)
	}
	// Put sees that the key now holds other bytes.
	if err := s.Put(ctx, "a/1", []byte("a/1")); !errors.Is(err, ErrConflict) {
		t.Errorf("Put of the original bytes over the forged version: %v, want ErrConflict", err)
	}
}

func TestS3Unavailable(t *testing.T) {
	f := newS3Fixture(t)
	ctx := context.Background()
	s := f.store(t, "audit", "")
	if err := s.Put(ctx, "before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.srv.Stop()
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"put", func() error { return s.Put(ctx, "during", []byte("x")) }},
		{"get", func() error { _, err := s.Get(ctx, "before"); return err }},
		{"list", func() error { _, err := s.List(ctx, ""); return err }},
		{"versions", func() error { _, err := s.Versions(ctx, ""); return err }},
		{"lock", func() error { _, err := s.Lock(ctx, "before", ""); return err }},
	} {
		start := time.Now()
		err := op.do()
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s against a stopped server took %v", op.name, took)
		}
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s against a stopped server: %v, want ErrUnavailable", op.name, err)
		}
	}
	// A context deadline is also worth retrying.
	dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	<-dctx.Done()
	if err := s.Put(dctx, "during", []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Put with an expired deadline: %v, want context.DeadlineExceeded", err)
	}

	f.srv.Restart()
	if err := s.Put(ctx, "during", []byte("x")); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	if got, err := s.Get(ctx, "before"); err != nil || string(got) != "x" {
		t.Errorf("Get after restart = %q, %v", got, err)
	}
}

func TestS3Errors(t *testing.T) {
	f := newS3Fixture(t)
	ctx := context.Background()
	f.srv.MakeBucket(t, "unlocked")
	for _, tc := range []struct {
		bucket string
		want   string
	}{
		{"missing", "NoSuchBucket"},
		// The server refuses lock headers on a bucket without Object Lock.
		{"unlocked", "put k in S3 bucket unlocked"},
	} {
		s := f.storeIn(t, tc.bucket, "", "")
		err := s.Put(ctx, "k", []byte("x"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict) {
			t.Errorf("Put into bucket %s: %v, want an error saying %q that is neither unavailable nor a conflict", tc.bucket, err, tc.want)
		}
	}
	o, _ := ParseS3URL(f.srv.URL(f.bucket, ""))
	o.AccessKey, o.SecretKey = "wrong", "wrong"
	s, err := NewS3Store(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Errorf("Get with wrong credentials: %v, want a plain error", err)
	}
}

func TestS3Environment(t *testing.T) {
	f := newS3Fixture(t)
	for _, kv := range f.srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	st, err := OpenStore(f.srv.URL(f.bucket, "env"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("Put with credentials from the environment: %v", err)
	}
}

func TestS3SealAndVerify(t *testing.T) {
	f := newS3Fixture(t)
	k := newTestKey(t, "gw")
	st := f.store(t, "trails/eu", "")
	a := vtSeal(t, st, k, "audit", "gw-a", 10, 1, 33)
	vtSeal(t, st, k, "audit", "gw-b", 5)
	rep := vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k), Prefix: "audit"})
	if !rep.OK() || len(rep.Streams) != 2 || rep.Streams[0].Size != uint64(len(a.lines)) {
		t.Fatalf("verify of a trail sealed into S3: %+v, findings %v", rep, rep.all())
	}
	// Every object has exactly one version, under lock.
	vs, err := st.Versions(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := 3*3 + 3; len(vs) != want {
		t.Errorf("%d versions, want %d", len(vs), want)
	}
	for _, v := range vs[:2] {
		if l, err := st.Lock(context.Background(), v.Key, v.VersionID); err != nil || l.Mode != S3ModeCompliance {
			t.Errorf("%s: Lock = %+v, %v", v.Key, l, err)
		}
	}
}

// BenchmarkS3Put puts 2 MB objects, about a sealed segment's compressed
// size, into a local server: PUT, then the read-back by version id.
func BenchmarkS3Put(b *testing.B) {
	f := newS3Fixture(b)
	s := f.store(b, "bench", "")
	data := make([]byte, 2<<20)
	rand.Read(data)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put(ctx, fmt.Sprintf("seg/%08d", i), data); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "objects/s")
}
