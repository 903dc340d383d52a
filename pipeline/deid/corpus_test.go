package deid

import (
	"bytes"
	"errors"
	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// corpusRejections lists the corpus files the engine must refuse, with a
// part of the reason it must give.
var corpusRejections = map[string]string{
	"ct_nometa_implicit_le.dcm":  "no recognisable dataset", // first byte is not part of any element
	"malformed_mr_truncated.dcm": "truncated",
	"dicomdir_pydicom":           "DICOMDIR",
	// pydicom's private-sequence fragments: group 0001 only, no SOP
	// Instance UID anywhere, so no composite instance to name.
	"private_sq_nested.dcm":            "not a composite instance",
	"charset_empty_value.dcm":          "not a composite instance",
	"malformed_meta_missing_tsuid.dcm": "not a composite instance",
	// Number of Frames is not a number: how many frames there are to read
	// for burned-in text is unknown.
	"malformed_bad_is_value.dcm": "-1 frames",
}

// identifyingTags are attributes whose input values must not survive in
// any output (as raw bytes, in the file's own encoding), whatever the profile.
var identifyingTags = map[uint32]bool{
	0x00100010: true, 0x00100020: true, 0x00101000: true, 0x00100030: true, 0x00101040: true,
	0x00102154: true, 0x00080050: true, 0x00080080: true, 0x00080081: true, 0x00080090: true,
	0x00081050: true, 0x00081070: true, 0x00101060: true, 0x00100021: true, 0x00080020: true,
	0x00200010: true, 0x00321032: true, 0x00400006: true, 0x0040A123: true, 0x00081048: true,
}

// identifyingValues collects raw values of identifyingTags at any depth, and
// every non-registered UID value of the input.
func identifyingValues(els []*dicomraw.Element, out map[string]string) {
	for _, e := range els {
		for _, it := range e.Items {
			identifyingValues(it.Elements, out)
		}
		if !e.Loaded || e.Tag.IsPrivate() {
			continue
		}
		v := strings.TrimRight(string(e.Value), " \x00")
		if identifyingTags[uint32(e.Tag)] {
			for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == '\\' || r == '^' || r == '=' }) {
				part = strings.TrimSpace(part)
				if len(part) >= 5 && !boring[strings.ToUpper(part)] {
					out[part] = keyword(e.Tag)
				}
			}
		}
	}
}

// Values that are not identifying even in identifying attributes.
var boring = map[string]bool{"ANONYMOUS": true, "ANONYMIZED": true, "UNKNOWN": true, "PHYSICIAN": true, "00000000": true}

func dcmdumpErrors(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command("dcmdump", "-q", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = nil
	err := cmd.Run()
	var lines []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "F:") {
			lines = append(lines, l)
		}
	}
	if err != nil && len(lines) == 0 {
		lines = append(lines, err.Error())
	}
	return strings.Join(lines, "; ")
}

var iodValueRE = []*regexp.Regexp{
	regexp.MustCompile(` = <[^>]*>`),
	regexp.MustCompile(` = -?[\d.]+(e[-+]?\d+)?`),
	// UIDs quoted in messages ("has same value as StudyInstanceUID <...>",
	// "ReferencedSOPInstanceUID 1.2.3"): they are mapped, the error is not new.
	regexp.MustCompile(`\b\d+(\.\d+){2,}\b`),
}

// iodErrors runs dciodvfy and returns its error lines without values.
func iodErrors(t *testing.T, path string) map[string]bool {
	t.Helper()
	out, _ := exec.Command("dciodvfy", path).CombinedOutput()
	errs := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "Error") {
			continue
		}
		for i, re := range iodValueRE {
			if i == 2 {
				l = re.ReplaceAllString(l, "UID")
			} else {
				l = re.ReplaceAllString(l, " = <>")
			}
		}
		errs[strings.TrimSpace(l)] = true
	}
	return errs
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed; run ./scripts/test, which installs dcmtk and dicom3tools", name)
	}
}

