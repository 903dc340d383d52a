package deid

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/profiles"
)

// pixelCheck decodes input and output with pydicom (an independent
// decoder) and checks that the rectangles are zero in every frame and
// sample of the output and every other pixel equals the input's.
const pixelCheck = `
import sys, json, numpy as np, pydicom
inp, out, rects = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def frames(path):
    ds = pydicom.dcmread(path)
    a = ds.pixel_array
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return a.reshape(n, ds.Rows, ds.Columns, -1)
a, b = frames(inp), frames(out)
if a.shape != b.shape:
    sys.exit("shapes differ: %s %s" % (a.shape, b.shape))
m = np.zeros(a.shape[1:3], dtype=bool)
for x, y, w, h in rects:
    m[y:y+h, x:x+w] = True
if not m.any():
    sys.exit("no pixel inside the rectangles")
if (b[:, m] != 0).any():
    sys.exit("masked region not zero")
if (a[:, ~m] != b[:, ~m]).any():
    sys.exit("pixels outside the rectangles changed")
print(int(m.sum()), a.shape[0])
`

func TestCleanPixelData(t *testing.T) {
	requireTool(t, "dcmdump")
	requireTool(t, "dciodvfy")
	prof, err := (&profiles.Loader{}).Load("testdata/pixels-profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Profile: prof, Key: testKey(t, 9)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file  string
		want  string // masked, held, passed
		why   string // in the reason of a held file
		rects [][4]int
	}{
		{file: "us_philips_rle_2frame.dcm", want: "masked", rects: [][4]int{{0, 0, 800, 60}}},
		{file: "us_palette_color.dcm", want: "masked", rects: [][4]int{{0, 0, 800, 60}}},
		{file: "us_aloka_segmented_palette.dcm", want: "masked", rects: [][4]int{{0, 0, 640, 26}, {0, 444, 640, 36}}},
		{file: "us_multiframe_rle_palette.dcm", want: "masked", rects: [][4]int{{0, 0, 120, 130}}},
		{file: "sc_rgb_3x3_odd.dcm", want: "masked", rects: [][4]int{{0, 0, 2, 1}}},
		{file: "sc_rgb_rle_32bit_2frame.dcm", want: "masked", rects: [][4]int{{10, 20, 30, 15}, {90, 90, 40, 40}}},
		{file: "sc_deflated.dcm", want: "masked", rects: [][4]int{{0, 0, 512, 40}}},
		{file: "us_multiframe_jpeg_ybr.dcm", want: "held", why: "cannot be decoded here"},
		{file: "sc_rgb_jpeg_baseline.dcm", want: "held", why: "cannot be decoded here"},
		{file: "us_j2k_ybr_ict.dcm", want: "held", why: "an ultrasound image"},
		{file: "us_rgb_explicit_be.dcm", want: "held", why: "an ultrasound image"},
		{file: "sc_htj2k_lossless.dcm", want: "held", why: "a secondary capture image"},
		{file: "charset_french_ir100.dcm", want: "held", why: "a secondary capture image"},
		{file: "ct_referenced_by_rtstruct.dcm", want: "held", why: "SECONDARY"},
		{file: "ct_small_explicit_le.dcm", want: "passed"},
		{file: "mr_small_explicit_le.dcm", want: "held", why: "SECONDARY"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			inPath := filepath.Join(corpusDir(t), c.file)
			in, err := os.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
			var rj *Rejection
			if c.want == "held" {
				if !errors.As(err, &rj) || rj.Kind != "pixels" || !strings.Contains(rj.Reason, c.why) {
					t.Fatalf("want held back (%q), got %v", c.why, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			outPath := filepath.Join(dir, c.file)
			f, err := os.Create(outPath)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = j.WriteVerified(dicomraw.FileDst{File: f})
			f.Close()
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			if msg := dcmdumpErrors(t, outPath); msg != "" {
				t.Errorf("dcmdump: %s", msg)
			}
			inErr := iodErrors(t, inPath)
			for e := range iodErrors(t, outPath) {
				if !inErr[e] {
					t.Errorf("new dciodvfy error: %s", e)
				}
			}
			out, _ := os.ReadFile(outPath)
			p := parse(t, out)
			burned, _ := p.str(tagBurnedInAnnotation)
			hasClean := false
			if seq := p.find(tagDeidMethodCodeSeq); seq != nil {
				for _, it := range seq.Items {
					for _, el := range it.Elements {
						hasClean = hasClean || el.Tag == tagCodeValue && strings.TrimSpace(string(el.Value)) == CleanPixelDataCode
					}
				}
			}
			if c.want == "passed" {
				if hasClean {
					t.Error("an image no rule matches says Clean Pixel Data")
				}
				return
			}
			if burned != "NO" || !hasClean {
				t.Errorf("Burned In Annotation %q, Clean Pixel Data code present %v", burned, hasClean)
			}
			rects, _ := json.Marshal(c.rects)
			res, err := exec.Command("/usr/bin/python3", "-c", pixelCheck, inPath, outPath, string(rects)).CombinedOutput()
			if err != nil {
				t.Fatalf("pixels (pydicom): %v: %s", err, res)
			}
			t.Logf("%s: %s pixels masked per frame over %s frames", c.file, strings.Fields(string(res))[0], strings.Fields(string(res))[1])
		})
	}
}

// Whatever the profile, an image that declares burned-in annotation and
// that no rule masks is held back; a profile can accept it explicitly.
func TestBurnedInAnnotationYes(t *testing.T) {
	els := append(sampleCT("PID-BURNED-0001", "1.2.826.0.1.999.1.2.77"), s(tagBurnedInAnnotation, "CS", "YES"))
	in := buildFile(t, false, els)
	checkRejection(t, newEngine(t, researchProfile(), 4), in, "pixels")
	accepting := researchProfile()
	accepting.Pixels = &rulesPixelPolicyAcceptingBurnedIn
	if _, err := newEngine(t, accepting, 4).Plan(bytes.NewReader(in), int64(len(in))); err != nil {
		t.Fatalf("a profile accepting burned-in annotation: %v", err)
	}
}

var rulesPixelPolicyAcceptingBurnedIn = rules.PixelPolicy{AcceptBurnedIn: true}
