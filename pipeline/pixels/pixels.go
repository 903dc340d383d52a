// Package pixels blanks rectangles of pixel data, the Clean Pixel Data
// option's tool for text burned into images: native (uncompressed) pixel
// data of any bit depth, sign, planar configuration and frame count, and
// RLE Lossless (decoded, masked and encoded again, one frame at a time).
// Memory holds one frame, whatever the number of frames.
package pixels

import (
	"errors"
	"fmt"
	"slices"
)

// Geometry is how a frame's pixels are laid out.
type Geometry struct {
	Rows, Columns   int
	Frames          int
	SamplesPerPixel int
	BitsAllocated   int // 8, 16, 32 or 64 (1 is refused: packed bits)
	// PlanarConfiguration 0: samples interleaved per pixel (RGBRGB...);
	// 1: one plane per sample (RR..GG..BB..).
	PlanarConfiguration int
}

// Rect is a rectangle of pixels: columns X to X+W-1, rows Y to Y+H-1.
type Rect struct {
	X, Y, W, H int
}

func (r Rect) String() string { return fmt.Sprintf("(%d,%d %dx%d)", r.X, r.Y, r.W, r.H) }

// ErrGeometry is returned for pixel data that cannot be masked safely.
var ErrGeometry = errors.New("pixel geometry not supported")

// Check validates a geometry; only what can be masked exactly passes.
func (g Geometry) Check() error {
	switch {
	case g.Rows <= 0 || g.Columns <= 0 || g.Frames <= 0:
		return fmt.Errorf("%w: %d rows, %d columns, %d frames", ErrGeometry, g.Rows, g.Columns, g.Frames)
	case g.SamplesPerPixel != 1 && g.SamplesPerPixel != 3 && g.SamplesPerPixel != 4:
		return fmt.Errorf("%w: %d samples per pixel", ErrGeometry, g.SamplesPerPixel)
	case g.BitsAllocated != 8 && g.BitsAllocated != 16 && g.BitsAllocated != 32 && g.BitsAllocated != 64:
		return fmt.Errorf("%w: %d bits allocated", ErrGeometry, g.BitsAllocated)
	case g.PlanarConfiguration != 0 && g.PlanarConfiguration != 1:
		return fmt.Errorf("%w: planar configuration %d", ErrGeometry, g.PlanarConfiguration)
	case int64(g.Rows)*int64(g.Columns)*int64(g.SamplesPerPixel)*int64(g.BitsAllocated/8) > 1<<31:
		return fmt.Errorf("%w: frame larger than 2 GiB", ErrGeometry)
	}
	return nil
}

// FrameBytes is the size of one native frame.
func (g Geometry) FrameBytes() int {
	return g.Rows * g.Columns * g.SamplesPerPixel * (g.BitsAllocated / 8)
}

// clip limits rectangles to the image; empty ones are dropped.
func (g Geometry) clip(rects []Rect) []Rect {
	var out []Rect
	for _, r := range rects {
		x0, y0 := max(r.X, 0), max(r.Y, 0)
		x1, y1 := min(r.X+r.W, g.Columns), min(r.Y+r.H, g.Rows)
		if x1 > x0 && y1 > y0 {
			out = append(out, Rect{x0, y0, x1 - x0, y1 - y0})
		}
	}
	return out
}

// MaskFrame zeroes the rectangles in one native frame, in place.
func (g Geometry) MaskFrame(frame []byte, rects []Rect) {
	bps := g.BitsAllocated / 8 // bytes per sample
	spp := g.SamplesPerPixel
	for _, r := range g.clip(rects) {
		if g.PlanarConfiguration == 0 || spp == 1 {
			px := spp * bps
			for y := r.Y; y < r.Y+r.H; y++ {
				start := (y*g.Columns + r.X) * px
				clear(frame[start : start+r.W*px])
			}
			continue
		}
		plane := g.Rows * g.Columns * bps
		for s := 0; s < spp; s++ {
			for y := r.Y; y < r.Y+r.H; y++ {
				start := s*plane + (y*g.Columns+r.X)*bps
				clear(frame[start : start+r.W*bps])
			}
		}
	}
}

// Mask is what to blank in every frame: Zero rectangles are zeroed (the
// device rules' regions, as Clean Pixel Data has always done), Paint
// rectangles are filled, sample by sample, with the median of the
// pixels just around them (text found in the pixels: painted over with
// its own background, so that the image around it keeps its look and a
// reader sees an empty patch, not a black box).
type Mask struct {
	Zero, Paint []Rect
}

