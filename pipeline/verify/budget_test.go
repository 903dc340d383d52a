package verify

import (
	"errors"
	"fmt"
	"testing"
)

// capBudget refuses charges past its limit.
type capBudget struct{ limit, used int64 }

var errOver = errors.New("over the test budget")

func (b *capBudget) Charge(n int64) error {
	b.used += n
	if b.used > b.limit {
		return errOver
	}
	return nil
}

// manyNames is an input with n distinct identifying values.
func manyNames(t *testing.T, n int) []el {
	var items [][]el
	for i := 0; i < n; i++ {
		items = append(items, []el{v(0x00080090, "PN", fmt.Sprintf("Doctor%d^Who", i)), v(tID, "LO", fmt.Sprintf("MRN%07d", i))})
	}
	return []el{v(tSOP, "UI", "1.2.826.0.1.3680043.99.1"), seq(0x00081111, items...)}
}

func TestSetChargesItsBudget(t *testing.T) {
	in := file(t, manyNames(t, 2000)...)
	b := &capBudget{limit: 1 << 40}
	s := NewSet(Policy{})
	s.SetBudget(b)
	s.Add(in)
	collected := b.used
	if s.Err() != nil || s.Len() < 4000 || collected < int64(s.Len())*needleCost {
		t.Fatalf("%d needles charged %d bytes (err %v)", s.Len(), collected, s.Err())
	}
	s.Compile()
	if b.used <= collected {
		t.Fatal("compiling the patterns charged nothing")
	}
}

func TestRefusedSetIsNeitherCompleteNorCached(t *testing.T) {
	in := file(t, manyNames(t, 2000)...)
	b := &capBudget{limit: 100 << 10}
	s := NewSet(Policy{})
	s.SetBudget(b)
	s.Add(in)
	if !errors.Is(s.Err(), errOver) {
		t.Fatalf("Err() = %v, want the budget's refusal", s.Err())
	}
	if s.Len() >= 4000 {
		t.Fatalf("the set kept collecting after the refusal: %d needles", s.Len())
	}
	cache := NewCache(8)
	s.CompileCached(cache)
	if len(cache.m) != 0 {
		t.Fatal("an incomplete needle list was cached")
	}
}

// A hostile file's thousands of needles compile once, for it alone: the
// cache, which outlives the file's budget, keeps only lists of a
// series' usual size.
func TestCacheKeepsNoLargeList(t *testing.T) {
	cache := NewCache(8)
	big := Collect(file(t, manyNames(t, 5000)...), Policy{})
	big.CompileCached(cache)
	if len(cache.m) != 0 {
		t.Fatalf("a list of %d needles was cached", big.Len())
	}
	small := Collect(file(t, manyNames(t, 3)...), Policy{})
	small.CompileCached(cache)
	if len(cache.m) != 1 || cache.bytes <= 0 || cache.bytes > cache.maxBytes {
		t.Fatalf("%d lists, %d bytes cached, want the small one", len(cache.m), cache.bytes)
	}
}
