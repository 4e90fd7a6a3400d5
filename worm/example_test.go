package worm_test

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/auditgate/auditgate/worm"
	"golang.org/x/mod/sumdb/note"
)

// A key made from a fixed seed, so that the example's signature is stable.
// Real keys come from GenerateKey or WriteKeyPair.
const (
	exampleSigningKey  = "PRIVATE+KEY+auditgate-example+66e97778+AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
	exampleVerifierKey = "auditgate-example+66e97778+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs"
)

func ExampleSignCheckpoint() {
	signer, err := note.NewSigner(exampleSigningKey)
	if err != nil {
		panic(err)
	}
	root := sha256.Sum256([]byte("a Merkle root"))
	sealed := time.Date(2026, 11, 27, 18, 0, 0, 123456789, time.UTC)
	msg, err := worm.SignCheckpoint(signer, "gw-eu1-7f3a", 1024, root, sealed)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(msg))

	trust, err := worm.ParseTrust("trust.pub", []byte(exampleVerifierKey+" not-before=2026-01-01T00:00:00Z\n"))
	if err != nil {
		panic(err)
	}
	cp, err := worm.OpenCheckpoint(msg, trust, "gw-eu1-7f3a")
	if err != nil {
		panic(err)
	}
	fmt.Println()
	fmt.Println(cp.Size, cp.Time.Format(time.RFC3339), cp.KeyName)
	// Output:
	// auditgate/gw-eu1-7f3a
	// 1024
	// Ta+hpBCKXN6Fd7swTtvpiFNZjLJI7otsSWa3eNnB4tI=
	// time 2026-11-27T18:00:00.123456789Z
	//
	// — auditgate-example Zul3eAeNGW2blkuGQ1leTG2hSxJj9838gOGZURneVLaQuIxdlzx6gi502OY4K6FeIaJja0ESYeyBWHWiLAnlj8P/8QM=
	//
	// 1024 2026-11-27T18:00:00Z auditgate-example+66e97778
}
