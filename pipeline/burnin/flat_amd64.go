package burnin

import (
	"math/bits"

	"golang.org/x/sys/cpu"
)

// simdRows reports whether this processor has the vector kernels of the
// CT and MR screen (AVX2): without them the screen maps whole rows.
func simdRows() bool { return cpu.X86.HasAVX2 }

// busyBlocks16 returns a bit for each block of sixteen 16-bit samples of
// src (at most 64 blocks, from block first; from block 0 only when the
// sixteen samples before src are readable) holding a key that differs
// from the sample before it by more than lim (shift, signed: the key's
// layout, see gray16).
func busyBlocks16(src []byte, first, lim, shift, signed uint64) uint64 {
	n := min(uint64(len(src)/32), 64)
	if first >= n {
		return 0
	}
	// The kernel shifts each block's bit in after the ones before: the
	// first block's ends highest.
	m := busyBits16(src, first, lim, shift, signed)
	return bits.Reverse64(m) >> (64 - (n - first)) << first
}

// busyBits16 is busyBlocks16's kernel (flat_amd64.s): its bits in the
// order the blocks were read.
//
//go:noescape
func busyBits16(src []byte, first, lim, shift, signed uint64) uint64

// keyRange16 is the lowest and highest key of the samples of src's whole
// blocks of sixteen (0xFFFF and 0 when it has none).
//
//go:noescape
func keyRange16(src []byte, shift, signed uint64) (lo, hi uint64)
