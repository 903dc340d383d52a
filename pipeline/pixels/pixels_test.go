package pixels

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
)

func randomFrame(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + r.Intn(255)) // never 0: a zero shows masking
	}
	return b
}

// inRects tells whether pixel (x, y) is masked.
func inRects(x, y int, rects []Rect) bool {
	for _, r := range rects {
		if x >= r.X && x < r.X+r.W && y >= r.Y && y < r.Y+r.H {
			return true
		}
	}
	return false
}

// checkMasked compares a masked native frame with its original: zero in
// the rectangles, the same bytes everywhere else.
func checkMasked(t *testing.T, g Geometry, orig, got []byte, rects []Rect) {
	t.Helper()
	bps := g.BitsAllocated / 8
	for y := 0; y < g.Rows; y++ {
		for x := 0; x < g.Columns; x++ {
			for s := 0; s < g.SamplesPerPixel; s++ {
				var off int
				if g.PlanarConfiguration == 0 {
					off = ((y*g.Columns+x)*g.SamplesPerPixel + s) * bps
				} else {
					off = (s*g.Rows*g.Columns + y*g.Columns + x) * bps
				}
				for b := 0; b < bps; b++ {
					want := orig[off+b]
					if inRects(x, y, rects) {
						want = 0
					}
					if got[off+b] != want {
						t.Fatalf("pixel (%d,%d) sample %d byte %d = %d, want %d", x, y, s, b, got[off+b], want)
					}
				}
			}
		}
	}
}

var geometries = []struct {
	name string
	g    Geometry
}{
	{"8-bit monochrome", Geometry{Rows: 20, Columns: 33, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8}},
	{"16-bit monochrome", Geometry{Rows: 17, Columns: 16, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16}},
	{"32-bit float-sized", Geometry{Rows: 9, Columns: 7, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 32}},
	{"RGB interleaved", Geometry{Rows: 12, Columns: 10, Frames: 1, SamplesPerPixel: 3, BitsAllocated: 8}},
	{"RGB planar", Geometry{Rows: 12, Columns: 10, Frames: 1, SamplesPerPixel: 3, BitsAllocated: 8, PlanarConfiguration: 1}},
	{"16-bit RGB planar", Geometry{Rows: 6, Columns: 5, Frames: 1, SamplesPerPixel: 3, BitsAllocated: 16, PlanarConfiguration: 1}},
}

var rectSets = [][]Rect{
	{{X: 0, Y: 0, W: 4, H: 2}},
	{{X: 2, Y: 3, W: 3, H: 3}, {X: 0, Y: 5, W: 100, H: 1}}, // the second spills over the edge: clipped
	{{X: -5, Y: -5, W: 8, H: 8}},                           // partly outside
	{{X: 1000, Y: 0, W: 5, H: 5}},                          // wholly outside: nothing
}

func TestMaskFrame(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, c := range geometries {
		for _, rects := range rectSets {
			orig := randomFrame(r, c.g.FrameBytes())
			got := append([]byte(nil), orig...)
			c.g.MaskFrame(got, rects)
			checkMasked(t, c.g, orig, got, rects)
		}
	}
}

