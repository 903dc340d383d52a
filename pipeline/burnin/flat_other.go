//go:build !amd64

package burnin

// simdRows reports whether this processor has the vector kernels of the
// CT and MR screen: not on this architecture (the screen maps whole rows).
func simdRows() bool { return false }

func busyBlocks16(src []byte, first, lim, shift, signed uint64) uint64 {
	panic("burnin: no vector kernels on this architecture")
}

func keyRange16(src []byte, shift, signed uint64) (lo, hi uint64) {
	panic("burnin: no vector kernels on this architecture")
}
