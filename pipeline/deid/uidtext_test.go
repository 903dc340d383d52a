package deid

import (
	"bytes"
	"testing"
)

// Cleaned free text loses the UIDs the engine replaces, so the original
// does not survive next to its mapped attribute; registered UIDs and
// short numbers stay (from fuzzing: a SOP Instance UID in Additional
// Patient History).
func TestUIDsCleanedFromText(t *testing.T) {
	const (
		tAddHistory = 0x001021B0 // LT, C under Clean Descriptors
		sop         = "1.2.826.0.1.999.1.2.9"
	)
	cases := []struct {
		name, text string
		gone, kept string
	}{
		{"instance UID", "prior exam " + sop + " reviewed", sop, "prior exam"},
		{"study UID between punctuation", "Study:1.2.826.0.1.999.1;", "1.2.826.0.1.999.1", "Study:"},
		{"registered UID", "stored as 1.2.840.10008.5.1.4.1.1.2", "", "1.2.840.10008.5.1.4.1.1.2"},
		{"short number", "protocol 1.2.3", "", "1.2.3"},
	}
	e := newEngine(t, researchProfile(), 3)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := buildFile(t, false, append(sampleCT("PID-UID-000042", sop), s(tAddHistory, "LT", c.text)))
			_, out := writeVerified(t, e, in)
			got, _ := parse(t, out).str(tAddHistory)
			if c.gone != "" && bytes.Contains([]byte(got), []byte(c.gone)) {
				t.Errorf("UID left in the cleaned text")
			}
			if !bytes.Contains([]byte(got), []byte(c.kept)) {
				t.Errorf("cleaned text lost %q: %q", c.kept, got)
			}
		})
	}
}
