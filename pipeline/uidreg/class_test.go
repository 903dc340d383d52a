package uidreg_test

import (
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/uidreg"
)

// TestClassAttributes checks the list against the data dictionary: every
// class attribute is a UI attribute whose name says it names a class, a
// syntax, a scheme or a creator, and none is one PS3.15 Table E.1-1 gives
// an action of its own (the table decides those).
func TestClassAttributes(t *testing.T) {
	kinds := []string{"Class", "Syntax", "Scheme", "Context", "Mapping Resource", "Creator"}
	for _, tag := range uidreg.ClassAttributes() {
		info, ok := dicomraw.Lookup(dicomraw.Tag(tag))
		if !ok || len(info.VRs) != 1 || info.VRs[0] != "UI" {
			t.Errorf("%08X is not a UI attribute of the dictionary", tag)
			continue
		}
		named := false
		for _, k := range kinds {
			named = named || strings.Contains(info.Name, k)
		}
		if !named {
			t.Errorf("%08X %q does not name a class, syntax, scheme or creator", tag, info.Name)
		}
		if _, inTable := ps315.Lookup(tag); inTable {
			t.Errorf("%08X %q has a Table E.1-1 row: the table decides it", tag, info.Name)
		}
		if !uidreg.ClassAttribute(tag) {
			t.Errorf("ClassAttribute(%08X) = false", tag)
		}
	}
	for _, instance := range []uint32{0x00080018, 0x0020000D, 0x0020000E, 0x00081155, 0x00200052, 0x00020003, 0x0018100B} {
		if uidreg.ClassAttribute(instance) {
			t.Errorf("ClassAttribute(%08X) = true for an instance (or table-listed) attribute", instance)
		}
	}
}
