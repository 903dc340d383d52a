package dicomraw

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

// Attributes of PS3.15 Table E.1-1 that the library dictionary lacks are
// known through the supplement: their VR is given, and a file that writes
// another one is contradicted (from fuzzing: an Ethnic Group Code
// Sequence written as AT was kept as opaque bytes holding a UID).
func TestDictionarySupplement(t *testing.T) {
	cases := []struct {
		tag         Tag
		keyword     string
		dictVR      string
		written     string
		contradicts bool
	}{
		{0x00102161, "EthnicGroupCodeSequence", "SQ", "AT", true},
		{0x00102161, "EthnicGroupCodeSequence", "SQ", "OB", true},
		{0x00102161, "EthnicGroupCodeSequence", "SQ", "SQ", false},
		{0x00102161, "EthnicGroupCodeSequence", "SQ", "UN", false},
		{0x300A0054, "TableTopPositionAlignmentUID", "UI", "OB", true},
		{0x300A0054, "TableTopPositionAlignmentUID", "UI", "UI", false},
		{0x00001000, "AffectedSOPInstanceUID", "UI", "LO", true},
		{0x00001001, "RequestedSOPInstanceUID", "UI", "UI", false},
	}
	for _, c := range cases {
		t.Run(c.tag.String()+" "+c.written, func(t *testing.T) {
			info, ok := Lookup(c.tag)
			if !ok || info.Keyword != c.keyword {
				t.Fatalf("Lookup = %q, %v; want %q", info.Keyword, ok, c.keyword)
			}
			if got := DictVR(c.tag); got != c.dictVR {
				t.Errorf("DictVR = %q, want %q", got, c.dictVR)
			}
			if got := VRContradicts(c.tag, c.written); got != c.contradicts {
				t.Errorf("VRContradicts(%s) = %v, want %v", c.written, got, c.contradicts)
			}
		})
	}
}

// Every attribute Table E.1-1 names must be in the dictionary, or nothing
// checks the VR of a value the profile acts on (keeps, maps or dummies).
func TestDictionaryCoversTableE11(t *testing.T) {
	n := 0
	for _, r := range ps315.Rows() {
		if r.PrivateAll || r.Mask&0xFFFF != 0xFFFF {
			continue // private attributes; a whole repeating group (50xx,xxxx)
		}
		n++
		if _, ok := Lookup(Tag(r.Tag)); !ok {
			t.Errorf("(%s) %s is in Table E.1-1 but not in the data dictionary", r.TagText, r.Name)
		}
	}
	if n < 600 {
		t.Fatalf("only %d rows checked", n)
	}
}

// Lookup's index answers what the dictionary answers: for every tag it
// lists, every tag of the supplement, the repeating groups folded onto
// their base, group lengths, private tags and random tags; and neither
// dictionary lists a private (odd) group, which Lookup answers without
// looking.
func TestLookupIndex(t *testing.T) {
	same := func(tg Tag) {
		t.Helper()
		got, gok := Lookup(tg)
		want, wok := lookupDict(tg)
		if gok != wok || !reflect.DeepEqual(got, want) {
			t.Fatalf("(%s): Lookup = %+v %v, the dictionary %+v %v", tg, got, gok, want, wok)
		}
	}
	for _, tg := range dictTags {
		if Tag(tg).Group()&1 == 1 {
			t.Fatalf("(%s) listed: a private group", Tag(tg))
		}
		if _, ok := lookupDict(Tag(tg)); !ok {
			t.Fatalf("(%s) listed but not found", Tag(tg))
		}
		same(Tag(tg))
	}
	for tg := range supplement {
		if tg.Group()&1 == 1 {
			t.Fatalf("(%s) in the supplement: a private group", tg)
		}
		same(tg)
	}
	for _, tg := range []Tag{0x60023000, 0x60220010, 0x50103000, 0x7F010010, 0x7FE00010, 0x00080000, 0x00090000, 0x00091000, 0x60013000, 0xFFFEE000, 0xFFFFFFFF, 0} {
		same(tg)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 200000 {
		tg := Tag(rng.Uint32())
		if rng.IntN(2) == 0 { // near listed tags: same groups, nearby elements
			tg = Tag(dictTags[rng.IntN(len(dictTags))]&0xFFFF0000 | uint32(rng.IntN(0x1100)))
		}
		same(tg)
	}
}

// TestGeneratedUpToDate runs the generator into a temporary file and checks
// that dict_gen.go is what it produces from the pinned module.
func TestGeneratedUpToDate(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out := filepath.Join(t.TempDir(), "dict_gen.go")
	if msg, err := exec.Command(goTool, "run", "./internal/gendict", "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("generator failed: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("dict_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, have) {
		t.Fatal("dict_gen.go is stale: run `go generate ./pipeline/dicomraw`")
	}
}

func BenchmarkLookup(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Lookup(Tag(dictTags[i%300]))
	}
}
