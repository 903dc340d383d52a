package burnin

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
)

// Luminance stretches a frame's own range to 0..255: signed and unsigned
// 16-bit samples, bits stored below 16, MONOCHROME1 inverted, RGB
// weighted; the reference is computed here from the values themselves.
func TestLuminance(t *testing.T) {
	vals := []int32{-1024, -1000, 0, 40, 1000, 3071}
	cases := []struct {
		name string
		im   codec.Image
		enc  func(v int32) uint16
		want func(v, lo, hi int32) uint8
	}{
		{"signed 16", codec.Image{BitsAllocated: 16, BitsStored: 16, PixelRepresentation: 1, Photometric: "MONOCHROME2"},
			func(v int32) uint16 { return uint16(int16(v)) }, lin},
		{"signed 12 in 16", codec.Image{BitsAllocated: 16, BitsStored: 12, PixelRepresentation: 1, Photometric: "MONOCHROME2"},
			func(v int32) uint16 { return uint16(v/2) & 0x0FFF }, func(v, lo, hi int32) uint8 { return lin(v/2, lo/2, hi/2) }},
		{"unsigned 12 with junk above", codec.Image{BitsAllocated: 16, BitsStored: 12, Photometric: "MONOCHROME2"},
			func(v int32) uint16 { return uint16(v+1024) | 0xF000 }, lin},
		{"MONOCHROME1", codec.Image{BitsAllocated: 16, BitsStored: 16, PixelRepresentation: 1, Photometric: "MONOCHROME1"},
			func(v int32) uint16 { return uint16(int16(v)) }, func(v, lo, hi int32) uint8 { return 255 - lin(v, lo, hi) }},
	}
	for _, c := range cases {
		im := c.im
		im.Rows, im.Columns, im.Frames, im.SamplesPerPixel = 1, len(vals), 1, 1
		frame := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(frame[2*i:], c.enc(v))
		}
		g, err := Luminance(frame, im, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for i, v := range vals {
			if want := c.want(v, vals[0], vals[len(vals)-1]); g.Pix[i] != want {
				t.Errorf("%s: value %d -> %d, want %d", c.name, v, g.Pix[i], want)
			}
		}
	}
	rgb := codec.Image{Rows: 1, Columns: 2, Frames: 1, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB"}
	g, err := Luminance([]byte{255, 255, 0, 0, 0, 255}, rgb, nil)
	if err != nil || g.Pix[0] != 255 || g.Pix[1] != 0 {
		t.Errorf("RGB: %v %v", g.Pix, err)
	}
}

func lin(v, lo, hi int32) uint8 { return uint8(int64(v-lo) * 255 / int64(hi-lo)) }

// The cost of making a CT slice's grey image and screening it, and of
// screening it with grey rows made on demand (what deid does), next to
// copying its bytes (go test -bench Screen ./pipeline/burnin).
func BenchmarkScreenCTSlice(b *testing.B) {
	im := codec.Image{Rows: 512, Columns: 512, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 16,
		PixelRepresentation: 1, Photometric: "MONOCHROME2"}
	frame := make([]byte, im.FrameBytes())
	for i := 0; i < len(frame)/2; i++ {
		x, y := i%512, i/512
		v := int16(-1000)
		if (x-256)*(x-256)+(y-256)*(y-256) < 200*200 {
			v = int16(40 + (x*7+y*13)%60)
		}
		binary.LittleEndian.PutUint16(frame[2*i:], uint16(v))
	}
	c := New(Config{})
	b.Run("copy", func(b *testing.B) {
		dst := make([]byte, len(frame))
		for i := 0; i < b.N; i++ {
			copy(dst, frame)
		}
	})
	b.Run("luminance+screen", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			g, err := Luminance(frame, im, nil)
			if err != nil {
				b.Fatal(err)
			}
			if c.Screen(g) {
				b.Fatal("a text-free slice failed the screen")
			}
		}
	})
	b.Run("screenframe", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if text, err := c.ScreenFrame(frame, im, nil, nil); err != nil || text {
				b.Fatal("a text-free slice failed the screen", err)
			}
		}
	})
}

