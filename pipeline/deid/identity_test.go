package deid

import "testing"

// A Patient's Name or Patient ID holding a control character refuses the
// file, at any depth and whatever its VR; padding and ESC (ISO 2022) do
// not (from fuzzing: a Patient ID made of the next element's header).
func TestUnreadableIdentityRefused(t *testing.T) {
	const tOtherPIDs = 0x00101002 // Other Patient IDs Sequence
	// with is the sample CT with xs in place of its elements of the same tags.
	with := func(xs ...el) []el {
		out := xs
		for _, y := range sampleCT("PID-ID-000042", "1.2.826.0.1.999.1.2.9") {
			replaced := false
			for _, x := range xs {
				replaced = replaced || x.tag == y.tag
			}
			if !replaced {
				out = append(out, y)
			}
		}
		return out
	}
	cases := []struct {
		name   string
		els    []el
		refuse bool
	}{
		{"plain ID", with(s(tagPatientID, "LO", "PID-ID-000042")), false},
		{"NUL padding", with(s(tagPatientID, "LO", "PID-ID-000042\x00\x00")), false},
		{"leading NUL", with(s(tagPatientID, "LO", "\x00PID-ID-000042")), false},
		{"ISO 2022 name", with(s(0x00080005, "CS", `\ISO 2022 IR 87`),
			s(tagPatientName, "PN", "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B")), false},
		{"NUL inside the ID", with(s(tagPatientID, "LO", "PID\x00ID-000042")), true},
		{"TAB inside the name", with(s(tagPatientName, "PN", "Wojciechowska\t^Aleksandra")), true},
		{"header bytes in the ID, written as AS", with(s(tagPatientID, "AS", "IS\x02\x001 ")), true},
		{"nested ID", with(sq(tOtherPIDs, item(s(tagPatientID, "LO", "OTHER\x02ID")))), true},
	}
	e := newEngine(t, researchProfile(), 3)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := buildFile(t, false, c.els)
			if c.refuse {
				checkRejection(t, e, in, "malformed")
				return
			}
			deidBytes(t, e, in)
		})
	}
}
