package worm

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// LockedStore is a store that keeps Object Lock evidence: every version of
// every object, and what protects each. S3Store is one. Verify checks the
// evidence of a LockedStore as well as the trail.
type LockedStore interface {
	Store
	// Versions lists every version and delete marker under prefix.
	Versions(ctx context.Context, prefix string) ([]ObjectVersion, error)
	// Lock returns what protects one version of key.
	Lock(ctx context.Context, key, versionID string) (ObjectLock, error)
	// RetentionPolicy gives the mode objects are written with and the
	// retain-until date of an object written at a time.
	RetentionPolicy() (mode string, retainUntil func(from time.Time) time.Time)
}

// Findings about the Object Lock evidence.
const (
	FindingObjectExtraVersion  = "object_extra_version"
	FindingObjectDeleteMarker  = "object_delete_marker"
	FindingObjectNotLocked     = "object_not_locked"
	FindingObjectLockMode      = "object_lock_mode"
	FindingObjectRetentionLow  = "object_retention_short"
	FindingObjectLockUnchecked = "object_lock_unreadable"
)

// lockSlack allows for the writer computing an object's retain-until from
// its own clock just before the upload, and for the store keeping it to
// the second.
const lockSlack = 10 * time.Minute

// LockReport sums up one stream's Object Lock evidence.
type LockReport struct {
	Objects     int       // versions checked
	Mode        string    // the weakest mode found (GOVERNANCE before COMPLIANCE)
	MinRetain   time.Time // the earliest retain-until found
	LegalHolds  int       // versions under legal hold
	Unavailable string    // why there is no evidence, for a store without it
}

// checkLocks checks every version under the stream's prefix: one version
// per key, no delete marker, locked in the store's mode, retained at
// least as long as the store's retention from when it was written.
func (v *streamVerifier) checkLocks(ctx context.Context, ls LockedStore) error {
	dir := v.rep.Stream + "/"
	if v.prefix != "" {
		dir = v.prefix + "/" + dir
	}
	vs, err := ls.Versions(ctx, dir)
	if err != nil {
		return fmt.Errorf("verify object lock of stream %s: %w", v.rep.Stream, err)
	}
	wantMode, retainUntil := ls.RetentionPolicy()
	var byKey [][]ObjectVersion
	for i, ov := range vs {
		if i > 0 && vs[i-1].Key == ov.Key {
			byKey[len(byKey)-1] = append(byKey[len(byKey)-1], ov)
			continue
		}
		byKey = append(byKey, []ObjectVersion{ov})
	}
	type job struct {
		ov   ObjectVersion
		lock ObjectLock
		err  error
	}
	var jobs []*job
	for _, versions := range byKey {
		key := versions[0].Key
		var live []ObjectVersion
		for _, ov := range versions {
			if ov.IsDeleteMarker {
				v.find(key, FindingObjectDeleteMarker, "%s has a delete marker (version %s, %s): someone tried to delete a sealed object", key, ov.VersionID, ov.LastModified.UTC().Format(time.RFC3339))
				continue
			}
			live = append(live, ov)
		}
		if len(live) > 1 {
			ids := make([]string, len(live))
			for i, ov := range live {
				ids[i] = ov.VersionID
			}
			v.find(key, FindingObjectExtraVersion, "%s has %d versions (%s): a sealed object was written again; verify read the latest", key, len(live), strings.Join(ids, ", "))
		}
		for _, ov := range live {
			jobs = append(jobs, &job{ov: ov})
		}
	}
	// The lock of each version is one or two requests: ask several at once.
	var wg sync.WaitGroup
	next := make(chan *job)
	for range min(8, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				j.lock, j.err = ls.Lock(ctx, j.ov.Key, j.ov.VersionID)
			}
		}()
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()

	lr := &v.rep.Lock
	for _, j := range jobs {
		key, l := j.ov.Key, j.lock
		if j.err != nil {
			v.find(key, FindingObjectLockUnchecked, "%s version %s: its lock could not be read: %v", key, j.ov.VersionID, j.err)
			continue
		}
		lr.Objects++
		if l.LegalHold {
			lr.LegalHolds++
		}
		if l.Mode == "" {
			if !l.LegalHold {
				v.find(key, FindingObjectNotLocked, "%s version %s has no Object Lock retention: it can be deleted", key, j.ov.VersionID)
			}
			continue
		}
		if lr.Mode == "" || l.Mode == S3ModeGovernance {
			lr.Mode = l.Mode
		}
		if !strings.EqualFold(l.Mode, wantMode) && strings.EqualFold(wantMode, S3ModeCompliance) {
			v.find(key, FindingObjectLockMode, "%s version %s is locked in %s mode, not %s: a privileged user can remove it", key, j.ov.VersionID, l.Mode, wantMode)
		}
		if lr.MinRetain.IsZero() || l.RetainUntil.Before(lr.MinRetain) {
			lr.MinRetain = l.RetainUntil
		}
		if want := retainUntil(j.ov.LastModified); l.RetainUntil.Add(lockSlack).Before(want) {
			v.find(key, FindingObjectRetentionLow, "%s version %s is retained until %s, before %s that the store's retention gives an object written at %s",
				key, j.ov.VersionID, l.RetainUntil.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339), j.ov.LastModified.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
