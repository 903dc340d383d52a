package burnin

import (
	"encoding/binary"
	"fmt"
	"image"

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
	if spp == 1 && im.Photometric != "PALETTE COLOR" && bps == 2 {
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

// fastGray16 is Luminance for one 16-bit sample per pixel: the samples
// are read once into int32 (sign-extended or masked to Bits Stored),
// then stretched in fixed point.
func fastGray16(g *image.Gray, frame []byte, im codec.Image, inv bool) {
	n := len(frame) / 2
	bits := im.BitsStored
	if bits <= 0 || bits > 16 {
		bits = 16
	}
	vals := make([]int32, n)
	if im.PixelRepresentation == 1 {
		shift := uint(32 - bits)
		for i := range vals {
			v := uint32(frame[2*i]) | uint32(frame[2*i+1])<<8
			vals[i] = int32(v<<shift) >> shift
		}
	} else {
		m := uint32(mask(bits))
		for i := range vals {
			vals[i] = int32((uint32(frame[2*i]) | uint32(frame[2*i+1])<<8) & m)
		}
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	span := uint64(hi - lo)
	var flip uint8
	if inv {
		flip = 255
	}
	if span == 0 {
		for i := range g.Pix[:n] {
			g.Pix[i] = flip
		}
		return
	}
	// (v-lo)*255/span in fixed point: a multiply and a shift, not a
	// division, per pixel (at most one grey level from the division's).
	mul := (255<<32 + span - 1) / span
	pix := g.Pix[:n]
	for i, v := range vals {
		pix[i] = uint8(min((uint64(v-lo)*mul)>>32, 255)) ^ flip
	}
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
