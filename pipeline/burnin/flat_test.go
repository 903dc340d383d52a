package burnin

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// The vector kernels say what the scalar keys say: which blocks of
// sixteen samples hold a sample more than lim from the one before it, and
// the lowest and highest key, for every layout of the samples.
func TestVectorKernels(t *testing.T) {
	if !simdRows() {
		t.Skip("no AVX2 here: the screen maps whole rows")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 3000; iter++ {
		bits := []int{16, 12, 10, 8}[rng.IntN(4)]
		signed := rng.IntN(2)
		g := keyOrder(codec.Image{BitsStored: bits, PixelRepresentation: signed})
		n := 16 * (1 + rng.IntN(70))
		buf := make([]byte, 2*n+32)
		level := rng.IntN(1 << 16)
		for i := 0; i < n+16; i++ {
			switch rng.IntN(8) {
			case 0:
				level = rng.IntN(1 << 16)
			case 1, 2:
				level += rng.IntN(41) - 20
			}
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(level))
		}
		src := buf[32:] // sixteen samples before src, readable
		lim := uint64(rng.IntN(300))
		if rng.IntN(10) == 0 {
			lim = 0
		}
		first := uint64(rng.IntN(2))
		var want uint64
		for b := int(first); b < min(n/16, 64); b++ {
			for x := 16 * b; x < 16*b+16; x++ {
				a, p := int(g.key(buf[32+2*x:])), int(g.key(buf[30+2*x:]))
				if d := a - p; d > int(lim) || -d > int(lim) {
					want |= 1 << b
					break
				}
			}
		}
		if got := busyBlocks16(src, first, lim, uint64(g.shift), uint64(signed)); got != want {
			t.Fatalf("bits %d signed %d lim %d first %d n %d: busy %064b, want %064b", bits, signed, lim, first, n, got, want)
		}
		lo, hi := uint64(0xFFFF), uint64(0)
		for x := 0; x < n; x++ {
			k := uint64(g.key(src[2*x:]))
			lo, hi = min(lo, k), max(hi, k)
		}
		if gl, gh := keyRange16(src[:2*n], uint64(g.shift), uint64(signed)); gl != lo || gh != hi {
			t.Fatalf("bits %d signed %d n %d: range %d-%d, want %d-%d", bits, signed, n, gl, gh, lo, hi)
		}
	}
	if lo, hi := keyRange16(nil, 0, 0); lo != 0xFFFF || hi != 0 {
		t.Errorf("range of nothing %d-%d", lo, hi)
	}
}

