package burnin

import (
	"encoding/binary"
	"fmt"
	"image"
	"math/bits"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
)

// Palette is a Palette Color image's lookup tables (PS3.3 C.7.6.3.1.5),
// as 16-bit entries: what its index values look like.
type Palette struct {
	First          int // the first index the tables map
	Red, Green, Bl []uint16
}

// Luminance is what a decoded frame looks like to a reader, as 8-bit
// grey levels: the samples' luminance (RGB weighted as Rec. 601; YBR's
// Y), Palette Color through its tables, MONOCHROME1 inverted, and the
// frame's own range stretched to 0..255 (text is drawn in the extremes
// of it: white on a CT, black on a light screen capture). frame is one
// frame as codec decodes it (little endian; planes as im says).
func Luminance(frame []byte, im codec.Image, pal *Palette) (*image.Gray, error) {
	w, h := im.Columns, im.Rows
	if w <= 0 || h <= 0 || len(frame) < im.FrameBytes() {
		return nil, fmt.Errorf("burnin: frame of %d bytes for %dx%d", len(frame), w, h)
	}
	n := w * h
	bps := im.BitsAllocated / 8
	if im.BitsAllocated == 1 {
		bps = 1 // codec unpacks bits, one byte a pixel
	}
	if bps != 1 && bps != 2 && bps != 4 {
		return nil, fmt.Errorf("burnin: %d bits allocated", im.BitsAllocated)
	}
	sample := func(i int) int64 {
		switch bps {
		case 1:
			if im.PixelRepresentation == 1 {
				return int64(int8(frame[i]))
			}
			return int64(frame[i])
		case 2:
			v := binary.LittleEndian.Uint16(frame[2*i:])
			if im.PixelRepresentation == 1 {
				return int64(signExtend(uint32(v), im.BitsStored, 16))
			}
			return int64(v & mask(im.BitsStored))
		default:
			v := binary.LittleEndian.Uint32(frame[4*i:])
			if im.PixelRepresentation == 1 {
				return int64(signExtend(v, im.BitsStored, 32))
			}
			return int64(v & uint32(mask(im.BitsStored)))
		}
	}
	spp := im.SamplesPerPixel
	var value func(p int) int64
	switch {
	case spp == 3:
		ybr := len(im.Photometric) >= 3 && im.Photometric[:3] == "YBR"
		value = func(p int) int64 {
			var r, g, b int64
			if im.PlanarConfiguration == 1 {
				r, g, b = sample(p), sample(n+p), sample(2*n+p)
			} else {
				r, g, b = sample(3*p), sample(3*p+1), sample(3*p+2)
			}
			if ybr {
				return r // Y
			}
			return (299*r + 587*g + 114*b) / 1000
		}
	case spp == 1 && im.Photometric == "PALETTE COLOR":
		if pal == nil || len(pal.Red) == 0 || len(pal.Red) != len(pal.Green) || len(pal.Red) != len(pal.Bl) {
			return nil, fmt.Errorf("burnin: palette colour image without usable lookup tables")
		}
		last := len(pal.Red) - 1
		value = func(p int) int64 {
			k := max(0, min(int(sample(p))-pal.First, last))
			return (299*int64(pal.Red[k]) + 587*int64(pal.Green[k]) + 114*int64(pal.Bl[k])) / 1000
		}
	case spp == 1:
		value = sample
	default:
		return nil, fmt.Errorf("burnin: %d samples per pixel", spp)
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	inv := im.Photometric == "MONOCHROME1"
	if gray16Frame(im) {
		// The common case (CT, MR, XA: one 16-bit sample), read without
		// the per-sample closure: every CT slice is screened.
		fastGray16(g, frame[:2*n], im, inv)
		return g, nil
	}
	lo, hi := value(0), value(0)
	for p := 0; p < n; p++ {
		v := value(p)
		lo, hi = min(lo, v), max(hi, v)
	}
	span := hi - lo
	for p := 0; p < n; p++ {
		var y uint8
		if span > 0 {
			y = uint8((value(p) - lo) * 255 / span)
		}
		if inv {
			y = 255 - y
		}
		g.Pix[p] = y
	}
	return g, nil
}

// gray16Frame reports whether frames of im have one 16-bit grey sample a
// pixel: Luminance's fast path.
func gray16Frame(im codec.Image) bool {
	return im.SamplesPerPixel == 1 && im.Photometric != "PALETTE COLOR" && im.BitsAllocated == 16
}

// fastGray16 is Luminance for one 16-bit sample per pixel.
func fastGray16(g *image.Gray, frame []byte, im codec.Image, inv bool) {
	t := newGray16(frame, im, inv)
	w := im.Columns
	for y := 0; y < im.Rows; y++ {
		t.row(frame, y, w, g.Pix[y*g.Stride:y*g.Stride+w])
	}
}

// gray16 maps one 16-bit sample per pixel to grey, the frame's own range
// stretched to 0..255: made with one pass over the samples for the range;
// rows are then mapped through a table of the range's levels (exact
// division), each when it is needed.
type gray16 struct {
	shift uint   // bits above Bits Stored
	off   uint16 // 0x8000 for signed samples: unsigned order
	lo    uint16 // lowest sample, in unsigned order
	lut   []uint8
	flat  uint8 // every pixel's grey when the range is one value
}

// keyOrder is the gray16 of im's sample layout, before its range.
func keyOrder(im codec.Image) gray16 {
	bits := im.BitsStored
	if bits <= 0 || bits > 16 {
		bits = 16
	}
	t := gray16{shift: uint(16 - bits)}
	if im.PixelRepresentation == 1 {
		t.off = 0x8000
	}
	return t
}

func newGray16(frame []byte, im codec.Image, inv bool) gray16 {
	t := keyOrder(im)
	frame = frame[:im.FrameBytes()]
	lo, hi := t.rangeOf(frame)
	var flip uint8
	if inv {
		flip = 255
	}
	t.lo, t.flat = lo, flip
	span := int(hi) - int(lo)
	if span <= 0 {
		return t
	}
	t.lut = make([]uint8, span+1)
	for k := range t.lut {
		t.lut[k] = uint8(k*255/span) ^ flip
	}
	return t
}

// rangeOf is the lowest and highest key of the samples b (0xFFFF and 0
// for none): sixteen at a time by the vector kernel where there is one.
func (t *gray16) rangeOf(b []byte) (lo, hi uint16) {
	lo, hi = 0xFFFF, 0
	if simdRows() {
		shift, signed := t.kernelLayout()
		l, h := keyRange16(b, shift, signed)
		lo, hi = uint16(l), uint16(h)
		b = b[len(b)&^31:]
	}
	if t.shift == 0 {
		// Sixteen bits stored: the common CT case, one XOR a sample.
		l, h := range16(b, t.off)
		return min(lo, l), max(hi, h)
	}
	for i := 0; i+1 < len(b); i += 2 {
		v := t.key(b[i:])
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// kernelLayout is the key's layout as the vector kernels take it: the
// bits above Bits Stored, and 1 for signed samples.
func (t *gray16) kernelLayout() (shift, signed uint64) {
	return uint64(t.shift & 15), uint64(t.off >> 15)
}

// range16 is the lowest and highest of 16-bit samples XOR off.
func range16(f []byte, off uint16) (lo, hi uint16) {
	// Two samples a step into two pairs of bounds: each bound's chain of
	// compares is half as long, and the loop runs at the loads' speed.
	lo0, lo1, hi0, hi1 := uint16(0xFFFF), uint16(0xFFFF), uint16(0), uint16(0)
	i := 0
	for ; i+3 < len(f); i += 4 {
		q := binary.LittleEndian.Uint32(f[i:])
		a, b := uint16(q)^off, uint16(q>>16)^off
		lo0, hi0 = min(lo0, a), max(hi0, a)
		lo1, hi1 = min(lo1, b), max(hi1, b)
	}
	for ; i+1 < len(f); i += 2 {
		v := binary.LittleEndian.Uint16(f[i:]) ^ off
		lo0, hi0 = min(lo0, v), max(hi0, v)
	}
	return min(lo0, lo1), max(hi0, hi1)
}

// key is the sample at b in unsigned order: the bits above Bits Stored
// dropped, signed values sign-extended and biased by off.
func (t *gray16) key(b []byte) uint16 {
	u := binary.LittleEndian.Uint16(b)
	shift := t.shift & 15 // never 16 or more: spares the compiler's check
	if t.off != 0 {
		return uint16(int16(u<<shift)>>shift) ^ t.off
	}
	return u << shift >> shift
}

// row writes row y of the frame (w pixels a row) into dst.
func (t *gray16) row(frame []byte, y, w int, dst []uint8) {
	src := frame[2*y*w : 2*(y+1)*w]
	if t.lut == nil {
		for x := range dst[:w] {
			dst[x] = t.flat
		}
		return
	}
	// Locals, not fields: the stores to dst would make the compiler
	// reload them every pixel.
	lut, lo, off, shift := t.lut, t.lo, t.off, t.shift&15
	if shift == 0 {
		// Four samples a load: a quarter of the bounds checks.
		x := 0
		for ; x+4 <= w; x += 4 {
			q := binary.LittleEndian.Uint64(src[2*x:])
			d := dst[x : x+4 : x+4]
			d[0] = lut[uint16(q)^off-lo]
			d[1] = lut[uint16(q>>16)^off-lo]
			d[2] = lut[uint16(q>>32)^off-lo]
			d[3] = lut[uint16(q>>48)^off-lo]
		}
		for ; x < w; x++ {
			dst[x] = lut[binary.LittleEndian.Uint16(src[2*x:])^off-lo]
		}
		return
	}
	for x := range dst[:w] {
		u := binary.LittleEndian.Uint16(src[2*x:])
		if off != 0 {
			u = uint16(int16(u<<shift)>>shift) ^ off
		} else {
			u = u << shift >> shift
		}
		dst[x] = lut[u-lo]
	}
}

// screenGray16 maps one 16-bit sample per pixel to grey for the screen of
// a CT or MR slice, as gray16 does (the frame's own range stretched to
// 0..255): through a table that spans every 16-bit key, so that mapping
// a sample is one lookup, kept from one frame to the next.
type screenGray16 struct {
	gray16
	table *screenTable
}

// screenTable is the grey of every 16-bit key for one range, kept from
// one frame to the next: the slices of a series often share their range
// (padding and saturation levels), and then share the table.
type screenTable struct {
	grey   [1 << 16]uint8
	lo, hi uint16
	flip   uint8
	made   bool
}

// set makes the table for the range lo..hi (flip: MONOCHROME1's
// inversion) unless it is that already. Keys beyond the range (none, for
// the range of the frame mapped) are black below it, white above.
func (t *screenTable) set(lo, hi uint16, flip uint8) {
	if t.made && t.lo == lo && t.hi == hi && t.flip == flip {
		return
	}
	t.lo, t.hi, t.flip, t.made = lo, hi, flip, true
	g := &t.grey
	// Below the range black, above it white; within it the exact
	// stretch (k*255/span), made without a division a level.
	clear(g[:lo])
	span := int(hi) - int(lo)
	q, r := 0, 0
	for k := 0; k <= span; k++ {
		g[int(lo)+k] = uint8(q)
		if span > 0 {
			for r += 255; r >= span; r -= span {
				q++
			}
		}
	}
	for k := int(hi) + 1; k < len(g); k++ {
		g[k] = 255
	}
	if flip != 0 {
		for k := range g {
			g[k] ^= flip
		}
	}
}

// newScreenGray16 prepares the mapping of frame with its range, through
// table (which it sets). The range is the whole frame's: one taken from
// some rows stretched MR anatomy until the screen took it for text.
func newScreenGray16(frame []byte, im codec.Image, inv bool, table *screenTable) screenGray16 {
	t := screenGray16{gray16: keyOrder(im), table: table}
	lo, hi := t.rangeOf(frame[:im.FrameBytes()])
	var flip uint8
	if inv {
		flip = 255
	}
	if lo > hi { // no sample (cannot happen for a checked geometry)
		lo, hi = 0, 0
	}
	table.set(lo, hi, flip)
	return t
}

// row writes row y of the frame (w pixels a row) into dst.
func (t *screenGray16) row(frame []byte, y, w int, dst []uint8) {
	src := frame[2*y*w : 2*(y+1)*w]
	table := &t.table.grey
	if t.shift&15 == 0 {
		off := t.off
		x := 0
		for ; x+4 <= w; x += 4 {
			q := binary.LittleEndian.Uint64(src[2*x:])
			d := dst[x : x+4 : x+4]
			d[0] = table[uint16(q)^off]
			d[1] = table[uint16(q>>16)^off]
			d[2] = table[uint16(q>>32)^off]
			d[3] = table[uint16(q>>48)^off]
		}
		for ; x < w; x++ {
			dst[x] = table[binary.LittleEndian.Uint16(src[2*x:])^off]
		}
		return
	}
	for x := range dst[:w] {
		dst[x] = table[t.key(src[2*x:])]
	}
}

// frameRows is textfind.Rows over a 16-bit frame mapped by t, for the
// screen's gate to map only the stretches of its rows that are not flat:
// found sixteen samples at a time by a vector kernel (simdRows).
type frameRows struct {
	t     *screenGray16
	frame []byte
	w     int
	// head is a row's first block behind sixteen copies of its first
	// sample: the kernel reads the samples before a block.
	head [64]byte
}

func (r *frameRows) Row(y int, dst []uint8) { r.t.row(r.frame, y, r.w, dst) }

func (r *frameRows) Part(y, x0, x1 int, dst []uint8) {
	if x0 < x1 {
		r.t.row(r.frame[2*(y*r.w+x0):], 0, x1-x0, dst[x0:x1])
	}
}

// Busy flags the blocks of sixteen samples holding one that differs from
// the sample before it by more than lim: grey levels differ by at most
// one more than the samples' difference times 255/span (the stretch
// rounds down; clamping only narrows it), so samples within lim of each
// other are within flat-1 levels.
func (r *frameRows) Busy(y, flat int, dst [][2]int) [][2]int {
	span := int(r.t.table.hi) - int(r.t.table.lo)
	lim := max(((flat-1)*span-1)/255, 0)
	src := r.frame[2*y*r.w : 2*(y+1)*r.w]
	t := &r.t.gray16
	shift, signed := t.kernelLayout()
	add := func(x0, x1 int) {
		if n := len(dst); n > 0 && dst[n-1][1] == x0 {
			dst[n-1][1] = x1
		} else {
			dst = append(dst, [2]int{x0, x1})
		}
	}
	// A last partial block (or a row narrower than one), a sample at a
	// time.
	scalar := func(x0, x1 int) {
		for x := max(x0, 1); x < x1; x++ {
			if d := int(t.key(src[2*x:])) - int(t.key(src[2*x-2:])); d > lim || -d > lim {
				add(x0, x1)
				return
			}
		}
	}
	whole := r.w / 16
	for c := 0; c < whole; c += 64 {
		first := uint64(0)
		if c == 0 {
			h := r.head[:]
			for k := 0; k < 32; k += 2 {
				copy(h[k:k+2], src[:2])
			}
			copy(h[32:], src[:32])
			if busyBlocks16(h, 1, uint64(lim), shift, signed) != 0 {
				add(0, 16)
			}
			first = 1
		}
		n := min(64, whole-c)
		m := busyBlocks16(src[32*c:32*(c+n)], first, uint64(lim), shift, signed)
		for m != 0 {
			b := bits.TrailingZeros64(m)
			m &= m - 1
			add(16*(c+b), 16*(c+b)+16)
		}
	}
	if whole == 0 {
		scalar(0, r.w)
	} else if tail := 16 * whole; tail < r.w {
		scalar(tail, r.w)
	}
	return dst
}

func mask(bits int) uint16 {
	if bits <= 0 || bits >= 16 {
		return 0xFFFF
	}
	return uint16(1)<<bits - 1
}

func signExtend(v uint32, bits, width int) int32 {
	if bits <= 0 || bits > width {
		bits = width
	}
	shift := 32 - bits
	return int32(v<<shift) >> shift
}
