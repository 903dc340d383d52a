package deid

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// edited is a corpus file with some top-level values set (replaced, or
// inserted where absent), written back as a Part 10 file.
func edited(t *testing.T, name string, set map[uint32][2]string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	done := map[uint32]bool{}
	for _, e := range f.Elements {
		if v, ok := set[uint32(e.Tag)]; ok {
			e.Op, e.NewVR, e.NewValue = dicomraw.OpReplace, v[0], []byte(v[1])
			done[uint32(e.Tag)] = true
		}
	}
	for tag, v := range set {
		if !done[tag] {
			f.Insert = append(f.Insert, newElement(tag, v[0], v[1]))
		}
	}
	var meta []dicomraw.MetaElement
	for _, m := range f.Meta {
		if m.Tag != 0x00020000 {
			meta = append(meta, dicomraw.MetaElement{Tag: m.Tag, VR: m.VR, Value: m.Value})
		}
	}
	var out bytes.Buffer
	if err := dicomraw.Write(&out, f, meta); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkValid fails when dcmdump cannot read out, or dciodvfy reports an
// error for out that it does not report for in.
func checkValid(t *testing.T, in, out []byte) {
	t.Helper()
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.dcm"), filepath.Join(dir, "out.dcm")
	if err := os.WriteFile(inPath, in, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := dcmdumpErrors(t, outPath); msg != "" {
		t.Errorf("dcmdump: %s", msg)
	}
	before := iodErrors(t, inPath)
	for e := range iodErrors(t, outPath) {
		if !before[e] {
			t.Errorf("new dciodvfy error: %s", e)
		}
	}
}

// TestVendorAIResultsWritten builds the two AI-result objects that were
// once quarantined ("residual identifier in ContentDescription (name
// value from ContentCreatorName)"): a grayscale presentation state and a
// secondary capture whose Content Creator's Name is the vendor's product,
// repeated in Content Description and Manufacturer, with a private block
// of that vendor. The product name is not the patient's data: it survives
// in Manufacturer and Content Description, while the referring
// physician's name that Content Description also repeats is cut out of
// it. Both are written, valid, free of the file's identifiers.
func TestVendorAIResultsWritten(t *testing.T) {
	requireTool(t, "dcmdump")
	requireTool(t, "dciodvfy")
	const product = "ACME AI"
	common := map[uint32][2]string{
		tManuf:         {"LO", product},
		0x00081090:     {"LO", "NoduleNet 3"},
		0x00700084:     {"PN", product},                                      // Content Creator's Name
		0x00700081:     {"LO", product + " nodule findings for Dr Hartmann"}, // Content Description
		tRefPhys:       {"PN", "Hartmann^Chidiebere"},                        // Referring Physician's Name
		tagPatientName: {"PN", plantSurname + "^" + plantGiven},              //
		tagPatientID:   {"LO", plantID},                                      //
		0x0008103E:     {"LO", product + " results for " + plantSurname},     // Series Description
		0x00290010:     {"LO", product},                                      // a private block of the vendor
		0x00291010:     {"LO", "model 3 " + plantSurname},                    //
		tStudyDsc:      {"LO", "CHEST CT"},                                   //
		0x00200010:     {"SH", "S-1"},                                        // Study ID
	}
	cases := []struct{ name, file string }{
		{"grayscale softcopy presentation state", "gsps_referencing_cr.dcm"},
		{"secondary capture", "sc_rgb_3x3_odd.dcm"},
	}
	for _, c := range cases {
		in := edited(t, c.file, common)
		for _, prof := range []*rules.Profile{builtinProfile(t, "basic"), builtinProfile(t, "research")} {
			t.Run(c.name+"/"+prof.Name, func(t *testing.T) {
				j, out := writeVerified(t, newEngine(t, prof, 5), in)
				checkValid(t, in, out)
				p := parse(t, out)
				if v, _ := p.str(tManuf); v != product {
					t.Errorf("Manufacturer %q, want the product name kept", v)
				}
				desc, _ := p.str(0x00700081)
				if !strings.HasPrefix(desc, product+" nodule findings") {
					t.Errorf("Content Description %q lost the product name or its text", desc)
				}
				low := bytes.ToLower(out)
				for _, v := range []string{plantSurname, plantGiven, plantID, "hartmann", "chidiebere"} {
					if bytes.Contains(low, bytes.ToLower([]byte(v))) {
						t.Errorf("%q left in the output", v)
					}
				}
				if n := j.Result().Counts.KeptCleaned; n < 1 {
					t.Errorf("kept_cleaned = %d, want Content Description counted", n)
				}
			})
		}
	}
}

// TestKeptValuesCleanedEmptiedRemoved: a value the profile keeps that
// holds an identifying value of the file is cut out of text, emptied
// where the attribute may be empty, removed when private, and sends the
// file to quarantine only from a Type 1 attribute; each case is counted.
func TestKeptValuesCleanedEmptiedRemoved(t *testing.T) {
	const pid = "88123456"
	lut := sq(0x00283010, item( // VOI LUT Sequence
		s(0x00283002, "US", "\x04\x00\x00\x00\x10\x00"),
		s(0x00283003, "LO", "window of Dr Hartmann"), // LUT Explanation: not in Table E.1-1
		s(0x00283006, "US", "\x00\x00\x01\x00\x02\x00\x03\x00"),
	))
	cases := []struct {
		name                                string
		extra                               []el
		cleaned, emptied, removed, heldBack int
		gone                                []string
		kept                                []string
	}{
		{"name in a kept text of a sequence", []el{lut}, 1, 0, 0, 0, []string{"hartmann"}, []string{"window of Dr ***"}},
		{"ID in a kept number", []el{s(0x00200012, "IS", pid)}, 0, 1, 0, 0, []string{pid}, nil},
		{"ID in a safe private number", []el{s(0x00190010, "LO", "GEMS_ACQU_01"), s(0x00191023, "DS", pid)}, 0, 0, 1, 0, []string{pid}, []string{}},
		{"ID in a Type 1 attribute", []el{s(0x00200013, "IS", pid)}, 0, 0, 0, 1, nil, nil},
		// Retain Full Dates keeps Acquisition Date; a newborn's equals the
		// birth date, which the profile removes.
		{"kept date equal to the birth date", []el{s(tBirth, "DA", "20240517"), s(0x00080022, "DA", "20240517")}, 0, 1, 0, 0, []string{"20240517"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			els := append(base(s(tRefPhys, "PN", "Hartmann^Chidiebere")), c.extra...)
			els[6] = s(tagPatientID, "LO", pid)
			in := buildFile(t, false, els)
			prof := builtinProfile(t, "research")
			if strings.Contains(c.name, "date") {
				prof = profileWith("full-dates", ps315.RetainLongFullDates)
			}
			j, err := newEngine(t, prof, 1).Plan(bytes.NewReader(in), int64(len(in)))
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			var sp spool
			_, _, err = j.WriteVerified(&sp)
			cnt := j.Result().Counts
			if cnt.KeptCleaned != c.cleaned || cnt.KeptEmptied != c.emptied || cnt.KeptRemoved != c.removed || cnt.KeptHeldBack != c.heldBack {
				t.Errorf("kept cleaned/emptied/removed/held back = %d/%d/%d/%d, want %d/%d/%d/%d",
					cnt.KeptCleaned, cnt.KeptEmptied, cnt.KeptRemoved, cnt.KeptHeldBack, c.cleaned, c.emptied, c.removed, c.heldBack)
			}
			var rej *Rejection
			if c.heldBack > 0 {
				if !errors.As(err, &rej) || rej.Kind != "residual" {
					t.Fatalf("want the file quarantined, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("verified write: %v", err)
			}
			low := bytes.ToLower(sp.Bytes())
			for _, v := range c.gone {
				if bytes.Contains(low, []byte(strings.ToLower(v))) {
					t.Errorf("%q left in the output", v)
				}
			}
			for _, v := range c.kept {
				if !bytes.Contains(sp.Bytes(), []byte(v)) {
					t.Errorf("%q not kept", v)
				}
			}
		})
	}
}

// TestAnimalPatient: for an animal (Patient Species Description present)
// the Patient Module makes Responsible Person and Responsible
// Organization Type 2C, so Table E.1-1's X empties them instead of
// removing them, and Responsible Person Role (1C on a valued Responsible
// Person) goes; for a person they are removed. The veterinary image of
// the corpus with the animal attributes added: written, valid, without
// the owner's name or clinic.
func TestAnimalPatient(t *testing.T) {
	requireTool(t, "dcmdump")
	requireTool(t, "dciodvfy")
	animal := map[uint32][2]string{
		0x00102201: {"LO", "Canine"},
		0x00102292: {"LO", "Beagle"},
		0x00102203: {"CS", "ALTERED"},
	}
	owner := map[uint32][2]string{tagResponsiblePerson: {"PN", "Smithfield^Johanna"}, tagResponsiblePersonRl: {"CS", "OWNER"}}
	clinic := map[uint32][2]string{tagResponsibleOrg: {"LO", "Happy Paws Clinic"}}
	merge := func(ms ...map[uint32][2]string) map[uint32][2]string {
		out := map[uint32][2]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	cases := []struct {
		name   string
		set    map[uint32][2]string
		animal bool
	}{
		{"animal with owner and clinic", merge(animal, owner, clinic), true},
		{"animal with owner", merge(animal, owner), true},
		{"animal with clinic", merge(animal, clinic), true},
		{"person with a responsible person", merge(owner, clinic), false},
	}
	for _, c := range cases {
		in := edited(t, "dx_veterinary.dcm", c.set)
		for _, prof := range []*rules.Profile{builtinProfile(t, "basic"), builtinProfile(t, "research")} {
			t.Run(c.name+"/"+prof.Name, func(t *testing.T) {
				_, out := writeVerified(t, newEngine(t, prof, 4), in)
				checkValid(t, in, out)
				p := parse(t, out)
				for _, tag := range []uint32{tagResponsiblePerson, tagResponsibleOrg} {
					_, wasIn := c.set[tag]
					v, present := p.str(tag)
					if want := c.animal && wasIn; present != want || v != "" {
						t.Errorf("%s present=%v value %q, want present=%v and empty", keyword(dicomraw.Tag(tag)), present, v, want)
					}
				}
				if _, ok := p.str(tagResponsiblePersonRl); ok {
					t.Error("Responsible Person Role kept without a valued Responsible Person")
				}
				for _, v := range []string{"Smithfield", "Johanna", "Happy Paws"} {
					if bytes.Contains(out, []byte(v)) {
						t.Errorf("%q left in the output", v)
					}
				}
				if v, _ := p.str(0x00102201); v != "Canine" && c.animal {
					t.Errorf("Patient Species Description %q, want kept", v)
				}
			})
		}
	}
}
