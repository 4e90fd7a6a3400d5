package worm

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/auditgate/auditgate/worm/s3test"
)

// TestVerifyObjectLock seals a trail into a real S3 server with Object
// Lock and checks the evidence verify reads: an honest trail passes with
// every object in COMPLIANCE mode; an extra version, a delete marker, and
// objects locked for less or in GOVERNANCE mode are findings.
func TestVerifyObjectLock(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeLockedBucket(t, "trail")
	ctx := context.Background()
	access, secret := srv.Credentials()
	open := func(prefix, mode string, retention time.Duration) *S3Store {
		t.Helper()
		s, err := NewS3Store(S3Options{Bucket: "trail", Prefix: prefix, Endpoint: srv.Endpoint(), Insecure: true,
			Region: s3test.Region, AccessKey: access, SecretKey: secret, Mode: mode, Retention: retention})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	k := newTestKey(t, "gw-test")
	trust, _ := ParseTrust("t", []byte(k.vkey+"\n"))

	honest := open("honest", "", 0)
	vtSeal(t, honest, k, "", "s1", 3, 4)
	rep := vtVerify(t, honest, VerifyOptions{Trust: trust})
	if !rep.OK() {
		t.Fatalf("honest trail: %v", rep.all())
	}
	l := rep.Streams[0].Lock
	if l.Objects != 6 || l.Mode != S3ModeCompliance || l.MinRetain.Before(time.Now().AddDate(0, 6, 0)) || l.Unavailable != "" {
		t.Errorf("lock report %+v: want 6 objects in COMPLIANCE retained six months", l)
	}

	// Behind the trail's back: a second version of a segment, and a delete
	// marker on a manifest.
	c := srv.Client(t)
	seg := "honest/" + SegmentKey("", "s1", 0, 3)
	if _, err := c.PutObject(ctx, "trail", seg, bytes.NewReader([]byte("other bytes")), 11, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveObject(ctx, "trail", "honest/"+ManifestKey("", "s1", 7), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	rep = vtVerify(t, honest, VerifyOptions{Trust: trust})
	codes := map[string]string{}
	for _, f := range rep.all() {
		codes[f.Code] = f.Object
	}
	if !strings.HasSuffix(codes[FindingObjectExtraVersion], "seg/00000000000000000000-00000000000000000003.jsonl.zst") {
		t.Errorf("no extra-version finding on the segment: %v", rep.all())
	}
	if !strings.HasSuffix(codes[FindingObjectDeleteMarker], "manifest/00000000000000000007") {
		t.Errorf("no delete-marker finding on the manifest: %v", rep.all())
	}

	// Written with a day's retention in GOVERNANCE mode, checked against a
	// store that keeps six months in COMPLIANCE.
	weak := open("weak", S3ModeGovernance, 24*time.Hour)
	vtSeal(t, weak, k, "", "s2", 2)
	rep = vtVerify(t, open("weak", "", 0), VerifyOptions{Trust: trust})
	codes = map[string]string{}
	for _, f := range rep.all() {
		codes[f.Code] = f.Object
	}
	if codes[FindingObjectRetentionLow] == "" || codes[FindingObjectLockMode] == "" {
		t.Errorf("findings %v: want retention and mode findings", rep.all())
	}
	if l := rep.Streams[0].Lock; l.Mode != S3ModeGovernance {
		t.Errorf("weakest mode %q, want GOVERNANCE", l.Mode)
	}
}
