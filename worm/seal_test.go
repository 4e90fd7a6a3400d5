package worm

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// failingStore passes the first ok Puts through and fails the rest.
type failingStore struct {
	Store
	ok int
}

var errInjected = errors.New("injected put failure")

func (s *failingStore) Put(ctx context.Context, key string, data []byte) error {
	if s.ok == 0 {
		return errInjected
	}
	s.ok--
	return s.Store.Put(ctx, key, data)
}

func TestSealBatches(t *testing.T) {
	k := newTestKey(t, "gw")
	fs, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]Store{"mem": NewMemStore(), "file": fs} {
		t.Run(name, func(t *testing.T) {
			tr := vtSeal(t, st, k, "audit", "gw-a", 3, 1, 8, 100)
			ctx := context.Background()
			var prev [32]byte
			var start uint64
			for i, state := range tr.states {
				end := state.Tree.Size()
				if state.LastSigned != end || state.Stream != "gw-a" {
					t.Fatalf("seal %d: state %+v", i, state)
				}
				data, err := st.Get(ctx, ManifestKey("audit", "gw-a", end))
				if err != nil {
					t.Fatal(err)
				}
				if state.PrevManifest != sha256.Sum256(data) {
					t.Errorf("seal %d: PrevManifest is not the manifest's SHA-256", i)
				}
				body, _, err := OpenJSON(data, vtTrust(t, "", k), ManifestSealedAt)
				if err != nil {
					t.Fatal(err)
				}
				m, err := ParseManifest(body)
				if err != nil {
					t.Fatal(err)
				}
				if m.Start != start || m.End != end || m.Prev != prev || m.Root != state.Tree.Root() || m.ChainHead != state.Tree.Chain() {
					t.Errorf("seal %d: manifest %+v does not continue [%d, ...) from the state", i, m, start)
				}
				cp, err := OpenCheckpoint(tr.cps[i], vtTrust(t, "", k), "gw-a")
				if err != nil || cp.Size != end || cp.Root != m.Root || !cp.Time.Equal(m.SealedAt) {
					t.Errorf("seal %d: checkpoint %+v, %v", i, cp, err)
				}
				prev, start = state.PrevManifest, end
			}
			if rep := vtVerify(t, st, VerifyOptions{Trust: vtTrust(t, "", k), Prefix: "audit"}); !rep.OK() {
				t.Errorf("findings: %v", rep.all())
			}
		})
	}
}

func TestSealRetry(t *testing.T) {
	k := newTestKey(t, "gw")
	for _, ok := range []int{0, 1, 2} { // fail at the segment, checkpoint, manifest
		mem := NewMemStore()
		first := vtSeal(t, mem, k, "", "gw-a", 5)
		lines := [][]byte{vtRecord("gw-a", 5), vtRecord("gw-a", 6)}
		state := first.states[0]
		treeBefore := state.Tree.Root()
		s := &Sealer{Store: &failingStore{Store: mem, ok: ok}, Signer: k.signer, Now: func() time.Time { return vtTime(7) }}
		got, err := s.Seal(context.Background(), state, lines, vtTime(5), vtTime(6))
		if !errors.Is(err, errInjected) {
			t.Fatalf("ok=%d: Seal = %v, want the injected failure", ok, err)
		}
		if got.Tree.Size() != 5 || state.Tree.Root() != treeBefore {
			t.Fatalf("ok=%d: a failed Seal changed the state", ok)
		}
		// The retry runs later, so it would sign with another time.
		s = &Sealer{Store: mem, Signer: k.signer, Now: func() time.Time { return vtTime(9) }}
		got, err = s.Seal(context.Background(), state, lines, vtTime(5), vtTime(6))
		if err != nil {
			t.Fatalf("ok=%d: retry: %v", ok, err)
		}
		if got.Tree.Size() != 7 || got.LastSigned != 7 {
			t.Fatalf("ok=%d: retry state %+v", ok, got)
		}
		if rep := vtVerify(t, mem, VerifyOptions{Trust: vtTrust(t, "", k)}); !rep.OK() {
			t.Errorf("ok=%d: findings after retry: %v", ok, rep.all())
		}
	}
}

func TestSealRefuses(t *testing.T) {
	k := newTestKey(t, "gw")
	mem := NewMemStore()
	tr := vtSeal(t, mem, k, "", "gw-a", 5)
	ctx := context.Background()
	s := &Sealer{Store: mem, Signer: k.signer}
	line := [][]byte{vtRecord("gw-a", 5)}
	for name, st := range map[string]SealState{
		"bad stream":        {Stream: "Bad"},
		"size without prev": {Stream: "gw-a", Tree: tr.states[0].Tree},
		"prev without size": {Stream: "gw-a", PrevManifest: tr.states[0].PrevManifest},
		"no records":        tr.states[0],
	} {
		lines := line
		if name == "no records" {
			lines = nil
		}
		if _, err := s.Seal(ctx, st, lines, vtTime(5), vtTime(5)); err == nil {
			t.Errorf("%s: Seal succeeded", name)
		}
	}
	if _, err := (&Sealer{Store: mem}).Seal(ctx, SealState{Stream: "gw-a"}, line, vtTime(0), vtTime(0)); err == nil {
		t.Error("Seal without a signer succeeded")
	}
	// Other records where a segment exists: refused before signing.
	var other5 [][]byte
	for i := range 5 {
		other5 = append(other5, vtRecord("gw-b", i))
	}
	if _, err := s.Seal(ctx, SealState{Stream: "gw-a"}, other5, vtTime(0), vtTime(4)); !errors.Is(err, ErrConflict) {
		t.Errorf("seal over another segment: %v, want ErrConflict", err)
	}
	// Another writer's checkpoint at the same size must not be adopted.
	other := newTestKey(t, "gw")
	s = &Sealer{Store: mem, Signer: other.signer}
	st := tr.states[0]
	if _, err := s.Seal(ctx, st, line, vtTime(5), vtTime(5)); err != nil {
		t.Fatalf("seal with another key: %v", err)
	}
	mem.Delete(ManifestKey("", "gw-a", 6))
	if _, err := (&Sealer{Store: mem, Signer: k.signer}).Seal(ctx, st, line, vtTime(5), vtTime(5)); !errors.Is(err, ErrConflict) {
		t.Errorf("seal over another key's checkpoint: %v, want ErrConflict", err)
	}
}
