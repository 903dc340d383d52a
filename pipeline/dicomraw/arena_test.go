package dicomraw

import "testing"

// Parsed values share allocations (a slab of elements, an arena of small
// values). Each value must still behave as its own slice: growing one
// (the editor appends padding, callers append text) must never write into
// the value stored after it, and every value must read back as written.
func TestValuesAreIndependent(t *testing.T) {
	var body []byte
	want := map[Tag]string{}
	for i := 0; i < 300; i++ { // several arenas' worth
		tg := NewTag(0x0009, uint16(0x1000+i))
		v := string(rune('A'+i%26)) + "value"
		if i%50 == 0 {
			v = string(make([]byte, 600)) // larger than an arena slot
		}
		body = elem(body, tg, "LO", v)
		want[tg] = string(Pad("LO", []byte(v)))
	}
	body = append(elem(nil, 0x00090010, "LO", "CREATOR"), body...)
	f, err := parseBytes(part10(ExplicitVRLittleEndian, body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range f.Elements {
		if _, ok := want[e.Tag]; !ok {
			continue
		}
		grown := append(e.Value, "XXXXXXXX"...)
		if i+1 < len(f.Elements) {
			next := f.Elements[i+1]
			if string(next.Value) != want[next.Tag] {
				t.Fatalf("growing %s changed %s: %q", e.Tag, next.Tag, next.Value)
			}
		}
		if string(grown[:len(e.Value)]) != want[e.Tag] || string(e.Value) != want[e.Tag] {
			t.Fatalf("%s reads %q, want %q", e.Tag, e.Value, want[e.Tag])
		}
	}
}
