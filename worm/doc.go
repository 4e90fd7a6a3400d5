// Package worm is the audit trail: sequencing, the hash chain and Merkle
// tree, the spool, segments, signed checkpoints and manifests, signing keys
// and trust files, the stores (S3 Object Lock and a local directory), and the
// read side (list, fetch, verify, prove).
//
// Signatures use the signed-note format of golang.org/x/mod/sumdb/note with
// Ed25519 keys. A checkpoint is a C2SP tlog-checkpoint whose origin is
// "auditgate/<stream>", with one extension line carrying the sealing time:
//
//	auditgate/gw-eu1-7f3a
//	1024
//	<base64 of the 32-byte Merkle root>
//	time 2026-11-27T18:00:00.123456789Z
//
//	— <key name> <base64 of key hash and signature>
//
// Trust files pin verifier keys, each with an optional validity window; a
// signature counts only if its key was valid at the time the signed object
// states, so a retired key cannot vouch for objects sealed after it was
// retired.
package worm