func TestMaskNativeMultiFrame(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	g := Geometry{Rows: 8, Columns: 9, Frames: 4, SamplesPerPixel: 1, BitsAllocated: 8}
	rects := []Rect{{X: 1, Y: 1, W: 3, H: 2}}
	orig := randomFrame(r, g.FrameBytes()*g.Frames)
	orig = append(orig, 0) // odd total: one padding byte (8*9*4 = 288 is even; add one to check the copy)
	var out bytes.Buffer
	if err := MaskNative(&out, bytes.NewReader(orig), int64(len(orig)), g, Mask{Zero: rects}); err != nil {
		t.Fatal(err)
	}
	if out.Len() != len(orig) {
		t.Fatalf("%d bytes out, %d in", out.Len(), len(orig))
	}
	fb := g.FrameBytes()
	for f := 0; f < g.Frames; f++ {
		checkMasked(t, g, orig[f*fb:(f+1)*fb], out.Bytes()[f*fb:(f+1)*fb], rects)
	}
	if err := MaskNative(&out, bytes.NewReader(orig[:100]), 100, g, Mask{Zero: rects}); err == nil {
		t.Error("pixel data shorter than its frames was masked")
	}
	for _, bad := range []Geometry{
		{Rows: 8, Columns: 8, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 1},
		{Rows: 8, Columns: 8, Frames: 1, SamplesPerPixel: 2, BitsAllocated: 8},
		{Rows: 0, Columns: 8, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8},
	} {
		if err := MaskNative(&out, bytes.NewReader(orig), int64(len(orig)), bad, Mask{Zero: rects}); err == nil {
			t.Errorf("geometry %+v accepted", bad)
		}
	}
}

// rleEncode builds an RLE frame from a native one (the reference encoder
// of the tests is codec.PackBits, checked against pydicom's
// decoder on the corpus in corpus_test.go).
func rleEncode(g Geometry, native []byte) []byte {
	bps := g.BitsAllocated / 8
	nseg := g.SamplesPerPixel * bps
	out := make([]byte, 64)
	binary.LittleEndian.PutUint32(out, uint32(nseg))
	plane := make([]byte, g.Rows*g.Columns)
	for s := 0; s < g.SamplesPerPixel; s++ {
		for b := 0; b < bps; b++ {
			for p := 0; p < g.Rows*g.Columns; p++ {
				plane[p] = native[(p*g.SamplesPerPixel+s)*bps+(bps-1-b)] // MSB first, little-endian input
			}
			binary.LittleEndian.PutUint32(out[4+4*(s*bps+b):], uint32(len(out)))
			out = codec.PackBits(out, plane, g.Columns)
			if len(out)%2 == 1 {
				out = append(out, 0)
			}
		}
	}
	return out
}

// rleDecode is the inverse, to native little-endian interleaved samples.
func rleDecode(t *testing.T, g Geometry, frame []byte) []byte {
	t.Helper()
	bps := g.BitsAllocated / 8
	nseg := g.SamplesPerPixel * bps
	native := make([]byte, g.FrameBytes())
	plane := make([]byte, g.Rows*g.Columns)
	for seg := 0; seg < nseg; seg++ {
		start := int(binary.LittleEndian.Uint32(frame[4+4*seg:]))
		end := len(frame)
		if seg+1 < nseg {
			end = int(binary.LittleEndian.Uint32(frame[8+4*seg:]))
		}
		if err := codec.UnpackBits(plane, frame[start:end]); err != nil {
			t.Fatal(err)
		}
		s, b := seg/bps, seg%bps
		for p := range plane {
			native[(p*g.SamplesPerPixel+s)*bps+(bps-1-b)] = plane[p]
		}
	}
	return native
}

func TestMaskRLEFrame(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, c := range geometries {
		if c.g.PlanarConfiguration == 1 {
			continue // RLE has its own (segment) layout
		}
		for _, rects := range rectSets {
			orig := randomFrame(r, c.g.FrameBytes())
			// Runs too, so that both PackBits forms occur.
			for i := 0; i+10 < len(orig); i += 37 {
				for k := 0; k < 9; k++ {
					orig[i+k] = orig[i]
				}
			}
			enc := rleEncode(c.g, orig)
			if got := rleDecode(t, c.g, enc); !bytes.Equal(got, orig) {
				t.Fatalf("%s: RLE round trip differs", c.name)
			}
			masked, err := MaskRLEFrame(enc, c.g, rects)
			if err != nil {
				t.Fatal(err)
			}
			checkMasked(t, c.g, orig, rleDecode(t, c.g, masked), rects)
		}
	}
}