// ScreenFrame is Screen of the frame's Luminance, for every 16-bit
// encoding Luminance knows: a slice of air and noisy tissue says no, the
// same slice with rows of glyph-like strokes on the air says yes.
func TestScreenFrame(t *testing.T) {
	c := New(Config{})
	encs := []struct {
		name string
		im   codec.Image
		enc  func(v int32) uint16
	}{
		{"signed 16", codec.Image{BitsStored: 16, PixelRepresentation: 1, Photometric: "MONOCHROME2"}, func(v int32) uint16 { return uint16(int16(v)) }},
		{"signed 12", codec.Image{BitsStored: 12, PixelRepresentation: 1, Photometric: "MONOCHROME2"}, func(v int32) uint16 { return uint16(v/2) & 0x0FFF }},
		{"unsigned 12, junk above", codec.Image{BitsStored: 12, Photometric: "MONOCHROME2"}, func(v int32) uint16 { return uint16(v+1024) | 0xA000 }},
		{"MONOCHROME1", codec.Image{BitsStored: 16, PixelRepresentation: 1, Photometric: "MONOCHROME1"}, func(v int32) uint16 { return uint16(int16(v)) }},
	}
	for _, e := range encs {
		for _, text := range []bool{false, true} {
			im := e.im
			im.Rows, im.Columns, im.Frames, im.SamplesPerPixel, im.BitsAllocated = 256, 256, 1, 1, 16
			frame := make([]byte, im.FrameBytes())
			seed := uint32(7)
			for y := 0; y < 256; y++ {
				for x := 0; x < 256; x++ {
					seed = seed*1664525 + 1013904223
					v := int32(-1000)
					if (x-128)*(x-128)+(y-150)*(y-150) < 90*90 {
						v = 40 + int32(seed>>28) // tissue, noisy
					}
					// A line of text: 12 rows of 2-pixel stems every 5.
					if text && y >= 10 && y < 22 && x >= 10 && x < 130 && x%5 < 2 {
						v = 3000
					}
					binary.LittleEndian.PutUint16(frame[2*(y*256+x):], e.enc(v))
				}
			}
			got, err := c.ScreenFrame(frame, im, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Luminance(frame, im, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.Screen(g); got != want {
				t.Errorf("%s, text %v: ScreenFrame %v, Screen(Luminance) %v", e.name, text, got, want)
			}
			if got != text {
				t.Errorf("%s, text %v: the screen says %v", e.name, text, got)
			}
		}
	}
}

// The screen's grey of a 16-bit frame is Luminance's (gray16), for every
// layout of the samples, with one table kept from frame to frame whose
// ranges differ, repeat and collapse to one level.
func TestScreenGray16(t *testing.T) {
	var table screenTable
	rng := rand.New(rand.NewPCG(9, 10))
	for _, e := range []struct {
		bits, signed int
		inv          bool
	}{{16, 1, false}, {16, 0, true}, {12, 1, false}, {12, 0, false}, {10, 1, true}} {
		for _, span := range []int{100, 3000, 100, 0, 60000} {
			im := codec.Image{Rows: 9, Columns: 37, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: e.bits,
				PixelRepresentation: e.signed, Photometric: "MONOCHROME2"}
			frame := make([]byte, im.FrameBytes())
			base := rng.IntN(1000)
			for i := 0; i < len(frame); i += 2 {
				binary.LittleEndian.PutUint16(frame[i:], uint16(base+rng.IntN(span+1))|uint16(rng.IntN(2))<<15)
			}
			g := newScreenGray16(frame, im, e.inv, &table)
			ref := newGray16(frame, im, e.inv)
			got, want := make([]uint8, 37), make([]uint8, 37)
			for y := 0; y < 9; y++ {
				g.row(frame, y, 37, got)
				ref.row(frame, y, 37, want)
				if !bytes.Equal(got, want) {
					t.Fatalf("bits %d signed %d inverted %v span %d row %d: %v, Luminance %v", e.bits, e.signed, e.inv, span, y, got, want)
				}
			}
		}
	}
}
