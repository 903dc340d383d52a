package deid

import (
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/uidreg"
)

// uidValues collects the UI values of a dataset at every depth, split into
// class attributes (tag -> values) and instance attributes.
func uidValues(els []*dicomraw.Element, class map[uint32][]string, instance map[string]bool) {
	for _, e := range els {
		for _, it := range e.Items {
			uidValues(it.Elements, class, instance)
		}
		if !e.Loaded || e.Tag.IsPrivate() || dicomraw.DictVR(e.Tag) != "UI" {
			continue
		}
		for _, v := range strings.Split(strings.TrimRight(string(e.Value), " \x00"), `\`) {
			if v = strings.Trim(v, " \x00"); v == "" {
				continue
			}
			if uidreg.ClassAttribute(uint32(e.Tag)) {
				class[uint32(e.Tag)] = append(class[uint32(e.Tag)], v)
			} else {
				instance[v] = true
			}
		}
	}
}

// checkClassUIDs is the corpus test's check of UIDs: no class UID
// (SOP class, transfer syntax, coding scheme, ..., registered or private)
// is mapped, at any depth or in the File Meta, and every instance UID not
// registered in PS3.6 is.
func checkClassUIDs(t *testing.T, orig, out parsed) (privateClassKept bool) {
	t.Helper()
	inClass, inInst := map[uint32][]string{}, map[string]bool{}
	uidValues(orig.f.Elements, inClass, inInst)
	outClass, outInst := map[uint32][]string{}, map[string]bool{}
	uidValues(out.f.Elements, outClass, outInst)
	known := map[string]bool{}
	for _, vs := range inClass {
		for _, v := range vs {
			known[v] = true
		}
	}
	for tag, vs := range outClass {
		for _, v := range vs {
			if !known[v] {
				t.Errorf("class UID attribute %s holds a value no class attribute of the input has (mapped?)", keyword(dicomraw.Tag(tag)))
			}
			if !isStandardUID(v) {
				privateClassKept = true
			}
		}
	}
	// Top-level class attributes stay, value for value.
	for _, tag := range uidreg.ClassAttributes() {
		a, inHas := orig.str(tag)
		b, outHas := out.str(tag)
		if inHas && a != "" && (!outHas || a != b) {
			t.Errorf("top-level %s changed", keyword(dicomraw.Tag(tag)))
		}
	}
	class := orig.metaStr(0x00020002)
	if v, ok := orig.str(tagSOPClassUID); ok && v != "" {
		class = v
	}
	if got := out.metaStr(0x00020002); got != class {
		t.Errorf("Media Storage SOP Class UID %q, want the input's class %q", got, class)
	}
	for v := range outInst {
		if inInst[v] && !isStandardUID(v) {
			t.Errorf("instance UID of the input left unmapped in the output")
			break
		}
	}
	return privateClassKept
}
