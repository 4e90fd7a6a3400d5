package worm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestProveRoundTrip(t *testing.T) {
	st, key, all := readTestTrail(t)
	trust := readTestTrust(t, key)
	ctx := context.Background()
	// Records in gw-a's first, a middle and last segment, and in gw-b.
	for _, i := range []int{0, 2, 4, 9, 17, 18, 24} {
		rec := all[i]
		for _, r := range []*Reader{{Store: st, Trust: trust}, {Store: st}} {
			proof, err := Prove(ctx, r, rec.id)
			if err != nil {
				t.Fatalf("Prove(%s): %v", rec.id, err)
			}
			line, cp, index, err := VerifyRecordProof(proof, trust)
			if err != nil {
				t.Fatalf("VerifyRecordProof of %s/%d: %v\n%s", rec.stream, rec.index, err, proof)
			}
			wantSize := map[string]uint64{"gw-a": 18, "gw-b": 7}[rec.stream]
			if !bytes.Equal(line, rec.line) || index != rec.index || cp.Stream != rec.stream || cp.Size != wantSize || cp.KeyName != key.id() {
				t.Errorf("proof of %s/%d: line %s, index %d, checkpoint %+v", rec.stream, rec.index, line, index, cp)
			}
		}
	}
	if _, err := Prove(ctx, &Reader{Store: st, Trust: trust}, "r-missing"); !errors.Is(err, ErrRecordNotFound) {
		t.Errorf("Prove(missing) = %v", err)
	}
}

func TestProveUsesCheckpointAtSegmentEnd(t *testing.T) {
	st, key, all := readTestTrail(t)
	// A checkpoint in the middle of a segment (not one Seal writes) is
	// passed over for the latest one at a segment end.
	cp, err := SignCheckpoint(key.signer, "gw-a", 15, [32]byte{1}, readTestBase)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), CheckpointKey("", "gw-a", 15), cp); err != nil {
		t.Fatal(err)
	}
	st.Delete(CheckpointKey("", "gw-a", 18))
	trust := readTestTrust(t, key)
	proof, err := Prove(context.Background(), &Reader{Store: st, Trust: trust}, all[1].id)
	if err != nil {
		t.Fatal(err)
	}
	if _, cp, _, err := VerifyRecordProof(proof, trust); err != nil || cp.Size != 12 {
		t.Errorf("proof against checkpoint %d: %v", cp.Size, err)
	}
	// No checkpoint covers the last segment's records any more.
	if _, err := Prove(context.Background(), &Reader{Store: st, Trust: trust}, all[15].id); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("Prove with no covering checkpoint: %v", err)
	}
}

func TestVerifyRecordProofRejects(t *testing.T) {
	st, key, all := readTestTrail(t)
	trust := readTestTrust(t, key)
	proof, err := Prove(context.Background(), &Reader{Store: st, Trust: trust}, all[5].id)
	if err != nil {
		t.Fatal(err)
	}
	cp, index, hashes, line, err := DecodeRecordProof(proof)
	if err != nil {
		t.Fatal(err)
	}
	encode := func(cp []byte, index uint64, hashes [][32]byte, line []byte) []byte {
		t.Helper()
		out, err := EncodeRecordProof(cp, index, hashes, line)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	other := newTestKey(t, "gw")
	text, err := noteText(cp)
	if err != nil {
		t.Fatal(err)
	}
	resigned, err := note.Sign(&note.Note{Text: string(text)}, other.signer)
	if err != nil {
		t.Fatal(err)
	}
	altered := func(f func(h [][32]byte)) [][32]byte {
		h := append([][32]byte(nil), hashes...)
		f(h)
		return h
	}
	tests := []struct {
		name  string
		proof []byte
		is    error
		says  string
	}{
		{"record line altered", encode(cp, index, hashes, bytes.Replace(line, []byte(`"status":200`), []byte(`"status":201`), 1)), ErrBadProof, "record line"},
		{"index altered", encode(cp, index+1, hashes, line), ErrBadProof, "index 6"},
		{"index past the tree", encode(cp, 18, hashes, line), ErrBadProof, "outside the checkpoint's tree"},
		{"proof hash altered", encode(cp, index, altered(func(h [][32]byte) { h[1][0] ^= 1 }), line), ErrBadProof, "proof hashes"},
		{"proof hash dropped", encode(cp, index, hashes[1:], line), ErrBadProof, "proof hashes"},
		{"checkpoint re-signed by an untrusted key", encode(resigned, index, hashes, line), ErrUnknownKey, "checkpoint signature"},
		{"not a proof", []byte("hello\n"), ErrMalformedProof, "header"},
		{"record of another stream", nil, ErrBadProof, "names stream"},
	}
	// A record whose stream field disagrees with the checkpoint, but which
	// is included: seal one into a stream of its own.
	{
		mem := NewMemStore()
		s := &Sealer{Store: mem, Signer: key.signer}
		l := []byte(`{"v":1,"id":"x1","time":"2026-11-27T18:00:00.000000000Z","kind":"inference","stream":"gw-a"}`)
		if _, err := s.Seal(context.Background(), SealState{Stream: "gw-c"}, [][]byte{l}, readTestBase, readTestBase); err != nil {
			t.Fatal(err)
		}
		p, err := Prove(context.Background(), &Reader{Store: mem, Trust: trust}, "x1")
		if err != nil {
			t.Fatal(err)
		}
		tests[len(tests)-1].proof = p
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := VerifyRecordProof(tt.proof, trust)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("VerifyRecordProof = %v; want %v saying %q", err, tt.is, tt.says)
			}
		})
	}
	if _, _, _, err := VerifyRecordProof(proof, nil); err == nil {
		t.Error("VerifyRecordProof without trust succeeded")
	}
}