// TestCorpus runs both built-in profiles over every corpus file: each is
// either rejected with the expected reason, or written valid, with pixel
// data and kept elements byte-identical and none of its identifying values.
func TestCorpus(t *testing.T) {
	requireTool(t, "dcmdump")
	requireTool(t, "dciodvfy")
	dir := corpusDir(t)
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	sort.Strings(names)
	tmp := t.TempDir()
	profiles := []*rules.Profile{builtinProfile(t, "basic"), builtinProfile(t, "research")}
	written, rejected := 0, 0
	for _, path := range names {
		name := filepath.Base(path)
		if name == "MANIFEST.tsv" || name == "README.md" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, prof := range profiles {
			t.Run(name+"/"+prof.Name, func(t *testing.T) {
				e := newEngine(t, prof, 9)
				j, err := e.Plan(bytes.NewReader(data), int64(len(data)))
				want, mustReject := corpusRejections[name]
				if err != nil {
					if undecodableHere(data, err) {
						// The pure-Go build: pixels it must read for
						// burned-in text and cannot decode are held back.
						rejected++
						return
					}
					if !mustReject || !strings.Contains(err.Error(), want) {
						t.Fatalf("rejected unexpectedly: %v", err)
					}
					rejected++
					return
				}
				if mustReject {
					t.Fatalf("written, but must be rejected (%s)", want)
				}
				var out bytes.Buffer
				if _, err := j.WriteTo(&out); err != nil {
					t.Fatalf("write: %v", err)
				}
				written++
				checkCorpusOutput(t, data, out.Bytes(), j, filepath.Join(tmp, name+"."+prof.Name+".dcm"), path)
			})
		}
	}
	t.Logf("corpus: %d outputs written, %d rejections (both profiles)", written, rejected)
	// The corpus has one vendor-private SOP class (Philips): kept, the
	// output is still of that class for dciodvfy and every reader.
	if !privateClassFiles["private_sop_class_philips.dcm"] {
		t.Error("private_sop_class_philips.dcm: its private SOP Class UID was not kept")
	}
}

// privateClassFiles names the corpus files whose output kept a class UID
// that PS3.6 does not register (a vendor's private SOP class).
var privateClassFiles = map[string]bool{}