func TestMaskRLERefusesMalformed(t *testing.T) {
	g := Geometry{Rows: 4, Columns: 4, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8}
	good := rleEncode(g, make([]byte, 16))
	cases := map[string][]byte{
		"short":          good[:10],
		"segment count":  append([]byte{2, 0, 0, 0}, good[4:]...),
		"truncated data": good[:65],
		"offset outside": func() []byte { b := append([]byte(nil), good...); binary.LittleEndian.PutUint32(b[4:], 9999); return b }(),
	}
	for name, b := range cases {
		if _, err := MaskRLEFrame(b, g, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Painting fills a rectangle with the median of the pixels around it,
// sample by sample, in every layout; what is outside stays as it was.
func TestPaint(t *testing.T) {
	for _, g := range []Geometry{
		{Rows: 12, Columns: 16, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8},
		{Rows: 12, Columns: 16, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16},
		{Rows: 12, Columns: 16, Frames: 1, SamplesPerPixel: 3, BitsAllocated: 8},
		{Rows: 12, Columns: 16, Frames: 1, SamplesPerPixel: 3, BitsAllocated: 8, PlanarConfiguration: 1},
	} {
		frame := make([]byte, g.FrameBytes())
		bg := []uint64{200, 1234, 7}
		for y := 0; y < g.Rows; y++ {
			for x := 0; x < g.Columns; x++ {
				for s := 0; s < g.SamplesPerPixel; s++ {
					v := bg[s] % (1 << g.BitsAllocated)
					if x >= 4 && x < 10 && y >= 3 && y < 7 {
						v = 9 // "ink"
					}
					g.setSample(frame, x, y, s, v)
				}
			}
		}
		orig := append([]byte(nil), frame...)
		r := Rect{X: 3, Y: 2, W: 8, H: 6}
		g.Apply(frame, Mask{Paint: []Rect{r}})
		for y := 0; y < g.Rows; y++ {
			for x := 0; x < g.Columns; x++ {
				in := x >= r.X && x < r.X+r.W && y >= r.Y && y < r.Y+r.H
				for s := 0; s < g.SamplesPerPixel; s++ {
					got, was := g.sampleAt(frame, x, y, s), g.sampleAt(orig, x, y, s)
					if in && got != bg[s]%(1<<g.BitsAllocated) || !in && got != was {
						t.Fatalf("%+v: (%d,%d) sample %d = %d (was %d)", g, x, y, s, got, was)
					}
				}
			}
		}
	}
}

// Rectangles that overlap or touch are one patch of one colour, the
// median around their union: a line straddling two masks whose own rings
// differ (one over a dark margin, one over a bright image) is not drawn
// by the edge between two fills. Apart, each keeps its own.
func TestPaintPatch(t *testing.T) {
	g := Geometry{Rows: 20, Columns: 40, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8}
	frame := make([]byte, g.FrameBytes())
	for y := 0; y < g.Rows; y++ {
		for x := 0; x < g.Columns; x++ {
			frame[y*g.Columns+x] = 10 // dark margin
			if x >= 14 {
				frame[y*g.Columns+x] = 200 // bright image
			}
		}
	}
	a, b, far := Rect{X: 2, Y: 5, W: 12, H: 6}, Rect{X: 12, Y: 6, W: 14, H: 6}, Rect{X: 30, Y: 2, W: 4, H: 3}
	g.Apply(frame, Mask{Paint: []Rect{a, b, far}})
	levels := map[byte]bool{}
	for _, r := range []Rect{a, b} {
		for y := r.Y; y < r.Y+r.H; y++ {
			for x := r.X; x < r.X+r.W; x++ {
				levels[frame[y*g.Columns+x]] = true
			}
		}
	}
	if len(levels) != 1 {
		t.Errorf("two touching rectangles painted with %d levels: %v", len(levels), levels)
	}
	if v := frame[3*g.Columns+31]; v != 200 {
		t.Errorf("a rectangle apart painted %d, want its own ring's 200", v)
	}
}
