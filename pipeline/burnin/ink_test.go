package burnin

import (
	"image"
	"slices"
	"testing"
)

// speckle is a dark, noisy frame (grey 13, -7..7 around it) with, where
// strokes is true, one-colour strokes of level 20: vertical bars two
// pixels wide, glyph-tall, in a row, and a diagonal one pixel wide.
func speckle(w, h int, strokes bool) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	seed := uint32(3)
	for i := range g.Pix {
		n := 0
		for range 2 {
			seed = seed*1664525 + 1013904223
			n += int(seed >> 29)
		}
		g.Pix[i] = uint8(13 + n - 7)
	}
	if strokes {
		for k := range 30 {
			x0 := 20 + 7*k
			for y := 100; y < 112; y++ {
				g.Pix[y*w+x0], g.Pix[y*w+x0+1] = 20, 20
			}
			g.Pix[100*w+x0+2], g.Pix[111*w+x0+2] = 20, 20
		}
		for d := range 12 {
			g.Pix[(130+d)*w+40+d] = 20
		}
	}
	return g
}

func TestExactInkLevels(t *testing.T) {
	smooth := image.NewGray(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			smooth.Pix[y*320+x] = uint8(20 + x/4 + y/8)
		}
	}
	cases := []struct {
		name string
		g    *image.Gray
		have []uint8
		want []uint8
	}{
		{"speckle alone", speckle(320, 240, false), nil, nil},
		{"a smooth ramp", smooth, nil, nil},
		{"strokes of one level over speckle", speckle(320, 240, true), nil, []uint8{20}},
		{"a level inkLevels found already", speckle(320, 240, true), []uint8{21}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := exactInkLevels(c.g, c.have); !slices.Equal(got, c.want) {
				t.Errorf("exactInkLevels = %v, want %v", got, c.want)
			}
		})
	}
}

// isoExact keeps strokes of the level, one pixel wide and diagonal ones
// too, and drops the speckle that happens to reach it.
func TestIsoExact(t *testing.T) {
	g := speckle(320, 240, true)
	page := isoExact(g, 20)
	ink := func(x, y int) bool { return page.Pix[y*page.Stride+x] == 0 }
	for d := 1; d < 11; d++ {
		if !ink(40+d, 130+d) {
			t.Errorf("diagonal stroke pixel (%d,%d) dropped", 40+d, 130+d)
		}
	}
	for y := 101; y < 111; y++ {
		if !ink(20, y) || !ink(21, y) {
			t.Errorf("bar pixel at row %d dropped", y)
		}
	}
	stray, at := 0, 0
	for y := 150; y < 240; y++ {
		for x := 0; x < 320; x++ {
			if g.Pix[y*320+x] == 20 {
				at++
				if ink(x, y) {
					stray++
				}
			}
		}
	}
	if at == 0 || stray*10 > at {
		t.Errorf("%d of the %d speckle pixels at the level kept", stray, at)
	}
}
