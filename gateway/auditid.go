package gateway

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// ID is an exchange's audit id: a UUIDv7 (RFC 9562), so ids sort by time.
type ID [16]byte

// String returns the canonical 8-4-4-4-12 hex form.
func (id ID) String() string {
	var b [36]byte
	id.encode(&b)
	return string(b[:])
}

// AppendText appends the canonical form to dst.
func (id ID) AppendText(dst []byte) []byte {
	var b [36]byte
	id.encode(&b)
	return append(dst, b[:]...)
}

func (id ID) encode(b *[36]byte) {
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
}

// idSource hands out UUIDv7s that strictly increase within one process:
// the 48-bit millisecond clock and the 12-bit rand_a field are used as one
// counter (RFC 9562 §6.2, method 3), so ids made in the same millisecond
// still sort in the order they were made, and 62 random bits keep ids from
// different instances apart.
type idSource struct {
	last atomic.Uint64 // unix ms << 12 | sequence
}

func (s *idSource) next() ID {
	now := uint64(time.Now().UnixMilli()) << 12
	var v uint64
	for {
		old := s.last.Load()
		v = max(now, old+1)
		if s.last.CompareAndSwap(old, v) {
			break
		}
	}
	var id ID
	rand.Read(id[8:]) // never fails (crypto/rand since Go 1.24)
	// Bytes 0-5: unix ms; 6-7: version 7 and the 12-bit sequence.
	binary.BigEndian.PutUint64(id[0:8], (v>>12)<<16|0x7000|v&0xfff)
	id[8] = id[8]&0x3f | 0x80 // variant 10
	return id
}
