//go:build !race

package bench

// raceEnabled says the race detector is on. It makes sync.Pool drop items on
// purpose, so allocation counts mean nothing then.
const raceEnabled = false
