package deid

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/profiles"
)

// pixelCheck decodes input and output with pydicom (an independent
// decoder) and checks that the rectangles are zero in every frame and
// sample of the output and every other pixel equals the input's.
//
// pydicom hands back JPEG colour as YCbCr: it is converted to RGB, as the
// output holds it. Outside the rectangles a lossy input may differ by 1
// (pydicom's colour conversion and the IJG's round differently).
const pixelCheck = `
import sys, json, numpy as np, pydicom
from pydicom.pixel_data_handlers.util import convert_color_space
inp, out, rects = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
LOSSY = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203")
def htj2k(ds):
    # pydicom 2.3 has no HTJ2K decoder: OpenJPEG's command line.
    import os, subprocess, tempfile
    from PIL import Image
    from pydicom.encaps import generate_pixel_data_frame
    out = []
    for fr in generate_pixel_data_frame(ds.PixelData, int(getattr(ds, "NumberOfFrames", 1) or 1)):
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, "f.j2k"), os.path.join(d, "f.ppm" if ds.SamplesPerPixel == 3 else "f.pgm")
            open(src, "wb").write(fr)
            subprocess.run(["opj_decompress", "-i", src, "-o", dst], check=True, capture_output=True)
            out.append(np.asarray(Image.open(dst)))
    return np.stack(out)
def frames(path):
    ds = pydicom.dcmread(path)
    ts = str(ds.file_meta.TransferSyntaxUID)
    a = htj2k(ds) if ts.startswith("1.2.840.10008.1.2.4.20") else ds.pixel_array
    if ds.SamplesPerPixel == 3 and ds.PhotometricInterpretation in ("YBR_FULL", "YBR_FULL_422") and ts in LOSSY[:2]:
        a = convert_color_space(a, "YBR_FULL", "RGB")
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return a.reshape(n, ds.Rows, ds.Columns, -1).astype(np.int64), ts in LOSSY
(a, lossy), (b, _) = frames(inp), frames(out)
if a.shape != b.shape:
    sys.exit("shapes differ: %s %s" % (a.shape, b.shape))
m = np.zeros(a.shape[1:3], dtype=bool)
for x, y, w, h in rects:
    m[y:y+h, x:x+w] = True
if not m.any():
    sys.exit("no pixel inside the rectangles")
if (b[:, m] != 0).any():
    sys.exit("masked region not zero")
d = np.abs(a[:, ~m] - b[:, ~m])
if d.max(initial=0) > (1 if lossy else 0):
    sys.exit("pixels outside the rectangles changed (by up to %d)" % d.max())
print(int(m.sum()), a.shape[0])
`

