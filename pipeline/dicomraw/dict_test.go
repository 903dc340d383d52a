package dicomraw

import (
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
