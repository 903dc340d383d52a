package verify

import (
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

// naive finds every occurrence of every pattern, ASCII case folded, by
// trying each position: the reference the index must agree with.
func naive(pats [][]byte, v []byte) [][3]int {
	var out [][3]int
	for pi, p := range pats {
		if len(p) == 0 {
			continue
		}
		for i := 0; i+len(p) <= len(v); i++ {
			if asciiLowerEqual(v[i:i+len(p)], p) {
				out = append(out, [3]int{pi, i, i + len(p)})
			}
		}
	}
	return out
}

// asciiLowerEqual compares with ASCII letters folded, nothing else.
func asciiLowerEqual(a, b []byte) bool {
	for i := range a {
		if fold(a[i]) != fold(b[i]) {
			return false
		}
	}
	return true
}

func sorted(m [][3]int) [][3]int {
	sort.Slice(m, func(a, b int) bool {
		if m[a][1] != m[b][1] {
			return m[a][1] < m[b][1]
		}
		return m[a][0] < m[b][0]
	})
	return m
}

func TestPatternIndexAgreesWithNaiveSearch(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	alphabet := []byte("aAbBcC.^\\ 0119\x00\xc3\xa9\x1b$B")
	word := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.Intn(len(alphabet))]
		}
		return b
	}
	for round := 0; round < 2000; round++ {
		var pats [][]byte
		for i := 0; i < 1+r.Intn(12); i++ {
			pats = append(pats, word(1+r.Intn(6)))
		}
		v := word(r.Intn(200))
		var got [][3]int
		newPatternIndex(pats).each(v, func(p, s, e int) { got = append(got, [3]int{p, s, e}) })
		want := naive(pats, v)
		if !reflect.DeepEqual(sorted(got), sorted(want)) {
			t.Fatalf("patterns %q in %q:\n got %v\nwant %v", pats, v, got, want)
		}
	}
}

func TestPatternIndexCases(t *testing.T) {
	cases := []struct {
		name string
		pats []string
		v    string
		want int
	}{
		{"any ASCII case", []string{"kowalski"}, "Dr KOWALSKI and kowalski and KoWaLsKi", 3},
		{"overlapping", []string{"anan", "nan"}, "ananan", 4},
		{"pattern longer than value", []string{"kowalski"}, "kowal", 0},
		{"at the very end", []string{"ski"}, "kowalski", 1},
		{"two-byte patterns (UTF-16 ideograph)", []string{"\x71\x5c"}, "\x00\x71\x5c\x71\x5c", 2},
		{"non-ASCII is exact", []string{"é"}, "É é", 1},
		{"no patterns", nil, "anything", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var pats [][]byte
			for _, p := range c.pats {
				pats = append(pats, []byte(p))
			}
			n := 0
			newPatternIndex(pats).each([]byte(c.v), func(int, int, int) { n++ })
			if n != c.want {
				t.Errorf("%d matches, want %d", n, c.want)
			}
		})
	}
}
