package worm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
)

// streamVerifier walks one stream's manifests from record 0, checking
// each against its predecessor, its segment and the tree so far.
type streamVerifier struct {
	ctx    context.Context
	store  Store
	o      VerifyOptions
	prefix string
	objs   *verifyObjects
	since  *verifySince
	rep    StreamReport

	cps map[uint64][]verifyCheckpoint
	// roots holds the root at each size the walk learned: proven from the
	// manifests' ranges and the segments, or, after a break in the chain,
	// only as a manifest claims it.
	roots map[uint64]verifyRoot
	// mid holds checkpoint sizes that fall inside segments, provable only
	// from the records of the segment they fall in.
	mid        []uint64
	referenced map[string]bool
	holes      [][2]uint64 // record ranges whose manifest is missing or bad

	sil   silence   // record times across segments, for heartbeat gaps
	scans sync.Pool // *recordScan, their buffers reused from segment to segment
	bytes uint64    // record text re-hashed, for progress

	walked       uint64    // manifests walked, for progress
	lastProgress time.Time // when o.Progress was last called
}

type verifyCheckpoint struct {
	key string
	cp  Checkpoint
}

type verifyRoot struct {
	root   [32]byte
	proven bool
}

// walkState is the walk's position: what the next manifest must continue.
type walkState struct {
	next      uint64   // the next manifest's start
	prev      [32]byte // SHA-256 of the previous manifest object
	prevKnown bool
	chain     [32]byte // chain head after record next-1
	chainOK   bool
	// acc is the compact range [0, next) from the manifests' ranges; nil
	// once a break in the chain makes roots unprovable.
	acc *compact.Range
}

func (v *streamVerifier) find(object, code, format string, args ...any) {
	v.rep.Findings = append(v.rep.Findings, Finding{Stream: v.rep.Stream, Object: object, Code: code, Msg: fmt.Sprintf(format, args...)})
}

// get reads an object; a listed object that has gone is reported as
// missing by the caller (found false), any other failure is an error.
func (v *streamVerifier) get(key string) (data []byte, found bool, err error) {
	return v.getCtx(v.ctx, key)
}

func (v *streamVerifier) getCtx(ctx context.Context, key string) (data []byte, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("verify: %w", err)
	}
	data, err = v.store.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("verify: %w", err)
	}
	return data, true, nil
}

func (v *streamVerifier) run() error {
	o := v.objs
	if len(o.manifests) == 0 && len(o.checkpoints) == 0 && len(o.segments) == 0 {
		v.find("", FindingStreamNotFound, "stream %s has no objects under prefix %q", v.rep.Stream, v.prefix)
	}
	v.roots = map[uint64]verifyRoot{0: {root: treeEmptyRoot, proven: true}}
	v.referenced = make(map[string]bool)
	if err := v.openCheckpoints(); err != nil {
		return err
	}
	if err := v.walk(); err != nil {
		return err
	}
	v.checkUnreferenced()
	v.checkCheckpoints()
	if v.since != nil {
		v.checkSince()
	}
	return nil
}

func (v *streamVerifier) openCheckpoints() error {
	v.cps = make(map[uint64][]verifyCheckpoint)
	ends := make(map[uint64]bool, len(v.objs.manifests))
	for _, k := range v.objs.manifests {
		ends[k.End] = true
	}
	for _, k := range v.objs.checkpoints {
		key := k.String()
		data, found, err := v.get(key)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		cp, err := OpenCheckpoint(data, v.o.Trust, v.rep.Stream)
		if err != nil {
			v.find(key, signedCode("checkpoint", err), "checkpoint %s does not verify: %v", key, err)
			continue
		}
		if cp.Size != k.Size {
			v.find(key, FindingCheckpointMisplaced, "checkpoint %s commits to tree size %d, not the size its key names", key, cp.Size)
			continue
		}
		v.cps[cp.Size] = append(v.cps[cp.Size], verifyCheckpoint{key: key, cp: cp})
		if !ends[cp.Size] && cp.Size != 0 {
			v.mid = append(v.mid, cp.Size)
		}
	}
	if v.since != nil && !ends[v.since.cp.Size] && v.since.cp.Size != 0 {
		v.mid = append(v.mid, v.since.cp.Size)
	}
	return nil
}