func TestCleanPixelData(t *testing.T) {
	requireTool(t, "dcmdump")
	requireTool(t, "dciodvfy")
	prof, err := (&profiles.Loader{}).Load("testdata/pixels-profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Profile: prof, Key: testKey(t, 9), OCR: blindReader{}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file  string
		want  string // masked, held, passed
		why   string // in the reason of a held file
		rects [][4]int
		// decoded: compressed pixels, written back as RLE Lossless (held
		// back, with the build named, where the build has no decoder).
		decoded bool
	}{
		{file: "us_philips_rle_2frame.dcm", want: "masked", rects: [][4]int{{0, 0, 800, 60}}},
		{file: "us_palette_color.dcm", want: "masked", rects: [][4]int{{0, 0, 800, 60}}},
		{file: "us_aloka_segmented_palette.dcm", want: "masked", rects: [][4]int{{0, 0, 640, 26}, {0, 444, 640, 36}}},
		{file: "us_multiframe_rle_palette.dcm", want: "masked", rects: [][4]int{{0, 0, 120, 130}}},
		{file: "sc_rgb_3x3_odd.dcm", want: "masked", rects: [][4]int{{0, 0, 2, 1}}},
		{file: "sc_rgb_rle_32bit_2frame.dcm", want: "masked", rects: [][4]int{{10, 20, 30, 15}, {90, 90, 40, 40}}},
		{file: "sc_deflated.dcm", want: "masked", rects: [][4]int{{0, 0, 512, 40}}},
		{file: "us_multiframe_jpeg_ybr.dcm", want: "masked", rects: [][4]int{{0, 0, 320, 20}}, decoded: true},
		{file: "sc_rgb_jpeg_baseline.dcm", want: "masked", rects: [][4]int{{10, 20, 30, 15}, {90, 90, 40, 40}}, decoded: true},
		{file: "us_j2k_ybr_ict.dcm", want: "masked", rects: [][4]int{{0, 0, 1660, 60}}, decoded: true},
		{file: "us_rgb_explicit_be.dcm", want: "held", why: "an ultrasound image"},
		{file: "sc_htj2k_lossless.dcm", want: "masked", rects: [][4]int{{0, 0, 640, 40}}, decoded: true},
		{file: "mr_small_jpegls_lossless.dcm", want: "masked", rects: [][4]int{{0, 0, 64, 8}}, decoded: true},
		{file: "mr_small_j2k_lossless.dcm", want: "masked", rects: [][4]int{{0, 0, 64, 8}}, decoded: true},
		{file: "mr_small_rle.dcm", want: "masked", rects: [][4]int{{0, 0, 64, 8}}},
		{file: "mr_small_explicit_be.dcm", want: "masked", rects: [][4]int{{0, 0, 64, 8}}},
		{file: "nm_jpeg_extended.dcm", want: "masked", rects: [][4]int{{0, 0, 256, 30}}, decoded: true},
		{file: "sc_jpegls_near_lossless.dcm", want: "masked", rects: [][4]int{{0, 0, 10, 5}}, decoded: true},
		{file: "ct_enhanced_jpeg_lossless_p14.dcm", want: "masked", rects: [][4]int{{0, 0, 200, 20}}, decoded: true},
		{file: "ct_enhanced_jpeg_ext_frag.dcm", want: "masked", rects: [][4]int{{0, 0, 200, 20}}, decoded: true},
		{file: "ct_enhanced_rle_bot.dcm", want: "masked", rects: [][4]int{{0, 0, 200, 20}}},
		{file: "xa_jpeg_curve.dcm", want: "masked", rects: [][4]int{{0, 0, 512, 30}}, decoded: true},
		{file: "sm_wsi_jpegls.dcm", want: "masked", rects: [][4]int{{0, 0, 5, 5}}, decoded: true},
		{file: "seg_deflated_image_frame.dcm", want: "held", why: "1 bits allocated"},
		{file: "charset_french_ir100.dcm", want: "held", why: "a secondary capture image"},
		{file: "ct_referenced_by_rtstruct.dcm", want: "held", why: "SECONDARY"},
		{file: "ct_small_explicit_le.dcm", want: "passed"},
		{file: "cr_j2k_lossy.dcm", want: "passed"},
		{file: "mg_overlay_jpegll.dcm", want: "passed"},
		{file: "pt_ge_private_jpegll.dcm", want: "passed"},
		{file: "mr_small_explicit_le.dcm", want: "masked", rects: [][4]int{{0, 0, 64, 8}}},
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
			inTS := parse(t, in).f.Syntax
			if c.decoded && inTS.UID != codec.RLELossless {
				if _, ok := codec.Default().Lookup(inTS.UID); !ok {
					// The pure-Go build: held back, saying why, never passed.
					if !errors.As(err, &rj) || rj.Kind != "pixels" || !strings.Contains(rj.Reason, "cannot be decoded by this build") {
						t.Fatalf("want held back for want of a decoder, got %v", err)
					}
					return
				}
			}
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
				// Not decoded, not re-encoded: Pixel Data byte for byte, in
				// the input's syntax (MIDI-B's pixels_retained compares MD5s).
				if p.f.Syntax.UID != inTS.UID {
					t.Errorf("transfer syntax %s, the input's was %s", p.f.Syntax.UID, inTS.UID)
				}
				if a, b := pixelDataMD5(t, in), pixelDataMD5(t, out); a != b {
					t.Errorf("Pixel Data MD5 %s, the input's was %s", b, a)
				}
				return
			}
			if burned != "NO" || !hasClean {
				t.Errorf("Burned In Annotation %q, Clean Pixel Data code present %v", burned, hasClean)
			}
			if c.decoded {
				checkDecodedHeader(t, parse(t, in), p)
			} else if p.f.Syntax.UID != inTS.UID {
				t.Errorf("transfer syntax %s, the input's was %s", p.f.Syntax.UID, inTS.UID)
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

// An image that declares burned-in annotation is read for text whatever
// its class; where the profile opted out of reading pixels, one that no
// rule masks is held back, unless the profile accepts it explicitly.
func TestBurnedInAnnotationYes(t *testing.T) {
	els := append(sampleCT("PID-BURNED-0001", "1.2.826.0.1.999.1.2.77"), s(tagBurnedInAnnotation, "CS", "YES"),
		// The geometry of samplePixels: 2 rows of 64 16-bit samples.
		s(0x00280002, "US", "\x01\x00"), s(0x00280004, "CS", "MONOCHROME2"), s(0x00280011, "US", "\x40\x00"),
		s(0x00280100, "US", "\x10\x00"), s(0x00280101, "US", "\x10\x00"), s(0x00280103, "US", "\x00\x00"))
	in := buildFile(t, false, els)
	j, err := newEngine(t, researchProfile(), 4).Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatalf("read for text (none found): %v", err)
	}
	if px := j.Result().Pixels; px == nil || !px.Examined || !px.Read {
		t.Fatalf("a Burned In Annotation YES image was not read: %+v", px)
	}
	off := researchProfile()
	off.Text.Mode = "off"
	checkRejection(t, newEngine(t, off, 4), in, "pixels")
	accepting := researchProfile()
	accepting.Text.Mode = "off"
	accepting.Pixels = &rulesPixelPolicyAcceptingBurnedIn
	if _, err := newEngine(t, accepting, 4).Plan(bytes.NewReader(in), int64(len(in))); err != nil {
		t.Fatalf("a profile accepting burned-in annotation: %v", err)
	}
}

var rulesPixelPolicyAcceptingBurnedIn = rules.PixelPolicy{AcceptBurnedIn: true}

// checkDecodedHeader: a masked compressed image is RLE Lossless (JPEG-LS
// Lossless stays JPEG-LS Lossless where the build has CharLS's encoder),
// with the Photometric Interpretation of its decoded pixels, interleaved samples,
// Lossy Image Compression "01" with a method when the input was lossy,
// and no Extended Offset Table.
func checkDecodedHeader(t *testing.T, in, out parsed) {
	t.Helper()
	wantTS := codec.RLELossless
	if _, ok := codec.Default().Encoder(codec.JPEGLSLossless); ok && in.f.Syntax.UID == codec.JPEGLSLossless {
		wantTS = codec.JPEGLSLossless
	}
	if out.f.Syntax.UID != wantTS {
		t.Errorf("transfer syntax %s, want %s", out.f.Syntax.UID, wantTS)
	}
	pi, _ := in.str(tagPhotometric)
	opi, _ := out.str(tagPhotometric)
	want := pi
	switch pi {
	case "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT":
		want = "RGB"
	}
	if opi != want {
		t.Errorf("Photometric Interpretation %q, want %q (input %q)", opi, want, pi)
	}
	if e := out.find(tagPlanarConfiguration); e != nil && len(e.Value) == 2 && e.Value[0] != 0 {
		t.Errorf("Planar Configuration %d, want 0", e.Value[0])
	}
	if out.find(codec.TagExtendedOffsets) != nil {
		t.Error("Extended Offset Table kept")
	}
	lossy := codec.LossySyntax(in.f.Syntax.UID)
	if src, err := codec.FromFile(in.f); err == nil {
		if b, err := src.FrameData(0, nil); err == nil {
			lossy = codec.StreamLossy(in.f.Syntax.UID, b)
		}
	}
	lic, _ := out.str(tagLossyCompression)
	method, _ := out.str(tagLossyMethod)
	inLIC, _ := in.str(tagLossyCompression)
	switch {
	case (lossy || inLIC == "01") && (lic != "01" || method == ""):
		t.Errorf("lossy input: Lossy Image Compression %q, method %q", lic, method)
	case !lossy && inLIC != "01" && lic == "01":
		t.Errorf("lossless input marked lossy")
	}
	if inR, _ := in.str(tagLossyRatio); inR != "" {
		if r, _ := out.str(tagLossyRatio); r != inR {
			t.Errorf("Lossy Image Compression Ratio %q, the input's was %q", r, inR)
		}
	}
}

// pixelDataMD5 is the MD5 of the Pixel Data element's value bytes as
// stored (fragments and their item headers included).
func pixelDataMD5(t *testing.T, file []byte) string {
	t.Helper()
	p := parse(t, file)
	e := p.find(uint32(dicomraw.TagPixelData))
	if e == nil {
		t.Fatal("no Pixel Data")
	}
	sum := md5.Sum(file[e.ValueOffset : e.ValueOffset+e.ValueLength()])
	return hex.EncodeToString(sum[:])
}
