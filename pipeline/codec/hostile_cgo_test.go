//go:build cgocodecs && cgo

package codec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// The C decoders on damaged frames of the corpus: truncated, with the
// wrong geometry (rows, columns, samples, bits allocated against the
// codestream's own header), with corrupted entropy data. Each is an
// error of kind ErrCorrupt, or for corrupted data at worst a frame of the
// declared size; never a crash.
func TestCDecodersHostile(t *testing.T) {
	set := Default()
	d := corpusDir(t)
	for _, name := range []string{"sc_rgb_jpeg_baseline.dcm", "nm_jpeg_extended.dcm", "ct_enhanced_jpeg_lossless_p14.dcm",
		"mr_small_jpegls_lossless.dcm", "sc_jpegls_near_lossless.dcm", "mr_small_j2k_lossless.dcm", "nm_j2k_lossy.dcm",
		"sc_htj2k_lossless.dcm", "us_multiframe_jpeg_ybr.dcm"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(d, name))
			if err != nil {
				t.Fatal(err)
			}
			f, err := dicomraw.Parse(bytes.NewReader(b), int64(len(b)), dicomraw.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			src, err := FromFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := set.Lookup(src.Image.Syntax)
			frame, err := src.FrameData(0, nil)
			if err != nil {
				t.Fatal(err)
			}
			im := src.Image
			dst := make([]byte, Output(im).FrameBytes())
			if err := c.Dec.Decode(dst, frame, im); err != nil {
				t.Fatalf("intact frame: %v", err)
			}
			for _, cut := range []int{len(frame) / 3, len(frame) * 9 / 10, len(frame) - 3} {
				if err := c.Dec.Decode(dst, frame[:cut], im); !errors.Is(err, ErrCorrupt) {
					t.Errorf("truncated to %d of %d bytes: %v", cut, len(frame), err)
				}
			}
			wrong := map[string]func(*Image){
				"one row more":     func(w *Image) { w.Rows++ },
				"one column less":  func(w *Image) { w.Columns-- },
				"other samples":    func(w *Image) { w.SamplesPerPixel = 4 - w.SamplesPerPixel },
				"half the columns": func(w *Image) { w.Columns /= 2 },
			}
			if im.BitsAllocated == 16 {
				wrong["8 bits allocated"] = func(w *Image) { w.BitsAllocated, w.BitsStored = 8, 8 }
			}
			for what, mut := range wrong {
				w := im
				mut(&w)
				if w.Columns < 1 {
					continue
				}
				if err := c.Dec.Decode(make([]byte, Output(w).FrameBytes()), frame, w); !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: %v", what, err)
				}
			}
			// Corrupted entropy-coded data, past the headers.
			for _, seed := range []int{1, 2, 3} {
				bad := append([]byte(nil), frame...)
				for i := len(bad) / 2; i < len(bad)-8; i += 97 * seed {
					bad[i] ^= 0x5A
				}
				err := c.Dec.Decode(dst, bad, im)
				if err != nil && !errors.Is(err, ErrCorrupt) {
					t.Errorf("corrupted data: error of no known kind: %v", err)
				}
			}
		})
	}
}

// The inputs fuzzing found in the C libraries: an HTJ2K codestream on
// which OpenJPEG 2.5.0 asserts (abort), and a 10x10 JPEG-LS stream on
// which CharLS 2.4.1 spends about half a minute. Through the registry
// each is an ErrCorrupt of its frame (the worker crashed; the worker was
// stopped at the time limit) and this process goes on; the next frame
// decodes in a fresh worker, to the same pixels as in process.
func TestCLibraryFailuresIsolated(t *testing.T) {
	set := Default()
	set.pool.limit = 3 * time.Second
	for _, c := range []struct{ seed, ts, want string }{
		{"testdata/fuzz/FuzzJ2K/ab9e11bcb1987241", HTJ2K, "crashed"},
		{"testdata/fuzz/FuzzJPEGLS/18d29e1a40ff4207", JPEGLSLossless, "time limit"},
	} {
		b, err := os.ReadFile(c.seed)
		if err != nil {
			t.Fatal(err)
		}
		frame := fuzzSeedBytes(t, b)
		hdr := J2KHeader
		if c.ts == JPEGLSLossless {
			hdr = JPEGHeader
		}
		si, err := hdr(frame)
		if err != nil {
			t.Fatal(err)
		}
		im := Image{Rows: si.Height, Columns: si.Width, Frames: 1, SamplesPerPixel: si.Components, BitsAllocated: 8, BitsStored: si.Precision, Syntax: c.ts}
		dec, _ := set.Lookup(c.ts)
		start := time.Now()
		err = dec.Dec.Decode(make([]byte, Output(im).FrameBytes()), frame, im)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want ErrCorrupt (%s), got %v", c.seed, c.want, err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s: took %s", c.seed, d)
		}
	}
	d := corpusDir(t)
	raw, _ := os.ReadFile(filepath.Join(d, "sc_htj2k_lossless.dcm"))
	f, _ := dicomraw.Parse(bytes.NewReader(raw), int64(len(raw)), dicomraw.DefaultLimits())
	src, _ := FromFile(f)
	fr, _ := src.FrameData(0, nil)
	a, b2 := make([]byte, Output(src.Image).FrameBytes()), make([]byte, Output(src.Image).FrameBytes())
	c, _ := set.Lookup(HTJ2KLossless)
	if err := c.Dec.Decode(a, fr, src.Image); err != nil {
		t.Fatal(err)
	}
	if err := decodeJ2K(b2, fr, src.Image); err != nil || !bytes.Equal(a, b2) {
		t.Fatalf("worker and in-process decodes differ (%v)", err)
	}
}

// fuzzSeedBytes reads a "go test fuzz v1" file of one []byte.
func fuzzSeedBytes(t *testing.T, b []byte) []byte {
	s := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[1])
	s = strings.TrimSuffix(strings.TrimPrefix(s, "[]byte("), ")")
	v, err := strconv.Unquote(s)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(v)
}