// Empty reports whether the mask blanks nothing.
func (m Mask) Empty() bool { return len(m.Zero) == 0 && len(m.Paint) == 0 }

// Apply blanks the mask in one native frame, in place. Painted
// rectangles that overlap or touch are painted as one patch, one colour:
// the median of the pixels around their union, taken from the frame as
// it was before any rectangle was filled (so that the result does not
// depend on their order). Two colours meeting inside a patch would draw
// the outline of whatever straddles their edge.
func (g Geometry) Apply(frame []byte, m Mask) {
	paint := g.clip(m.Paint)
	group := make([]int, len(paint)) // union-find over touching rectangles
	for i := range group {
		group[i] = i
	}
	var root func(i int) int
	root = func(i int) int {
		for group[i] != i {
			group[i] = group[group[i]]
			i = group[i]
		}
		return i
	}
	for i := range paint {
		for k := i + 1; k < len(paint); k++ {
			if touch(paint[i], paint[k]) {
				group[root(i)] = root(k)
			}
		}
	}
	members := map[int][]Rect{}
	for i, r := range paint {
		members[root(i)] = append(members[root(i)], r)
	}
	fills := map[int][]uint64{}
	for k, rs := range members {
		fills[k] = g.ringMedian(frame, rs)
	}
	for i, r := range paint {
		g.fill(frame, r, fills[root(i)])
	}
	g.MaskFrame(frame, m.Zero)
}

// touch reports whether two rectangles overlap or share an edge.
func touch(a, b Rect) bool {
	return a.X <= b.X+b.W && b.X <= a.X+a.W && a.Y <= b.Y+b.H && b.Y <= a.Y+a.H
}

// offset is where sample s of pixel (x, y) starts in a frame.
func (g Geometry) offset(x, y, s int) int {
	bps := g.BitsAllocated / 8
	if g.PlanarConfiguration == 1 && g.SamplesPerPixel > 1 {
		return (s*g.Rows*g.Columns + y*g.Columns + x) * bps
	}
	return ((y*g.Columns+x)*g.SamplesPerPixel + s) * bps
}

// sampleAt reads sample s of pixel (x, y), little endian.
func (g Geometry) sampleAt(frame []byte, x, y, s int) uint64 {
	bps, off := g.BitsAllocated/8, g.offset(x, y, s)
	var v uint64
	for k := bps - 1; k >= 0; k-- {
		v = v<<8 | uint64(frame[off+k])
	}
	return v
}

func (g Geometry) setSample(frame []byte, x, y, s int, v uint64) {
	bps, off := g.BitsAllocated/8, g.offset(x, y, s)
	for k := 0; k < bps; k++ {
		frame[off+k] = byte(v >> (8 * k))
	}
}

// ringMedian is, per sample, the median of the pixels on the one-pixel
// rings just outside the rectangles rs (one patch) that no rectangle of
// rs covers, clipped to the frame; the first rectangle's own ring when
// the patch covers every such pixel (it fills the frame).
func (g Geometry) ringMedian(frame []byte, rs []Rect) []uint64 {
	var pts [][2]int
	covered := func(x, y int) bool {
		for _, r := range rs {
			if x >= r.X && x < r.X+r.W && y >= r.Y && y < r.Y+r.H {
				return true
			}
		}
		return false
	}
	ring := func(r Rect, all bool) {
		x0, y0, x1, y1 := r.X-1, r.Y-1, r.X+r.W, r.Y+r.H
		add := func(x, y int) {
			x, y = max(0, min(x, g.Columns-1)), max(0, min(y, g.Rows-1))
			if all || !covered(x, y) {
				pts = append(pts, [2]int{x, y})
			}
		}
		for x := x0; x <= x1; x++ {
			add(x, y0)
			add(x, y1)
		}
		for y := y0 + 1; y < y1; y++ {
			add(x0, y)
			add(x1, y)
		}
	}
	for _, r := range rs {
		ring(r, len(rs) == 1)
	}
	if len(pts) == 0 {
		ring(rs[0], true)
	}
	out := make([]uint64, g.SamplesPerPixel)
	vals := make([]uint64, len(pts))
	for s := range out {
		for i, p := range pts {
			vals[i] = g.sampleAt(frame, p[0], p[1], s)
		}
		slices.Sort(vals)
		out[s] = vals[len(vals)/2]
	}
	return out
}

func (g Geometry) fill(frame []byte, r Rect, v []uint64) {
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			for s, sv := range v {
				g.setSample(frame, x, y, s, sv)
			}
		}
	}
}
