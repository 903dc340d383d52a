package codec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Fuzz targets: codec input is untrusted. Every decoder must return an
// error or exactly one frame, never crash, hang or grow memory beyond
// the frame. Seeds are the frames of the shared corpus (read at run
// time, the corpus is not copied here) and the failing inputs found so
// far (testdata/fuzz). Run one at a time, e.g.
//
//	nice -n 10 go test -tags cgocodecs -run '^$' -fuzz '^FuzzJPEG$' -fuzztime 10m ./pipeline/codec

// corpusFrames returns the first encoded frame of every corpus file of
// the syntaxes given.
func corpusFrames(tb testing.TB, syntaxes ...string) [][]byte {
	d, _ := filepath.Abs("../../../shared/corpus")
	names, _ := filepath.Glob(filepath.Join(d, "*.dcm"))
	want := map[string]bool{}
	for _, s := range syntaxes {
		want[s] = true
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || len(b) > 4<<20 {
			continue
		}
		f, err := dicomraw.Parse(bytes.NewReader(b), int64(len(b)), dicomraw.DefaultLimits())
		if err != nil || !want[f.Syntax.UID] {
			continue
		}
		src, err := FromFile(f)
		if err != nil || !isEncapsulated(f.Syntax.UID) {
			continue
		}
		if fr, err := src.FrameData(0, nil); err == nil {
			out = append(out, fr)
		}
	}
	return out
}

// fuzzFrame decodes data with the geometry its own header declares (so
// that the decoder proper is reached), then with a wrong geometry, which
// must be refused before decoding.
func fuzzFrame(t *testing.T, dec Decoder, ts string, data []byte, hdr func([]byte) (StreamInfo, error)) {
	im := Image{Rows: 64, Columns: 64, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Syntax: ts}
	if si, err := hdr(data); err == nil && si.Width > 0 && si.Height > 0 && si.Width <= 65535 && si.Height <= 65535 && si.Width*si.Height <= 1<<20 &&
		(si.Components == 1 || si.Components == 3) && si.Precision >= 1 && si.Precision <= 16 {
		im.Rows, im.Columns, im.SamplesPerPixel = si.Height, si.Width, si.Components
		if si.Precision > 8 {
			im.BitsAllocated = 16
		}
		im.BitsStored = si.Precision
	}
	out := Output(im)
	dst := make([]byte, out.FrameBytes())
	_ = dec.Decode(dst, data, im)
	wrong := im
	wrong.Rows++
	dst = make([]byte, Output(wrong).FrameBytes())
	if err := dec.Decode(dst, data, wrong); err == nil && hdr != nil {
		if _, herr := hdr(data); herr == nil {
			t.Fatalf("a frame decoded with one row more than its header says")
		}
	}
}

func FuzzRLE(f *testing.F) {
	for _, fr := range corpusFrames(f, RLELossless) {
		f.Add(fr, uint8(1), uint8(16))
	}
	f.Fuzz(func(t *testing.T, data []byte, spp, bits uint8) {
		im := Image{Rows: 32, Columns: 48, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8, Syntax: RLELossless}
		if spp%2 == 1 {
			im.SamplesPerPixel = 3
		}
		im.BitsAllocated = []int{8, 16, 32}[int(bits)%3]
		im.BitsStored = im.BitsAllocated
		dst := make([]byte, im.FrameBytes())
		if err := DecodeRLE(dst, data, im); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error of no known kind: %v", err)
		} else if err == nil {
			// What decodes encodes and decodes back to the same pixels.
			enc, err := EncodeRLE(nil, dst, im)
			if err != nil {
				t.Fatal(err)
			}
			back := make([]byte, len(dst))
			if err := DecodeRLE(back, enc, im); err != nil || !bytes.Equal(back, dst) {
				t.Fatalf("RLE round trip differs: %v", err)
			}
		}
	})
}

func FuzzDeflatedFrame(f *testing.F) {
	for _, fr := range corpusFrames(f, DeflatedFrames) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		im := Image{Rows: 512, Columns: 512, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 1, BitsStored: 1, Syntax: DeflatedFrames}
		dst := make([]byte, im.FrameBytes())
		_ = decodeDeflatedFrame(dst, data, im)
	})
}

// FuzzFile parses a whole file and decodes every frame of its pixel data
// with this build's decoders: the frame splitting (offset tables,
// fragments, markers) and the geometry checks.
func FuzzFile(f *testing.F) {
	d, _ := filepath.Abs("../../../shared/corpus")
	for _, n := range []string{"ct_enhanced_rle_bot.dcm", "ct_enhanced_jpeg_ext_frag.dcm", "mr_small_jpegls_lossless.dcm",
		"mr_small_j2k_lossless.dcm", "sc_rgb_rle_32bit_2frame.dcm", "seg_deflated_image_frame.dcm", "mr_small_explicit_be.dcm",
		"nm_jpeg_extended.dcm", "sc_jpegls_near_lossless.dcm", "nm_j2k_lossy.dcm", "sc_rgb_jpeg_baseline.dcm"} {
		if b, err := os.ReadFile(filepath.Join(d, n)); err == nil {
			f.Add(b)
		}
	}
	set := Default()
	if set.pool != nil {
		set.pool.limit = 3 * time.Second // below the fuzzer's hang detection
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := dicomraw.DefaultLimits()
		file, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), lim)
		if err != nil {
			return
		}
		src, err := FromFile(file)
		if err != nil {
			return
		}
		if src.Image.FrameBytes()*src.Image.Frames > 64<<20 {
			return // a valid but large geometry: not this target's concern
		}
		fr, err := set.Open(src)
		if err != nil {
			return
		}
		buf := make([]byte, fr.Output().FrameBytes())
		for i := 0; i < fr.Output().Frames; i++ {
			_ = fr.Frame(i, buf)
		}
	})
}
