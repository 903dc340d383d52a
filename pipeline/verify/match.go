package verify

// patternIndex finds every occurrence of a set of byte patterns in a
// value, ASCII letters in any case, overlapping occurrences included.
//
// Why not Aho-Corasick (github.com/petar-dambovaliev/aho-corasick, used
// before): a matcher serves one file, so building it is most of its cost,
// and that build is proportional to the total length of the patterns
// times the alphabet's fan-out: 0.5 ms for a CT slice's few hundred
// patterns, 260 ms for an MR whose Siemens CSA header yields thousands
// (BenchmarkVerify). Here building is one map insertion per pattern, and
// scanning looks each position's first bytes up in a bitmap, checking the
// few patterns that start that way. Outputs are small once Pixel Data is
// skipped, so scanning stays cheap.
type patternIndex struct {
	pats   [][]byte // folded to lower-case ASCII
	k      int      // bytes of the lookup key: the shortest pattern, at most 3
	bloom  []uint64 // bit per folded key hash
	bucket map[uint32][]int32
}

func newPatternIndex(pats [][]byte) *patternIndex {
	x := &patternIndex{k: 3, bloom: make([]uint64, 1<<10), bucket: map[uint32][]int32{}}
	for _, p := range pats {
		x.k = min(x.k, len(p))
	}
	x.pats = make([][]byte, len(pats))
	for i, p := range pats {
		f := p
		if hasUpperASCII(p) { // most patterns are lower case already
			f = make([]byte, len(p))
			for j, c := range p {
				f[j] = fold(c)
			}
		}
		x.pats[i] = f
		if len(f) == 0 {
			continue
		}
		key := x.key(f)
		w, bit := bloomBit(key)
		x.bloom[w] |= bit
		x.bucket[key] = append(x.bucket[key], int32(i))
	}
	return x
}

// bloomBit is where a key's bit sits in the 2^16-bit bitmap.
func bloomBit(key uint32) (int, uint64) {
	h := (key * 0x9E3779B1) >> 16
	return int(h >> 6), 1 << (h & 63)
}

func hasUpperASCII(b []byte) bool {
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// fold lowers an ASCII capital.
func fold(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// key packs the first k folded bytes of b.
func (x *patternIndex) key(b []byte) uint32 {
	var k uint32
	for i := 0; i < x.k; i++ {
		k = k<<8 | uint32(fold(b[i]))
	}
	return k
}

// each calls f(pattern, start, end) for every occurrence in v.
func (x *patternIndex) each(v []byte, f func(pat, start, end int)) {
	if x.k == 0 || len(x.bucket) == 0 {
		return
	}
	for i := 0; i+x.k <= len(v); i++ {
		key := x.key(v[i:])
		if w, bit := bloomBit(key); x.bloom[w]&bit == 0 {
			continue
		}
		for _, pi := range x.bucket[key] {
			p := x.pats[pi]
			if i+len(p) > len(v) || !equalFold(v[i:i+len(p)], p) {
				continue
			}
			f(int(pi), i, i+len(p))
		}
	}
}

// equalFold compares a value's bytes with a folded pattern.
func equalFold(v, p []byte) bool {
	for i, c := range p {
		if fold(v[i]) != c {
			return false
		}
	}
	return true
}