// Busy's spans hold every pixel whose grey differs from its left
// neighbour's by flat or more (the screen's 13, and others), for rows of every width and sample layout.
func TestFrameRowsBusy(t *testing.T) {
	if !simdRows() {
		t.Skip("no AVX2 here: the screen maps whole rows")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var table screenTable
	for iter := 0; iter < 400; iter++ {
		w := []int{5, 16, 17, 31, 512, 1030, 2100}[rng.IntN(7)]
		bits := []int{16, 12}[rng.IntN(2)]
		im := codec.Image{Rows: 8, Columns: w, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: bits,
			PixelRepresentation: rng.IntN(2), Photometric: "MONOCHROME2"}
		frame := make([]byte, im.FrameBytes())
		level := rng.IntN(4096)
		for i := 0; i < w*8; i++ {
			switch rng.IntN(10) {
			case 0:
				level = rng.IntN(4096)
			case 1, 2, 3:
				level += rng.IntN(61) - 30
			}
			binary.LittleEndian.PutUint16(frame[2*i:], uint16(level))
		}
		g := newScreenGray16(frame, im, rng.IntN(2) == 0, &table)
		r := &frameRows{t: &g, frame: frame, w: w}
		row := make([]uint8, w)
		for y := 0; y < 8; y++ {
			r.Row(y, row)
			flat := []int{13, 3, 40}[rng.IntN(3)]
			spans := r.Busy(y, flat, nil)
			in := func(x int) bool {
				for _, s := range spans {
					if x >= s[0] && x < s[1] {
						return true
					}
				}
				return false
			}
			for k, s := range spans {
				if s[0] >= s[1] || s[0] < 0 || s[1] > w || k > 0 && s[0] < spans[k-1][1] {
					t.Fatalf("w %d: spans %v out of order", w, spans)
				}
			}
			for x := 1; x < w; x++ {
				if d := int(row[x]) - int(row[x-1]); (d >= flat || -d >= flat) && !in(x) {
					t.Fatalf("w %d bits %d row %d: pixel %d differs by %d, outside %v", w, bits, y, x, d, spans)
				}
			}
		}
	}
}

// The screen with the vector kernels says what the screen of whole rows
// says, on every 16-bit frame of the shared corpus and on the same frames
// with a line of glyph-like strokes at each corner, bright and dark, at
// full and at faint contrast.
func TestScreenFrameSparse(t *testing.T) {
	if !simdRows() {
		t.Skip("no AVX2 here: the screen maps whole rows")
	}
	dir, _ := filepath.Abs("../../../shared/corpus")
	files, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	if len(files) == 0 {
		t.Fatal("shared corpus not found")
	}
	c := New(Config{})
	var sparse, whole FrameScreen
	whole.wholeRows = true
	frames, texts := 0, 0
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.Limits{})
		if err != nil {
			continue
		}
		src, err := codec.FromFile(f)
		if err != nil || src == nil {
			continue
		}
		fr, err := codec.Default().Open(src)
		if err != nil {
			continue
		}
		im := fr.Output()
		if !gray16Frame(im) || im.Rows < 32 || im.Columns < 32 {
			continue
		}
		frame := make([]byte, im.FrameBytes())
		for k := 0; k < min(im.Frames, 2); k++ {
			if fr.Frame(k, frame) != nil {
				continue
			}
			frames++
			variants := [][]byte{frame}
			lo, hi := keyRangeOf(frame, im)
			for _, level := range []uint16{hi, lo, lo + (hi-lo)/4} {
				txt := append([]byte(nil), frame...)
				stems(txt, im, level)
				variants = append(variants, txt)
			}
			for v, px := range variants {
				got, err1 := c.ScreenFrame(px, im, nil, &sparse)
				want, err2 := c.ScreenFrame(px, im, nil, &whole)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if got != want {
					t.Errorf("%s frame %d variant %d: sparse %v, whole rows %v", filepath.Base(p), k, v, got, want)
				}
				if v > 0 && got {
					texts++
				}
				if v == 0 && got && (modality(f) == "CT" || modality(f) == "MR") {
					// None of the corpus's CT and MR slices shows text: a
					// screen that says otherwise sends anatomy to OCR.
					t.Errorf("%s frame %d: the screen takes a %s slice without text for text", filepath.Base(p), k, modality(f))
				}
			}
		}
	}
	if frames == 0 || texts == 0 {
		t.Fatalf("%d frames, %d with text found", frames, texts)
	}
	t.Logf("%d frames, %d of %d with strokes screened true", frames, texts, 3*frames)
}

// keyRangeOf is the lowest and highest stored sample of frame, as stored
// (the value to write for a level at either end).
func keyRangeOf(frame []byte, im codec.Image) (lo, hi uint16) {
	lo, hi = 0xFFFF, 0
	for i := 0; i+1 < im.FrameBytes(); i += 2 {
		v := binary.LittleEndian.Uint16(frame[i:])
		if im.PixelRepresentation == 1 {
			v ^= 0x8000
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	if im.PixelRepresentation == 1 {
		lo, hi = lo^0x8000, hi^0x8000
	}
	return lo, hi
}

// stems writes a line of text-like strokes (2-pixel stems every 5, 12
// rows) into each corner of frame, in level.
func stems(frame []byte, im codec.Image, level uint16) {
	for _, c := range [][2]int{{4, 4}, {im.Columns - 124, 4}, {4, im.Rows - 18}, {im.Columns - 124, im.Rows - 18}} {
		for y := c[1]; y < c[1]+12 && y < im.Rows; y++ {
			for x := max(c[0], 0); x < c[0]+120 && x < im.Columns; x++ {
				if (x-c[0])%5 < 2 {
					binary.LittleEndian.PutUint16(frame[2*(y*im.Columns+x):], level)
				}
			}
		}
	}
}

// modality is f's Modality (0008,0060).
func modality(f *dicomraw.File) string {
	for _, e := range f.Elements {
		if uint32(e.Tag) == 0x00080060 {
			return string(bytes.TrimRight(e.Value, " \x00"))
		}
	}
	return ""
}
