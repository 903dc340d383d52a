package deid

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// Planted identifiers: the patient's, repeated in places no single rule
// names.
const (
	plantSurname = "Kowalczyk"
	plantGiven   = "Zbigniew"
	plantID      = "PID-778899"
)

func utf16le(s string) string {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = append(b, byte(c), byte(c>>8))
	}
	return string(b)
}

// plantedIn reports which planted values occur in b, in any case, as
// UTF-8/ASCII or UTF-16LE: an oracle that shares no code with the verifier.
func plantedIn(b []byte) []string {
	var hits []string
	low := bytes.ToLower(b)
	for _, v := range []string{plantSurname, plantGiven, plantID} {
		for _, form := range []string{strings.ToLower(v), strings.ToLower(utf16le(v))} {
			if bytes.Contains(low, []byte(form)) {
				hits = append(hits, v)
				break
			}
		}
	}
	return hits
}

func base(extra ...el) []el {
	return append([]el{
		s(0x00080005, "CS", "ISO_IR 100"),
		s(tagSOPClassUID, "UI", ctClass),
		s(tagSOPInstanceUID, "UI", "1.2.826.0.1.3680043.77.1"),
		s(tagStudyInstanceUID, "UI", "1.2.826.0.1.3680043.77.2"),
		s(tagSeriesInstanceUID, "UI", "1.2.826.0.1.3680043.77.3"),
		s(tagPatientName, "PN", plantSurname+"^"+plantGiven),
		s(tagPatientID, "LO", plantID),
	}, extra...)
}

