package main

import (
	"bytes"
	"encoding/binary"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ocr"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"image"

	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyCorpus copies named corpus files into a new directory.
func copyCorpus(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(corpusDir(t), n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRunQuarantinesResidualIdentifiers: a profile rule that writes the
// patient's surname into another attribute makes the verifier hold the
// file back: nothing written, status quarantined, exit 1, and the reason
// names attributes, not the value.
func TestRunQuarantinesResidualIdentifiers(t *testing.T) {
	in := copyCorpus(t, "mr_small_explicit_le.dcm", "gsps_referencing_cr.dcm")
	tmp := t.TempDir()
	key := writeKey(t, tmp, keyA)
	prof := filepath.Join(tmp, "leaky.yaml")
	// mr_small's Patient's Name is CompressedSamples^MR1.
	os.WriteFile(prof, []byte("name: leaky\nextends: basic\nrules:\n  - tag: InstitutionName\n    action: replace\n    value: \"CompressedSamples\"\n"), 0o600)
	out, report := filepath.Join(tmp, "out"), filepath.Join(tmp, "report.json")
	code, stdout, stderr := runDeid(t, "run", "--in", in, "--out", out, "--profile", prof, "--key-file", key, "--report", report, "--no-progress")
	if code != exitRejected {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "written=1 rejected=0 quarantined=1") {
		t.Errorf("summary %q", stdout)
	}
	if !strings.Contains(stderr, "quarantined input #2: residual identifier in InstitutionName") || strings.Contains(strings.ToLower(stderr), "compressedsamples") {
		t.Errorf("stderr %q", stderr)
	}
	_, rep := readReport(t, report)
	var q *FileOutcome
	for i := range rep.Files {
		if rep.Files[i].Status == "quarantined" {
			q = &rep.Files[i]
		}
	}
	if q == nil || q.Input != "mr_small_explicit_le.dcm" || q.Output != "" || !strings.Contains(q.Reason, "PatientName") {
		t.Fatalf("report entry %+v", q)
	}
	if files := checkOutputLayout(t, out); len(files) != 1 {
		t.Errorf("%d outputs, want only the clean one", len(files))
	}
}

// TestVerifyCommand audits trees: a copy of the inputs leaks (exit 1, a
// table of files and attributes, no values); deid's own output passes.
func TestVerifyCommand(t *testing.T) {
	names := []string{"mr_small_explicit_le.dcm", "ct_small_explicit_le.dcm", "sr_basic_text.dcm", "charset_japanese_ir87.dcm"}
	orig := copyCorpus(t, names...)
	tmp := t.TempDir()
	key := writeKey(t, tmp, keyA)
	out := filepath.Join(tmp, "out")
	if code, so, se := runDeid(t, "run", "--in", orig, "--out", out, "--profile", "research", "--key-file", key, "--no-progress"); code != 0 {
		t.Fatalf("run: %d %s %s", code, so, se)
	}
	code, stdout, stderr := runDeid(t, "verify", "--orig", orig, "--anon", out, "--profile", "research", "--key-file", key, "--json", filepath.Join(tmp, "ok.json"))
	if code != exitOK || !strings.Contains(stdout, "4 checked (4 paired with their original), 0 leaking, 0 unverifiable; pixels examined in 3 files, not in 1") || !strings.Contains(stdout, "PASS") {
		t.Errorf("deid output: exit %d\n%s%s", code, stdout, stderr)
	}
	// With no flag but the trees, the profile is read from each output and
	// the files pair without the key: the same verdict.
	code, stdout, stderr = runDeid(t, "verify", "--orig", orig, "--anon", out)
	if code != exitOK || !strings.Contains(stdout, "kept on purpose: profile research (its De-identification Method): 4 files") ||
		!strings.HasSuffix(stdout, "0 leaking, 0 unverifiable; pixels examined in 3 files, not in 1 (no pixel data, or not decodable or readable here: see the JSON report). PASS: no identifying value of the originals found\n") {
		t.Errorf("deid output, no flags: exit %d\n%s%s", code, stdout, stderr)
	}
	// A copy of the originals under other names, plus a file that is not DICOM.
	copyDir := t.TempDir()
	for i, n := range names {
		b, _ := os.ReadFile(filepath.Join(orig, n))
		os.WriteFile(filepath.Join(copyDir, "anon"+string(rune('A'+i))+".dcm"), b, 0o600)
	}
	os.WriteFile(filepath.Join(copyDir, "notes.txt"), []byte("hello"), 0o600)
	code, stdout, _ = runDeid(t, "verify", "--orig", orig, "--anon", copyDir, "--json", filepath.Join(tmp, "bad.json"))
	if code != exitRejected {
		t.Fatalf("copy of the inputs: exit %d, want 1\n%s", code, stdout)
	}
	for _, want := range []string{"anonA.dcm", "anonD.dcm", "PatientName", "FOUND IN ATTRIBUTE", "none declared: nothing exempt: 4 files",
		"4 leaking, 1 unverifiable; pixels examined in 3 files, not in 1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("audit table lacks %q:\n%s", want, stdout)
		}
	}
	for _, value := range []string{"CompressedSamples", "ct_small", "Yamada"} {
		if strings.Contains(stdout, value) {
			t.Errorf("audit output shows %q", value)
		}
	}
	if code, _, _ := runDeid(t, "verify", "--orig", orig); code != exitUsage {
		t.Errorf("missing --anon: exit %d", code)
	}
}

// TestRunLimits: the hostile-input limits are flags; a file beyond one is
// rejected with the limit it hit.
func TestRunLimits(t *testing.T) {
	in := copyCorpus(t, "sr_basic_text.dcm", "ct_small_explicit_le.dcm")
	tmp := t.TempDir()
	key := writeKey(t, tmp, keyA)
	code, stdout, stderr := runDeid(t, "run", "--in", in, "--out", filepath.Join(tmp, "out"), "--key-file", key, "--no-progress", "--max-depth", "2")
	if code != exitRejected || !strings.Contains(stdout, "written=1 rejected=1") || !strings.Contains(stderr, "nested deeper than 2") {
		t.Errorf("--max-depth 2: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runDeid(t, "run", "--in", in, "--out", filepath.Join(tmp, "out2"), "--key-file", key, "--no-progress", "--max-file-mb", "0")
	if code != exitOK {
		t.Errorf("--max-file-mb 0 takes the default: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, _ := runDeid(t, "run", "--in", in, "--out", filepath.Join(tmp, "out3"), "--key-file", key, "--max-time", "soon"); code != exitUsage {
		t.Errorf("bad --max-time: exit %d", code)
	}
}

// TestVerifyPairingAndDeclaredProfile: deid verify with no flag but the
// two trees reads each output's profile (basic and research outputs side
// by side), pairs outputs without a key where their headers or pixels
// allow, says when pairing was partial and what that means, and pairs
// every deid output by UID once the key is given through DEID_KEY. An
// output stripped of its statement has nothing exempt: its shifted dates
// and cleaned descriptions then count.
func TestVerifyPairingAndDeclaredProfile(t *testing.T) {
	names := []string{"ct_small_explicit_le.dcm", "sr_basic_text.dcm", "rtplan_small.dcm", "private_sop_class_philips.dcm"}
	orig := copyCorpus(t, names...)
	tmp := t.TempDir()
	key := writeKey(t, tmp, keyA)
	anon := filepath.Join(tmp, "anon")
	for _, prof := range []string{"basic", "research"} {
		if code, so, se := runDeid(t, "run", "--in", orig, "--out", filepath.Join(anon, prof), "--profile", prof, "--key-file", key, "--no-progress"); code != 0 {
			t.Fatalf("run %s: %d %s %s", prof, code, so, se)
		}
	}
	code, stdout, _ := runDeid(t, "verify", "--orig", orig, "--anon", anon)
	for _, want := range []string{
		"kept on purpose: profile basic (its De-identification Method): 4 files",
		"kept on purpose: profile research (its De-identification Method): 4 files",
		"pairing was partial: the ", "give the project key (--key-file FILE or DEID_KEY)",
		"0 leaking, 0 unverifiable; pixels examined in 2 files, not in 6",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no flags: output lacks %q (exit %d):\n%s", want, code, stdout)
		}
	}
	t.Setenv("DEID_KEY", keyA)
	code, stdout, _ = runDeid(t, "verify", "--orig", orig, "--anon", anon)
	if code != exitOK || !strings.Contains(stdout, "pairing: 8 of 8 paired with their original (project key 8)") || strings.Contains(stdout, "partial") {
		t.Errorf("DEID_KEY: exit %d\n%s", code, stdout)
	}
	// The research outputs without their statement: what research keeps on
	// purpose (the cleaned Study Description) is no longer exempt.
	stripped := filepath.Join(tmp, "stripped")
	os.MkdirAll(stripped, 0o700)
	filepath.WalkDir(filepath.Join(anon, "research"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		f, err := dicomraw.Parse(bytes.NewReader(b), int64(len(b)), dicomraw.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range f.Elements {
			if e.Tag == 0x00120063 || e.Tag == 0x00120064 {
				e.Op = dicomraw.OpRemove
			}
		}
		var out bytes.Buffer
		var meta []dicomraw.MetaElement
		for _, m := range f.Meta {
			if m.Tag != 0x00020000 {
				meta = append(meta, dicomraw.MetaElement{Tag: m.Tag, VR: m.VR, Value: m.Value})
			}
		}
		if err := dicomraw.Write(&out, f, meta); err != nil {
			t.Fatal(err)
		}
		return os.WriteFile(filepath.Join(stripped, d.Name()), out.Bytes(), 0o600)
	})
	code, stdout, _ = runDeid(t, "verify", "--orig", orig, "--anon", stripped)
	if code != exitRejected || !strings.Contains(stdout, "none declared: nothing exempt: 4 files") || !strings.Contains(stdout, "StudyDescription") {
		t.Errorf("outputs without their statement: exit %d\n%s", code, stdout)
	}
}

// TestVerifyReadsPixels: an identifier of the original written into an
// output's pixels (as a tool that left burned-in text would) is a
// finding of deid verify, with its place and never its text.
func TestVerifyReadsPixels(t *testing.T) {
	if _, err := ocr.NewPool(ocr.Config{Engines: 1}); err != nil {
		if os.Getenv("DEID_REQUIRE_OCR") != "" {
			t.Fatalf("DEID_REQUIRE_OCR is set and there is no OCR: %v", err)
		}
		t.Skipf("no OCR here: %v", err)
	}
	orig := copyCorpus(t, "ct_small_explicit_le.dcm")
	tmp := t.TempDir()
	key := writeKey(t, tmp, keyA)
	out := filepath.Join(tmp, "out")
	if code, so, se := runDeid(t, "run", "--in", orig, "--out", out, "--profile", "research", "--key-file", key, "--no-progress"); code != 0 {
		t.Fatalf("run: %d %s %s", code, so, se)
	}
	files := checkOutputLayout(t, out)
	if len(files) != 1 {
		t.Fatalf("%d outputs", len(files))
	}
	path := filepath.Join(out, files[0])
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var px *dicomraw.Element
	for _, e := range f.Elements {
		if e.Tag == dicomraw.TagPixelData {
			px = e
		}
	}
	// The Other Patient ID of the original, in white on the 128x128 slice.
	g := image.NewGray(image.Rect(0, 0, 128, 128))
	d := &font.Drawer{Dst: g, Src: image.White, Face: basicfont.Face7x13, Dot: fixed.P(2, 12)}
	d.DrawString("ABCD1234")
	// Drawn twice the font's size (13-pixel type is below what anyone
	// reads on a 128-pixel slice) on a black backdrop, as a console does.
	for i := 0; i < 128*128; i++ {
		x, y := i%128, i/128
		switch {
		case x < 120 && y < 30 && g.Pix[(y/2)*g.Stride+x/2] > 128:
			binary.LittleEndian.PutUint16(data[px.ValueOffset+int64(2*i):], 0x0FFF)
		case x < 122 && y < 32:
			binary.LittleEndian.PutUint16(data[px.ValueOffset+int64(2*i):], 0)
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if dbg := os.Getenv("DEID_TEST_KEEP"); dbg != "" {
		os.WriteFile(dbg, data, 0o600)
	}
	code, stdout, _ := runDeid(t, "verify", "--orig", orig, "--anon", out, "--key-file", key)
	if code != exitRejected || !strings.Contains(stdout, "(pixels)") || !strings.Contains(stdout, "burned-in text") ||
		!strings.Contains(stdout, "pixels examined in all 1 files") {
		t.Errorf("burned-in identifier in an output: exit %d\n%s", code, stdout)
	}
	if strings.Contains(stdout, "ABCD1234") {
		t.Errorf("the audit prints the identifier:\n%s", stdout)
	}
}
