package dicomraw

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// File layouts met in the field: every one that pydicom and dcmtk both
// read to its end is read here too; the others are refused, with a reason
// that says what is wrong. TestLayoutsAgreeWithReaders checks the
// classification against the two readers themselves.

// layoutDataset is a small image-less dataset, in explicit or implicit VR
// little endian.
func layoutDataset(implicit bool) []byte {
	var b []byte
	add := func(t Tag, vr, v string) {
		p := Pad(vr, []byte(v))
		b = hdr(b, t, vr, uint32(len(p)), implicit)
		b = append(b, p...)
	}
	add(0x00080005, "CS", "ISO_IR 100")
	add(0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.7")
	add(0x00080018, "UI", "2.25.1234567890")
	add(0x00080060, "CS", "OT")
	add(0x00100010, "PN", secret)
	add(0x00100020, "LO", "PID-4242")
	add(0x0020000D, "UI", "2.25.11")
	add(0x0020000E, "UI", "2.25.12")
	return b
}

// layoutMeta is a File Meta group naming ts; without group length when
// length is false.
func layoutMeta(ts string, length bool) []byte {
	var meta []byte
	meta = elem(meta, 0x00020001, "OB", "\x00\x01")
	meta = elem(meta, 0x00020002, "UI", "1.2.840.10008.5.1.4.1.1.7")
	meta = elem(meta, 0x00020003, "UI", "2.25.1234567890")
	meta = elem(meta, 0x00020010, "UI", ts)
	if !length {
		return meta
	}
	out := hdr(nil, 0x00020000, "UL", 4, false)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(meta)))
	return append(out, meta...)
}

func preamble() []byte { return append(make([]byte, 128), "DICM"...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// layouts are the cases: accepted ones have want == "".
func layouts() []struct {
	name string
	file []byte
	want string // part of the refusal's reason; "" when accepted
} {
	ex, im := layoutDataset(false), layoutDataset(true)
	metaEx := layoutMeta(ExplicitVRLittleEndian, true)
	metaIm := layoutMeta(ImplicitVRLittleEndian, true)
	badLen := layoutMeta(ExplicitVRLittleEndian, true)
	binary.LittleEndian.PutUint32(badLen[8:], 7) // group length far too short
	tsOnly := elem(nil, 0x00020010, "UI", ExplicitVRLittleEndian)
	garbage := bytes.Repeat([]byte{0x55}, 128)
	return []struct {
		name string
		file []byte
		want string
	}{
		{"part10 explicit", cat(preamble(), metaEx, ex), ""},
		{"part10 implicit", cat(preamble(), metaIm, im), ""},
		{"DICM at 128 without File Meta, explicit", cat(preamble(), ex), ""},
		{"DICM at 128 without File Meta, implicit", cat(preamble(), im), ""},
		{"raw explicit dataset, no preamble", ex, ""},
		{"raw implicit dataset, no preamble", im, ""},
		{"File Meta without group length", cat(preamble(), layoutMeta(ExplicitVRLittleEndian, false), ex), ""},
		{"File Meta with a wrong group length", cat(preamble(), badLen, ex), ""},
		{"File Meta of the transfer syntax alone", cat(preamble(), tsOnly, ex), ""},
		{"preamble that is not zeros", cat(garbage, []byte("DICM"), metaEx, ex), ""},
		{"NUL padding after the dataset, 16 bytes", cat(preamble(), metaEx, ex, make([]byte, 16)), ""},
		{"NUL padding after the dataset, 8 bytes, implicit", cat(preamble(), metaIm, im, make([]byte, 8)), ""},
		// Refused: at least one of the two readers does not read them.
		{"DICM at 0 without File Meta", cat([]byte("DICM"), ex), "no File Meta Information after the DICM prefix"},
		{"NUL padding of 3 bytes", cat(preamble(), metaEx, ex, make([]byte, 3)), "element header cut short"},
		{"NUL padding of 12 bytes", cat(preamble(), metaEx, ex, make([]byte, 12)), "invalid VR"},
		{"meta says explicit, dataset implicit", cat(preamble(), metaEx, im), "transfer syntax says explicit VR but the dataset is written in implicit VR"},
		{"meta says implicit, dataset explicit", cat(preamble(), metaIm, ex), "transfer syntax says implicit VR but the dataset is written in explicit VR"},
	}
}

func TestLayouts(t *testing.T) {
	for _, c := range layouts() {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseBytes(c.file, Limits{})
			if c.want != "" {
				checkErr(t, err, "", c.want)
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			// The whole dataset was read, and nothing else.
			var tags []Tag
			for _, e := range f.Elements {
				tags = append(tags, e.Tag)
			}
			if len(tags) != 8 || tags[0] != 0x00080005 || tags[7] != 0x0020000E {
				t.Fatalf("dataset read as %v", tags)
			}
			for _, e := range f.Elements {
				if e.Tag == 0x00100010 && strings.TrimRight(string(e.Value), " ") != secret {
					t.Fatalf("Patient's Name read as %q", e.Value)
				}
			}
		})
	}
}

// TestLayoutsAgreeWithReaders runs dcmdump and pydicom on every layout:
// a layout is accepted here exactly when both read it to its end.
func TestLayoutsAgreeWithReaders(t *testing.T) {
	for _, tool := range []string{"dcmdump", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; run ./scripts/test, which installs dcmtk and pydicom", tool)
		}
	}
	dir := t.TempDir()
	cases := layouts()
	var paths []string
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".dcm")
		if err := os.WriteFile(p, c.file, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// pydicom reads with force (as for files without File Meta, which it
	// otherwise calls not DICOM), warnings allowed; every element is visited.
	script := `
import sys, warnings
warnings.simplefilter("ignore")
import pydicom
for p in sys.argv[1:]:
    try:
        ds = pydicom.dcmread(p, force=True)
        n = sum(1 for _ in ds.iterall())
        print("ok" if n >= 8 and str(ds.PatientName) == "SECRETNAME^HOSTILE" else "short")
    except Exception as e:
        print("fail")
`
	out, err := exec.Command("/usr/bin/python3", append([]string{"-c", script}, paths...)...).Output()
	if err != nil {
		t.Fatalf("pydicom: %v", err)
	}
	py := strings.Fields(string(out))
	if len(py) != len(cases) {
		t.Fatalf("pydicom answered %d lines for %d files", len(py), len(cases))
	}
	for i, c := range cases {
		dcmtk := exec.Command("dcmdump", "-q", paths[i]).Run() == nil
		both := dcmtk && py[i] == "ok"
		if accepted := c.want == ""; accepted != both {
			t.Errorf("%s: accepted=%v, but dcmtk reads it: %v, pydicom: %s", c.name, accepted, dcmtk, py[i])
		}
	}
}