// TestAdversarialPlacements plants the patient's identifiers where
// de-identifiers miss them, and shows for every built-in profile (and one
// with every Clean option) that each is removed from the output or the
// file is quarantined by the verifier: never written with the value.
func TestAdversarialPlacements(t *testing.T) {
	pdf := "%PDF-1.4\n1 0 obj << /Type /Page >>\nBT (Patient: " + plantSurname + " " + plantGiven + ", " + plantID + ") Tj ET\n%%EOF"
	cases := []struct {
		name     string
		implicit bool
		els      []el
	}{
		{"three levels of nested sequences", false, base(
			sq(0x52009229, item(sq(0x00209111, item(sq(0x00409096, item(
				s(0x00081030, "LO", "CT for "+plantSurname),
				s(0x00081070, "PN", plantGiven+"^"+plantSurname),
				s(0x00100020, "LO", plantID),
				s(0x00409210, "SH", plantSurname), // LUT Label: not in Table E.1-1
			)))))))},
		{"private blocks: LO, SQ, OB with UTF-16 text", false, base(
			s(0x00330010, "LO", "ACMEPACS_PATIENT_01"),
			s(0x00331001, "LO", strings.ToUpper(plantSurname+" "+plantGiven)),
			sq(0x00331002, item(s(0x00331003, "LO", plantID), sq(0x00331004, item(s(0x00100010, "PN", plantSurname))))),
			s(0x00331005, "OB", "\x01\x00"+utf16le("Pt "+plantSurname+" "+plantID)+"\x00\x00"),
			s(0x00190010, "LO", "GEMS_ACQU_01"),
			s(0x00191023, "DS", "39.375"), // safe: kept under research
		)},
		{"VR UN in an implicit file", true, base(
			s(0x00621234, "LO", plantSurname+" "+plantID), // unknown public tag
			s(0x00110010, "LO", "SOME VENDOR"),
			s(0x00111001, "LO", plantSurname),
			sq(0x00111002, item(s(0x00100010, "PN", plantGiven), s(0x00111003, "LO", plantID))),
		)},
		{"SR content text and person names", false, base(
			s(0x0040A040, "CS", "CONTAINER"),
			sq(tagContentSequence,
				item(s(0x0040A040, "CS", "PNAME"), sq(tagConceptNameCodeSeq, item(s(tagCodeValue, "SH", "121008"), s(tagCodingSchemeDesig, "SH", "DCM"), s(tagCodeMeaning, "LO", "Person Observer Name"))),
					s(0x0040A123, "PN", plantSurname+"^"+plantGiven)),
				item(s(0x0040A040, "CS", "CONTAINER"), sq(tagContentSequence,
					item(s(0x0040A040, "CS", "CONTAINER"), sq(tagContentSequence,
						item(s(0x0040A040, "CS", "TEXT"), sq(tagConceptNameCodeSeq, item(s(tagCodeValue, "SH", "121071"), s(tagCodingSchemeDesig, "SH", "DCM"), s(tagCodeMeaning, "LO", "Finding"))),
							s(0x0040A160, "UT", "Mr "+plantSurname+" ("+plantID+") was told"))))))),
		)},
		{"free-text descriptors", false, base(
			s(0x00081030, "LO", "CT THORAX "+strings.ToUpper(plantSurname)),
			s(0x0008103E, "LO", "series for "+plantGiven+" "+plantSurname),
			s(0x00181030, "LO", plantID+" protocol"),
			s(0x00204000, "LT", "Patient "+plantSurname+", ID "+plantID+", recalled"),
			s(0x00321060, "LO", "Requested for "+plantSurname),
			s(0x00187006, "LT", "detector of "+plantSurname), // Detector Description: not in Table E.1-1
		)},
		{"encapsulated PDF document", false, base(
			s(0x00420010, "ST", "report of "+plantSurname),
			s(0x00420012, "LO", "application/pdf"),
			s(0x00420011, "OB", pdf),
		)},
		{"overlays", false, base(
			s(0x60000010, "US", "\x08\x00"), s(0x60000011, "US", "\x08\x00"),
			s(0x60000022, "LO", "overlay of "+plantSurname),
			s(0x60000040, "CS", "G"), s(0x60000050, "SS", "\x01\x00\x01\x00"),
			s(0x60000100, "US", "\x01\x00"), s(0x60000102, "US", "\x00\x00"),
			s(0x60001500, "LO", plantID),
			s(0x60003000, "OW", "\xff\x00\xff\x00\xff\x00\xff\x00"),
			s(0x60004000, "LT", "comment "+plantSurname),
		)},
	}
	allClean := profileWith("all-clean", ps315.RetainLongModifiedDates, ps315.RetainPatientCharacteristics,
		ps315.RetainSafePrivate, ps315.CleanDescriptors, ps315.CleanStructuredContent, ps315.CleanGraphics)
	profilesToTry := []*rules.Profile{builtinProfile(t, "basic"), builtinProfile(t, "research"), allClean}
	for _, c := range cases {
		in := buildFile(t, c.implicit, c.els)
		if len(plantedIn(in)) != 3 {
			t.Fatalf("%s: test input lacks planted values", c.name)
		}
		for _, p := range profilesToTry {
			t.Run(c.name+"/"+p.Name, func(t *testing.T) {
				j, err := newEngine(t, p, 1).Plan(bytes.NewReader(in), int64(len(in)))
				if err != nil {
					t.Fatalf("plan: %v", err)
				}
				spool, err := os.Create(filepath.Join(t.TempDir(), "out.dcm"))
				if err != nil {
					t.Fatal(err)
				}
				defer spool.Close()
				n, _, err := j.WriteVerified(spool)
				var rej *Rejection
				if errors.As(err, &rej) && rej.Kind == "residual" {
					t.Logf("quarantined: %s", rej.Reason)
					for _, v := range []string{plantSurname, plantGiven, plantID} {
						if strings.Contains(strings.ToLower(rej.Reason), strings.ToLower(v)) {
							t.Errorf("quarantine reason carries a planted value: %s", rej.Reason)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("write: %v", err)
				}
				out := make([]byte, n)
				spool.ReadAt(out, 0)
				if hits := plantedIn(out); len(hits) > 0 {
					t.Errorf("written with planted values %v", hits)
				}
			})
		}
	}
}

// TestCleanedTextLosesContradictedValues: an attribute whose written VR
// contradicts the data dictionary is removed uninterpreted, and the text
// its bytes hold (and its value read as the dictionary's VR) is taken out
// of the free text a Clean option keeps, as the verifier expects: the
// file is written, clean, not quarantined. Found by FuzzDeidentify (a
// Discharge Date written as AS, repeated in Reason for the Requested
// Procedure).
func TestCleanedTextLosesContradictedValues(t *testing.T) {
	in := buildFile(t, false, base(
		s(0x00102180, "AS", "Zbigniew Carpentry"), // Occupation (SH) written as AS
		s(0x00380030, "LO", "20240517"),           // Discharge Date (DA) written as LO
		s(0x0032000A, "CS", "COMPLETED"),
		s(0x00321030, "LO", "zbigniew carpentry 20240517"), // Reason for Study: cleaned
	))
	_, out := writeVerified(t, newEngine(t, builtinProfile(t, "research"), 1), in)
	low := bytes.ToLower(out)
	for _, v := range []string{"zbigniew carpentry", "20240517"} {
		if bytes.Contains(low, []byte(v)) {
			t.Errorf("%q left in the output", v)
		}
	}
}

// A text to clean whose bytes spell the patient's name only when read
// without its character set: inside an ISO 2022 two-byte run (ESC $ B,
// JIS X 0208) the letters are kanji to a reader, so the engine's cleaning
// of the decoded text finds nothing, while the verifier, reading bytes as
// they are, finds the name. The text is emptied and the file written; the
// same name in plain text is cleaned as before.
func TestUncleanableTextIsEmptied(t *testing.T) {
	cases := []struct {
		name          string
		reason        string // Reason for Study, cleaned by the research profile
		emptied, kept bool   // the text emptied; any of it kept
	}{
		{"name inside a two-byte run", "\x1b$B" + plantGiven + "\x1b(B follow-up", true, false},
		{"name as text", "follow-up " + plantGiven + " knee", false, true},
		{"no name", "follow-up knee", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			els := base(s(0x00321030, "LO", tc.reason))
			els[0] = s(0x00080005, "CS", `\ISO 2022 IR 87`) // ASCII, and JIS X 0208 by code extension
			in := buildFile(t, false, els)
			j, out := writeVerified(t, newEngine(t, builtinProfile(t, "research"), 1), in)
			if bytes.Contains(bytes.ToLower(out), bytes.ToLower([]byte(plantGiven))) {
				t.Errorf("%q left in the output", plantGiven)
			}
			c := j.Result().Counts
			if got := c.UncleanableEmptied == 1; got != tc.emptied {
				t.Errorf("uncleanable_emptied = %d", c.UncleanableEmptied)
			}
			if got := bytes.Contains(out, []byte("follow-up")); got != tc.kept {
				t.Errorf("the rest of the text kept: %v, want %v", got, tc.kept)
			}
		})
	}
}
