package pixels

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// The RLE decoder agrees with pydicom's on every RLE file of the shared
// corpus (one frame per fragment, several fragments for one frame, 8 to
// 32 bits, 1 and 3 samples), so masking them starts from the right pixels.

func corpusDir(t *testing.T) string {
	d, _ := filepath.Abs("../../../shared/corpus")
	if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err != nil {
		t.Fatalf("shared corpus not found at %s", d)
	}
	return d
}

func usValue(f *dicomraw.File, tag uint32) int {
	for _, e := range f.Elements {
		if uint32(e.Tag) == tag && e.Loaded {
			switch e.VR {
			case "US":
				if len(e.Value) >= 2 {
					return int(binary.LittleEndian.Uint16(e.Value))
				}
			case "IS":
				n, _ := strconv.Atoi(strings.TrimSpace(strings.Trim(string(e.Value), "\x00")))
				return n
			}
		}
	}
	return 0
}

func geometryOf(f *dicomraw.File) Geometry {
	g := Geometry{Rows: usValue(f, 0x00280010), Columns: usValue(f, 0x00280011), SamplesPerPixel: usValue(f, 0x00280002),
		BitsAllocated: usValue(f, 0x00280100), PlanarConfiguration: usValue(f, 0x00280006), Frames: usValue(f, 0x00280008)}
	if g.Frames == 0 {
		g.Frames = 1
	}
	return g
}

// rleFrames reads the encoded frames: one fragment each, or all the
// fragments of a single frame joined.
func rleFrames(t *testing.T, f *dicomraw.File, g Geometry) [][]byte {
	var px *dicomraw.Element
	for _, e := range f.Elements {
		if e.Tag == dicomraw.TagPixelData {
			px = e
		}
	}
	if px == nil || len(px.Fragments) < 2 {
		t.Fatal("no encapsulated pixel data")
	}
	var frags [][]byte
	for _, fr := range px.Fragments[1:] { // the first is the Basic Offset Table
		b := make([]byte, fr.Length)
		if _, err := f.Body.ReadAt(b, fr.Offset+8); err != nil {
			t.Fatal(err)
		}
		frags = append(frags, b)
	}
	if len(frags) == g.Frames {
		return frags
	}
	if g.Frames == 1 {
		return [][]byte{bytes.Join(frags, nil)}
	}
	t.Fatalf("%d fragments for %d frames", len(frags), g.Frames)
	return nil
}

func TestRLEDecodingAgreesWithPydicom(t *testing.T) {
	files := []string{"ct_enhanced_rle_bot.dcm", "ct_rle_multi_fragment.dcm", "mr_small_rle.dcm", "sc_rgb_rle_32bit_2frame.dcm",
		"us_multiframe_rle_palette.dcm", "us_philips_rle_2frame.dcm"}
	dir := corpusDir(t)
	script := `import sys, hashlib, pydicom
for p in sys.argv[1:]:
    a = pydicom.dcmread(p).pixel_array
    print(hashlib.sha256(a.astype(a.dtype.newbyteorder('<')).tobytes()).hexdigest())`
	args := []string{"-c", script}
	for _, f := range files {
		args = append(args, filepath.Join(dir, f))
	}
	out, err := exec.Command("/usr/bin/python3", args...).Output()
	if err != nil {
		t.Fatalf("pydicom (scripts/test installs python3-pydicom): %v", err)
	}
	want := strings.Fields(string(out))
	for i, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		g := geometryOf(f)
		h := sha256.New()
		for _, fr := range rleFrames(t, f, g) {
			// Masking nothing goes through the whole decode and encode.
			again, err := MaskRLEFrame(fr, g, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			h.Write(rleDecode(t, g, again))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want[i] {
			t.Errorf("%s: decoded pixels differ from pydicom's", name)
		}
	}
}
