package deid

import (
	"bytes"
	"errors"
	stdimage "image"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
)

// itemIndex is the item number in a verifier's attribute path ("[2]"),
// which the engine's recorded paths leave out.
var itemIndex = regexp.MustCompile(`\[\d+\]`)

// fuzzLimits are the defaults, with inflation bounded to what a fuzzer's
// few kilobytes could reasonably need.
var fuzzLimits = dicomraw.Limits{MaxInflated: 64 << 20}

// addCorpusSeeds adds every shared corpus file up to 1 MB.
func addCorpusSeeds(f *testing.F) {
	dir := corpusDir(f)
	paths, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, p := range paths {
		if n := filepath.Base(p); n == "MANIFEST.tsv" || n == "README.md" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Size() > 1<<20 {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDeidentify runs the research profile on anything: no panic; a
// refusal is a *Rejection; an accepted file writes, its output parses,
// the verifier finds nothing in it, and the input's Patient's Name and
// Patient ID values are nowhere in it.
func FuzzDeidentify(f *testing.F) {
	addCorpusSeeds(f)
	eng, err := New(Config{Profile: builtinProfile(f, "research"), Key: testKey(f, 7), Limits: fuzzLimits, RecordPaths: true, OCR: blindReader{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		j, err := eng.Plan(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			var rj *Rejection
			if !errors.As(err, &rj) {
				t.Fatalf("refusal %T is not a *Rejection: %v", err, err)
			}
			return
		}
		var out bytes.Buffer
		if _, err := j.WriteTo(&out); err != nil {
			t.Fatalf("planned but does not write: %v", err)
		}
		of, err := dicomraw.Parse(bytes.NewReader(out.Bytes()), int64(out.Len()), fuzzLimits)
		if err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		// The input as read, before the plan marked it up.
		inf, err := dicomraw.Parse(bytes.NewReader(in), int64(len(in)), fuzzLimits)
		if err != nil {
			t.Fatalf("input planned but does not parse again: %v", err)
		}
		v, err := j.Verify(of)
		var rj *Rejection
		if err != nil && (!errors.As(err, &rj) || rj.Kind != "residual") {
			t.Fatalf("verifier: %v", err)
		}
		if v == nil {
			t.Fatal("verifier returned no verdict")
		}
		if len(v.Findings) > 0 {
			// The accepted gaps, fail closed: the engine does not edit the
			// value, the verifier refuses the output (a residual
			// Rejection), so the file is quarantined, never written.
			//  - An attribute outside Table E.1-1, kept by default, that
			//    holds an identifying value of the file (a Referring
			//    Physician's Name repeated in LUT Explanation).
			//  - A date or time kept or shifted by a Clean option that
			//    equals a removed date of the file (a Discharge Time equal
			//    to a malformed Discharge Date). Emptying it instead could
			//    make a Type 1 attribute empty, an IOD error.
			//  - A value the profile keeps on purpose (a safe private
			//    attribute, one a keep rule names: the verifier lists it as
			//    exempt) that equals another identifying value of the file
			//    (a safe private DS 0.000000 and a SOP Instance UID
			//    0.000000).
			// Anything else is a finding.
			if !errors.As(err, &rj) || rj.Kind != "residual" {
				t.Fatalf("verifier finds %d residual identifiers but does not refuse the output", len(v.Findings))
			}
			onPurpose := map[string]bool{}
			for _, ex := range v.Exemptions {
				// Kept as they are; not cleaned text, nor a match excused.
				for _, why := range []string{"safe private attribute", "kept by a profile rule", "retained by"} {
					if strings.HasPrefix(ex.Reason, why) {
						onPurpose[ex.Path] = true
					}
				}
			}
			for _, fd := range v.Findings {
				if onPurpose[fd.Path] {
					continue
				}
				pa, ok := j.Result().Paths[itemIndex.ReplaceAllString(fd.Path, "")]
				notInTable := pa.Action == "keep" && pa.Why == whyNotInTable
				cleanedDate := pa.Action == "clean" && fd.Kind == verify.KindDate
				if !ok || !notInTable && !cleanedDate {
					t.Fatalf("verifier finds %d residual identifiers, first %v (engine: %+v)", len(v.Findings), fd, pa)
				}
			}
			return
		}
		// Independent oracle: the raw Patient's Name and Patient ID values.
		vals := map[string]bool{}
		patientValues(inf.Elements, vals)
		if len(vals) == 0 {
			return
		}
		kept := keptValues(inf.Elements, map[string]bool{})
		body := outsidePixelData(out.Bytes(), of)
		for v := range vals {
			if !bytes.Contains(body, []byte(v)) {
				continue
			}
			if at, ok := leakedIn(of.Elements, v, kept); ok {
				t.Fatalf("input Patient's Name or ID value left in the output (in %s)", at)
			}
			if !keptValueHolds(kept, v) {
				t.Fatal("input Patient's Name or ID value left in the output bytes (outside any loaded value)")
			}
		}
	})
}

// patientValues collects the raw values of Patient's Name and Patient ID
// at any depth, when long enough to be specific and not a placeholder.
func patientValues(els []*dicomraw.Element, out map[string]bool) {
	for _, e := range els {
		for _, it := range e.Items {
			patientValues(it.Elements, out)
		}
		if !e.Loaded || (e.Tag != tagPatientName && e.Tag != tagPatientID) {
			continue
		}
		v := strings.TrimRight(string(e.Value), " \x00")
		if len(v) >= 5 && !placeholder(v) {
			out[v] = true
		}
	}
}

func placeholder(v string) bool {
	u := strings.ToUpper(strings.Trim(v, " ^=\x00"))
	return boring[u] || strings.HasPrefix(u, "ANON")
}

// outsidePixelData is the output's bytes (its inflated dataset when
// deflated) with the values of Pixel Data elements, which the engine keeps
// as they are whatever text they hold, blanked out.
func outsidePixelData(b []byte, f *dicomraw.File) []byte {
	var c []byte
	if f.Syntax.Deflated {
		c = make([]byte, f.BodyEnd)
		if _, err := f.Body.ReadAt(c, 0); err != nil {
			return b
		}
	} else {
		c = append([]byte(nil), b...)
	}
	var blank func(els []*dicomraw.Element)
	blank = func(els []*dicomraw.Element) {
		for _, e := range els {
			if e.Tag.Group() == 0x7FE0 && e.End <= int64(len(c)) {
				clear(c[e.ValueOffset:e.End])
			}
			for _, it := range e.Items {
				blank(it.Elements)
			}
		}
	}
	blank(f.Elements)
	return c
}

// keptValueHolds reports that v is part of a non-identifying value of the
// input that the profile keeps (a coincidence the fuzzer can make: the
// same bytes in Patient ID and in, say, a kept code).
func keptValueHolds(kept map[string]bool, v string) bool {
	for k := range kept {
		if strings.Contains(k, v) {
			return true
		}
	}
	return false
}

// FuzzOverlay feeds the overlay reader geometries and data it did not
// write: it takes or refuses them, and never reads past the data.
func FuzzOverlay(f *testing.F) {
	f.Add(uint16(8), uint16(16), "1", []byte{0xFF, 0, 0xAA, 0x55, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint32(0), true, false)
	f.Add(uint16(3), uint16(3), "2", []byte{0xFF, 0xFF, 0xFF}, uint32(5), false, true)
	f.Fuzz(func(t *testing.T, rows, cols uint16, frames string, data []byte, extra uint32, ow, bigEndian bool) {
		if int(rows)*int(cols) > 1<<20 {
			return // the engine charges its budget first; not this target's concern
		}
		le16 := func(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }
		vr := "OB"
		if ow {
			vr = "OW"
		}
		dataEl := &dicomraw.Element{Tag: 0x60003000, VR: vr, Enc: dicomraw.Encoding{BigEndian: bigEndian}, Value: data, Loaded: true,
			Length: uint32(len(data)) + extra%64}
		els := []*dicomraw.Element{
			{Tag: 0x60000010, VR: "US", Value: le16(rows), Loaded: true},
			{Tag: 0x60000011, VR: "US", Value: le16(cols), Loaded: true},
			{Tag: 0x60000015, VR: "IS", Value: []byte(frames), Loaded: true},
			dataEl,
		}
		ov, ok := overlayOf(els, 0x6000, dataEl)
		if !ok || ov.frames > 64 {
			return
		}
		if err := ov.load(nil, dataEl); err != nil {
			return
		}
		gray := stdimage.NewGray(stdimage.Rect(0, 0, ov.cols, ov.rows))
		for i := 0; i < ov.frames; i++ {
			ov.frame(i, gray)
		}
	})
}