func (v *streamVerifier) walk() error {
	manifests := slices.Clone(v.objs.manifests)
	slices.SortFunc(manifests, func(a, b Key) int { return compareUint(a.End, b.End) })
	w := walkState{prevKnown: true, chainOK: true, acc: treeFactory.NewEmptyRange(0)}
	v.progress(true, false)
	ahead, release, stop := v.readAhead(v.ctx, manifests)
	defer stop()
	for a := range ahead {
		if err := v.walkOne(&w, a); err != nil {
			return err
		}
		if a.check != nil {
			v.recycle(a.check)
			release()
		}
	}
	if err := v.ctx.Err(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	v.rep.Size = w.next
	v.rep.Root = v.roots[w.next].root
	v.progress(true, true)
	return nil
}

// walkOne checks one manifest, read ahead, against the walk so far, and
// its segment.
func (v *streamVerifier) walkOne(w *walkState, a *manifestAhead) error {
	mk := a.key
	{
		v.progress(false, false)
		v.walked++
		key := mk.String()
		data, found, err := a.data, a.found, a.err
		if err != nil {
			return err
		}
		if !found {
			v.find(key, FindingManifestMissing, "manifest %s was listed but cannot be read", key)
			v.lose(w, mk.End)
			return nil
		}
		keyID := a.keyID
		if err := a.openErr; err != nil {
			v.find(key, signedCode("manifest", err), "manifest %s does not verify: %v", key, err)
			v.lose(w, mk.End)
			return nil
		}
		m := a.m
		if err := a.parseErr; err != nil {
			v.find(key, FindingManifestMalformed, "manifest %s: %v", key, err)
			v.lose(w, mk.End)
			return nil
		}
		if m.Stream != v.rep.Stream || m.End != mk.End {
			v.find(key, FindingManifestMisplaced, "manifest %s describes stream %s records [%d, %d), not what its key names", key, m.Stream, m.Start, m.End)
			v.lose(w, mk.End)
			return nil
		}
		if m.KeyID != keyID {
			v.find(key, FindingManifestKeyID, "manifest %s names key %s but is signed by %s", key, m.KeyID, keyID)
		}
		v.rep.Segments++
		first, last := minMaxTime(m.FirstTime, m.LastTime)
		if v.rep.First.IsZero() || first.Before(v.rep.First) {
			v.rep.First = first
		}
		if last.After(v.rep.Last) {
			v.rep.Last = last
		}
		switch {
		case m.Start > w.next:
			missing := ManifestKey(v.prefix, v.rep.Stream, m.Start)
			v.find(missing, FindingManifestMissing, "manifest %s is missing: records [%d, %d) have no manifest (the chain resumes at %s)", missing, w.next, m.Start, key)
			v.holes = append(v.holes, [2]uint64{w.next, m.Start})
			w.breakChain()
		case m.Start < w.next:
			v.find(key, FindingManifestOverlap, "manifest %s starts at record %d, inside records [0, %d) that earlier manifests cover", key, m.Start, w.next)
			w.breakChain()
		case w.prevKnown && m.Prev != w.prev:
			v.find(key, FindingManifestChainBroken, "manifest %s: prev_manifest_sha256 %s is not the SHA-256 %s of the manifest before it", key, verifyHashHex(m.Prev), verifyHashHex(w.prev))
		}
		var before [][32]byte
		if w.acc != nil {
			before = treeArrays(w.acc.Hashes())
			r, err := treeFactory.NewRange(m.Start, m.End, treeSlices(m.Range))
			if err == nil {
				err = w.acc.AppendRange(r, nil)
			}
			if err != nil {
				v.find(key, FindingManifestRootMismatch, "manifest %s: range hashes do not fit records [%d, %d): %v", key, m.Start, m.End, err)
				w.acc = nil
			}
		}
		if w.acc != nil {
			root := treeFold(treeArrays(w.acc.Hashes()))
			if root != m.Root {
				v.find(key, FindingManifestRootMismatch, "manifest %s: root %s is not the root %s of the ranges of all manifests up to record %d", key, verifyHashHex(m.Root), verifyHashHex(root), m.End)
			}
			v.roots[m.End] = verifyRoot{root: root, proven: true}
		} else {
			v.roots[m.End] = verifyRoot{root: m.Root}
		}
		if err := v.segment(&m, key, w.chain, w.chainOK, before, a.check); err != nil {
			return err
		}
		w.next, w.prev, w.prevKnown = m.End, verifySHA256(data), true
		w.chain, w.chainOK = m.ChainHead, true
	}
	return nil
}

// verifyProgressEvery is how often, at most, Verify reports progress
// between the start and end of a stream; it checks between segments.
const verifyProgressEvery = 100 * time.Millisecond

// progress calls o.Progress, if set: always if force, otherwise only when
// verifyProgressEvery has passed since the last call.
func (v *streamVerifier) progress(force, done bool) {
	if v.o.Progress == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(v.lastProgress) < verifyProgressEvery {
		return
	}
	v.lastProgress = now
	v.o.Progress(VerifyProgress{Stream: v.rep.Stream, Segments: v.walked, SegmentsTotal: uint64(len(v.objs.manifests)),
		Records: v.rep.Records, Bytes: v.bytes, Done: done})
}

// lose records that the manifest ending at end cannot be used: the walk
// continues after it, but nothing links across it.
func (v *streamVerifier) lose(w *walkState, end uint64) {
	if end > w.next {
		v.holes = append(v.holes, [2]uint64{w.next, end})
		w.next = end
	}
	w.breakChain()
}

func (w *walkState) breakChain() {
	w.prevKnown, w.chainOK, w.acc = false, false, nil
}

// checkUnreferenced reports segments no manifest names, except those in
// ranges whose manifest is already reported missing or bad.
func (v *streamVerifier) checkUnreferenced() {
	keys := make([]string, 0, len(v.objs.segments))
	for key := range v.objs.segments {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		k := v.objs.segments[key]
		if v.referenced[key] || slices.ContainsFunc(v.holes, func(h [2]uint64) bool { return h[0] <= k.Start && k.End <= h[1] }) {
			continue
		}
		v.find(key, FindingSegmentUnreferenced, "segment %s (records [%d, %d)) is named by no manifest", key, k.Start, k.End)
	}
}

func (v *streamVerifier) checkCheckpoints() {
	sizes := make([]uint64, 0, len(v.cps))
	var newest uint64
	for size := range v.cps {
		sizes = append(sizes, size)
		newest = max(newest, size)
	}
	slices.Sort(sizes)
	for _, size := range sizes {
		for _, c := range v.cps[size] {
			r, ok := v.roots[size]
			switch {
			case !ok && size > v.rep.Size:
				missing := ManifestKey(v.prefix, v.rep.Stream, size)
				v.find(missing, FindingManifestMissing, "manifest %s is missing: checkpoint %s commits to %d records, but the manifests reach only %d", missing, c.key, size, v.rep.Size)
			case !ok:
				v.find(c.key, FindingCheckpointUnprovable, "checkpoint %s: its root at size %d cannot be checked: no verified manifest ends there, and the records up to it could not be verified", c.key, size)
			case r.root != c.cp.Root:
				how := "that the manifests and segments give"
				if !r.proven {
					how = "that the manifest ending there states"
				}
				v.find(c.key, FindingCheckpointForked, "forked checkpoint: %s, signed by %s, commits to root %s at size %d, not root %s %s", c.key, c.cp.KeyName, verifyHashHex(c.cp.Root), size, verifyHashHex(r.root), how)
			}
		}
	}
	if v.rep.Size > newest {
		want := CheckpointKey(v.prefix, v.rep.Stream, v.rep.Size)
		v.find(want, FindingCheckpointStale, "no checkpoint covers the last manifest: the newest valid checkpoint is at size %d, the manifests reach %d (want %s)", newest, v.rep.Size, want)
	}
}

func (v *streamVerifier) checkSince() {
	cp := v.since.cp
	r, ok := v.roots[cp.Size]
	switch {
	case cp.Size > v.rep.Size:
		v.find("", FindingSinceCheckpointTruncate, "the pinned checkpoint commits to %d records of stream %s (sealed %s), but the trail reaches only %d: the tail is truncated or missing", cp.Size, cp.Stream, cp.Time.Format(TimeLayout), v.rep.Size)
	case !ok:
		v.find("", FindingCheckpointUnprovable, "the pinned checkpoint's root at size %d cannot be checked: no verified manifest ends there, and the records up to it could not be verified", cp.Size)
	case r.root != cp.Root:
		v.find("", FindingSinceCheckpointForked, "the pinned checkpoint commits to root %s at size %d, but the trail gives root %s there: the trail forked from it", verifyHashHex(cp.Root), cp.Size, verifyHashHex(r.root))
	}
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
