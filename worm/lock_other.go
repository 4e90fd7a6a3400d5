//go:build !unix

package worm

// lockSpool does nothing where flock is missing: one process per spool is
// then the operator's duty.
func lockSpool(dir string) (unlock func(), err error) { return func() {}, nil }
