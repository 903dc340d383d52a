package deid

import (
	"bytes"
	"strings"
	"testing"
)

// An explicit VR that the data dictionary contradicts makes a value
// uninterpretable: the engine must not keep it under either reading.
// These cases come from fuzzing (seeds in testdata/fuzz/FuzzDeidentify):
// Tracking ID written as DA was kept whole, a Specific Character Set
// written as SQ carried a Patient's Name through in its item.
func TestContradictoryVRs(t *testing.T) {
	const (
		tTrackingID = 0x00620020 // UT
		tStudyDesc  = 0x00081030 // LO
		tTextValue  = 0x0040A160 // UT
	)
	base := func(extra ...el) []el {
		return append(sampleCT("PID-VR-000042", "1.2.826.0.1.999.1.2.9"), extra...)
	}
	without := func(els []el, tag uint32) []el {
		var out []el
		for _, x := range els {
			if x.tag != tag {
				out = append(out, x)
			}
		}
		return out
	}
	cases := []struct {
		name    string
		els     []el
		reject  bool
		removed int    // elements removed for their VR
		gone    uint32 // top-level tag absent from the output
		secret  string // must appear nowhere in the output
	}{
		{name: "free text written as a date", els: base(s(tTrackingID, "DA", "Wojciechowska 1.2.826.0.1.999.1.2.9")),
			removed: 1, gone: tTrackingID, secret: "Wojciechowska"},
		{name: "descriptor written as OB", els: append(without(base(), tStudyDesc), s(tStudyDesc, "OB", "CT THORAX WOJCIECHOWSKA")),
			removed: 1, gone: tStudyDesc, secret: "WOJCIECHOWSKA"},
		{name: "three levels down", els: base(sq(0x00081110, item(sq(0x0040A730, item(sq(0x0040A730, item(s(tTextValue, "PN", "Aleksandra Wojciechowska")))))))),
			removed: 1, secret: "Aleksandra"},
		// Table E.1-1 (2024c) attributes newer than the library's dictionary.
		{name: "kept sequence written as AT", els: base(s(0x00102161, "AT", "Wojciechowska 1.2.826.0.1.999.1.2.9")),
			removed: 1, gone: 0x00102161, secret: "Wojciechowska"},
		{name: "UID written as OB", els: base(s(0x300A0054, "OB", "WOJCIECHOWSKA 1.2.826.0.1.999.1.2.9")),
			removed: 1, gone: 0x300A0054, secret: "WOJCIECHOWSKA"},
		{name: "character set written as a sequence", els: append(without(base(), 0x00080005),
			sq(0x00080005, item(s(tagPatientName, "PN", "Wojciechowska^Aleksandra")))), reject: true},
		{name: "SOP Instance UID written as a date", els: append(without(base(), tagSOPInstanceUID),
			s(tagSOPInstanceUID, "DA", "1.2.826.0.1.999.1.2.9")), reject: true},
		{name: "Study Instance UID written as LO", els: append(without(base(), tagStudyInstanceUID),
			s(tagStudyInstanceUID, "LO", "1.2.826.0.1.999.1")), reject: true},
	}
	e := newEngine(t, researchProfile(), 3)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := buildFile(t, false, c.els)
			if c.reject {
				checkRejection(t, e, in, "unsupported")
				return
			}
			j, out := writeVerified(t, e, in)
			if got := j.Result().Counts.VRMismatchRemoved; got != c.removed {
				t.Errorf("vr_mismatch_removed = %d, want %d", got, c.removed)
			}
			p := parse(t, out)
			if c.gone != 0 && p.find(c.gone) != nil {
				t.Errorf("element with a contradicted VR is still in the output")
			}
			if bytes.Contains(bytes.ToUpper(out), []byte(strings.ToUpper(c.secret))) {
				t.Errorf("value of an element with a contradicted VR left in the output")
			}
		})
	}
}

// spool is an in-memory Spool.
type spool struct{ bytes.Buffer }

func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(s.Bytes()).ReadAt(p, off)
}
