package gateway

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"
)

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