func checkCorpusOutput(t *testing.T, in, out []byte, j *Job, outPath, inPath string) {
	t.Helper()
	if err := os.WriteFile(outPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	p := parse(t, out)
	orig := parse(t, in)
	// 1. dcmdump reads it.
	if msg := dcmdumpErrors(t, outPath); msg != "" {
		if inMsg := dcmdumpErrors(t, inPath); inMsg == "" {
			t.Errorf("dcmdump fails on the output only: %s", msg)
		}
	}
	// 2. No new dciodvfy errors.
	before := iodErrors(t, inPath)
	for e := range iodErrors(t, outPath) {
		if !before[e] {
			t.Errorf("new dciodvfy error: %s", e)
		}
	}
	// 3. Pixel data bit-identical.
	if a := orig.find(uint32(dicomraw.TagPixelData)); a != nil && !orig.f.Syntax.Deflated {
		b := p.find(uint32(dicomraw.TagPixelData))
		if b == nil || !bytes.Equal(in[a.ValueOffset:a.End], out[b.ValueOffset:b.End]) {
			t.Error("pixel data changed")
		}
	}
	// 4. Every top-level element the plan kept untouched is byte-identical.
	if !orig.f.Syntax.Deflated {
		outByTag := map[dicomraw.Tag]*dicomraw.Element{}
		for _, e := range p.f.Elements {
			outByTag[e.Tag] = e
		}
		for _, e := range j.f.Elements {
			if e.Op != dicomraw.OpKeep || isDirty(e) {
				continue
			}
			o := outByTag[e.Tag]
			if o == nil {
				t.Errorf("kept %s missing from the output", e.Tag)
				continue
			}
			if !bytes.Equal(in[e.Offset:e.End], out[o.Offset:o.End]) {
				t.Errorf("kept %s changed", e.Tag)
			}
		}
	}
	// 5. None of the input's identifying values is left, except where the
	// same text is the value of an attribute that is not identifying and
	// that the profile kept as it was (Manufacturer TOSHIBA and Institution
	// Name TOSHIBA), or one of the tool's own constants.
	vals := map[string]string{}
	identifyingValues(orig.f.Elements, vals)
	kept := keptValues(orig.f.Elements, map[string]bool{})
	for v, where := range vals {
		if !bytes.Contains(out, []byte(v)) {
			continue
		}
		if at, ok := leakedIn(p.f.Elements, v, kept); ok {
			t.Errorf("identifying value of %s left in the output (in %s)", where, at)
		}
	}
	// 6. The verifier passes the output and flags the input itself.
	v, err := j.Verify(p.f)
	if err != nil {
		t.Errorf("verifier: %v", err)
	}
	if v != nil && v.Values > 0 {
		if self, _ := j.Verify(orig.f); self == nil || len(self.Findings) == 0 {
			t.Errorf("verifier finds none of %d identifying values in the input itself", v.Values)
		}
	}
	// 7. Class UIDs kept as they are, instance UIDs mapped.
	if checkClassUIDs(t, orig, p) {
		privateClassFiles[filepath.Base(inPath)] = true
	}
	// 8. File Meta consistent.
	sop, ok := p.str(tagSOPInstanceUID)
	if !ok { // named by the input's Media Storage SOP Instance UID
		sop = j.Result().SOPInstanceUID
	}
	if p.metaStr(0x00020003) != sop || sop == "" {
		t.Error("Media Storage SOP Instance UID differs from SOP Instance UID")
	}
	if p.metaStr(0x00020012) != ImplementationClassUID {
		t.Error("Implementation Class UID is not ours")
	}
}

// isDirty reports whether anything inside a kept sequence changed.
func isDirty(e *dicomraw.Element) bool {
	for _, it := range e.Items {
		if it.Removed || len(it.Insert) > 0 {
			return true
		}
		for _, c := range it.Elements {
			if c.Op != dicomraw.OpKeep || isDirty(c) {
				return true
			}
		}
	}
	return false
}

// ownValues are values this tool writes itself: dummies and markers.
var ownValues = map[string]bool{
	dummyFor("DA"): true, dummyFor("DT"): true, dummyFor("TM"): true, dummyFor("PN"): true,
}

// keptValues collects the values of non-identifying attributes of the input.
func keptValues(els []*dicomraw.Element, out map[string]bool) map[string]bool {
	for _, e := range els {
		for _, it := range e.Items {
			keptValues(it.Elements, out)
		}
		if e.Loaded && !identifyingTags[uint32(e.Tag)] && !e.Tag.IsPrivate() {
			out[string(e.Value)] = true
		}
	}
	return out
}

// leakedIn finds an output element holding v that is neither a kept
// non-identifying value of the input nor one of the tool's own values.
func leakedIn(els []*dicomraw.Element, v string, kept map[string]bool) (string, bool) {
	for _, e := range els {
		if e.Tag.Group() == 0x0012 || e.Tag == tagLongTemporalModified { // the tool's own statement
			continue
		}
		for _, it := range e.Items {
			if at, ok := leakedIn(it.Elements, v, kept); ok {
				return at, true
			}
		}
		if !e.Loaded || !bytes.Contains(e.Value, []byte(v)) {
			continue
		}
		if identifyingTags[uint32(e.Tag)] {
			return keyword(e.Tag), true
		}
		val := string(e.Value)
		if kept[val] || ownValues[strings.TrimRight(val, " \x00")] {
			continue
		}
		return keyword(e.Tag), true
	}
	return "", false
}

// undecodableHere reports a file held back because this build has no
// decoder for its pixels (which must be read for burned-in text).
func undecodableHere(data []byte, err error) bool {
	var rj *Rejection
	if !errors.As(err, &rj) || rj.Kind != "pixels" || !strings.Contains(rj.Reason, "cannot be decoded by this build") {
		return false
	}
	f, perr := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.DefaultLimits())
	if perr != nil {
		return false
	}
	defer f.Close()
	_, ok := codec.Default().Lookup(f.Syntax.UID)
	return !ok
}
