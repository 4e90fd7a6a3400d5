package worm

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestInitBucket(t *testing.T) {
	f := newS3Fixture(t)
	ctx := context.Background()
	opts := func(bucket string) S3Options {
		o, err := ParseS3URL(f.srv.URL(bucket, "audit"))
		if err != nil {
			t.Fatal(err)
		}
		o.AccessKey, o.SecretKey = f.srv.Credentials()
		return o
	}

	t.Run("creates a locked bucket", func(t *testing.T) {
		r, err := InitBucket(ctx, opts("fresh"))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Created || !r.ObjectLock || r.Versioning != "Enabled" || !r.OK() || r.DefaultRetention != "" {
			t.Errorf("InitBucket of a new bucket = %+v", r)
		}
		// Run again, it finds the bucket fit and creates nothing.
		r, err = InitBucket(ctx, opts("fresh"))
		if err != nil || r.Created || !r.OK() || !r.ObjectLock || r.Versioning != "Enabled" {
			t.Errorf("InitBucket of the bucket it made = %+v, %v", r, err)
		}
		// The store works in it.
		if err := f.storeIn(t, "fresh", "audit", "").Put(ctx, "k", []byte("x")); err != nil {
			t.Errorf("Put into the bucket InitBucket made: %v", err)
		}
	})

	t.Run("bucket without object lock", func(t *testing.T) {
		f.srv.MakeBucket(t, "plain")
		r, err := InitBucket(ctx, opts("plain"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Created || r.ObjectLock || r.OK() || len(r.Problems) != 2 {
			t.Fatalf("InitBucket of a bucket without Object Lock = %+v", r)
		}
		for i, want := range []string{"does not have Object Lock enabled", "versioning was never enabled"} {
			if !strings.Contains(r.Problems[i], want) || !strings.Contains(r.Problems[i], "create a new bucket") {
				t.Errorf("problem %d = %q, want it to say %q and what to do", i, r.Problems[i], want)
			}
		}
	})

	t.Run("default retention is noted", func(t *testing.T) {
		f.srv.MakeLockedBucket(t, "defaulted")
		mode, days, unit := minio.Governance, uint(30), minio.Days
		if err := f.raw.SetObjectLockConfig(ctx, "defaulted", &mode, &days, &unit); err != nil {
			t.Skipf("server does not set a default retention: %v", err)
		}
		r, err := InitBucket(ctx, opts("defaulted"))
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.DefaultRetention != "GOVERNANCE 30 DAYS" || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "does not rely on it") {
			t.Errorf("InitBucket of a bucket with a default retention = %+v", r)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		o := opts("fresh")
		o.Endpoint = "127.0.0.1:1"
		if _, err := InitBucket(ctx, o); err == nil || !strings.Contains(err.Error(), "init bucket fresh") {
			t.Errorf("InitBucket against a closed port: %v", err)
		}
	})
}
