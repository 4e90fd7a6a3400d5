package worm

import (
	"context"
	"fmt"

	"github.com/minio/minio-go/v7"
)

// BucketReport is what InitBucket found or did.
type BucketReport struct {
	Bucket string
	// Created is set if InitBucket created the bucket.
	Created bool
	// Versioning is the bucket's versioning status: "Enabled",
	// "Suspended", or "" if it was never enabled.
	Versioning string
	// ObjectLock reports whether Object Lock is enabled on the bucket.
	ObjectLock bool
	// DefaultRetention is the bucket's default retention, as
	// "COMPLIANCE 30 DAYS", or "" if it has none. The store never relies
	// on it: every object carries its own mode and retain-until date.
	DefaultRetention string
	// Problems says what makes the bucket unfit for a trail and what to do
	// about each; empty if it is fit.
	Problems []string
	// Notes are facts worth telling that are not problems.
	Notes []string
}

// OK reports whether the bucket can hold a trail.
func (r BucketReport) OK() bool { return len(r.Problems) == 0 }

// InitBucket makes o's bucket ready for a trail: if it does not exist it is
// created with Object Lock (which enables versioning); if it exists, its
// versioning and Object Lock are checked and every problem is reported.
// Nothing is written into the bucket, since a probe object under lock
// could never be removed. The error is for a server that cannot be asked;
// an unfit bucket is a report with Problems.
func InitBucket(ctx context.Context, o S3Options) (BucketReport, error) {
	if err := o.Validate(); err != nil {
		return BucketReport{}, fmt.Errorf("init bucket: %w", err)
	}
	client, err := newS3Client(o)
	if err != nil {
		return BucketReport{}, fmt.Errorf("init bucket %s: %w", o.Bucket, err)
	}
	r := BucketReport{Bucket: o.Bucket}
	exists, err := client.BucketExists(ctx, o.Bucket)
	if err != nil {
		return BucketReport{}, fmt.Errorf("init bucket %s: does it exist: %w", o.Bucket, s3Classify(ctx, err))
	}
	if !exists {
		err := client.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{Region: o.Region, ObjectLocking: true})
		switch code := s3Code(err); {
		case code == "BucketAlreadyOwnedByYou":
			// Created meanwhile by someone with our credentials: check it.
		case err != nil:
			return BucketReport{}, fmt.Errorf("init bucket %s: create with Object Lock: %w", o.Bucket, s3Classify(ctx, err))
		default:
			r.Created = true
		}
	}
	if err := r.check(ctx, client); err != nil {
		return BucketReport{}, fmt.Errorf("init bucket %s: %w", o.Bucket, err)
	}
	return r, nil
}

// check reads the bucket's versioning and Object Lock settings into r.
func (r *BucketReport) check(ctx context.Context, client *minio.Client) error {
	v, err := client.GetBucketVersioning(ctx, r.Bucket)
	if err != nil {
		return fmt.Errorf("get versioning: %w", s3Classify(ctx, err))
	}
	r.Versioning = v.Status
	lock, mode, validity, unit, err := client.GetObjectLockConfig(ctx, r.Bucket)
	switch {
	case s3NoLock(err):
	case err != nil:
		return fmt.Errorf("get Object Lock configuration: %w", s3Classify(ctx, err))
	default:
		r.ObjectLock = lock == "Enabled"
		// Versity Gateway states a unit without a period when there is no
		// default, so only a mode with a period counts.
		if mode != nil && validity != nil && unit != nil {
			r.DefaultRetention = fmt.Sprintf("%s %d %s", *mode, *validity, *unit)
		}
	}

	if !r.ObjectLock {
		r.Problems = append(r.Problems, fmt.Sprintf("bucket %s does not have Object Lock enabled, so trail objects could be deleted or replaced: "+
			"most servers enable Object Lock only when a bucket is created (AWS S3 can also enable it on a versioned bucket with put-object-lock-configuration); "+
			"create a new bucket with Object Lock, for example by giving auditgate bucket init a bucket name that does not exist yet", r.Bucket))
	}
	if r.Versioning != "Enabled" {
		state := "versioning was never enabled"
		if r.Versioning != "" {
			state = "versioning is " + r.Versioning
		}
		r.Problems = append(r.Problems, fmt.Sprintf("bucket %s: %s: Object Lock needs it, and the store reads each object back by version id; "+
			"enable versioning (aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled), "+
			"or create a new bucket with Object Lock, which enables it", r.Bucket, state, r.Bucket))
	}
	if r.DefaultRetention != "" {
		r.Notes = append(r.Notes, fmt.Sprintf("bucket %s has the default retention %s; auditgate does not rely on it: "+
			"every object is written with its own mode and retain-until date", r.Bucket, r.DefaultRetention))
	}
	return nil
}
