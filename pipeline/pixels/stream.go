package pixels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
)

// MaskNative copies native pixel data of length bytes from src to dst,
// one frame at a time, with the mask applied to every frame. Bytes
// after the last frame (the padding to an even length) are copied as
// they are. Pixel data shorter than its frames is refused.
func MaskNative(dst io.Writer, src io.Reader, length int64, g Geometry, m Mask) error {
	if err := g.Check(); err != nil {
		return err
	}
	fb := int64(g.FrameBytes())
	if length < fb*int64(g.Frames) {
		return fmt.Errorf("%w: %d bytes of pixel data for %d frames of %d", ErrGeometry, length, g.Frames, fb)
	}
	frame := make([]byte, fb)
	for f := 0; f < g.Frames; f++ {
		if _, err := io.ReadFull(src, frame); err != nil {
			return fmt.Errorf("read frame %d: %w", f+1, err)
		}
		g.Apply(frame, m)
		if _, err := dst.Write(frame); err != nil {
			return err
		}
	}
	_, err := io.CopyN(dst, src, length-fb*int64(g.Frames))
	return err
}

// ErrRLE is returned for RLE data that does not decode to its geometry.
var ErrRLE = errors.New("malformed RLE frame")

// MaskRLEFrame decodes one RLE Lossless frame (PS3.5 Annex G: a 64-byte
// header, then one PackBits segment per byte of each sample, most
// significant first), zeroes the rectangles and encodes it again.
func MaskRLEFrame(frame []byte, g Geometry, rects []Rect) ([]byte, error) {
	if err := g.Check(); err != nil {
		return nil, err
	}
	bps := g.BitsAllocated / 8
	nseg := g.SamplesPerPixel * bps
	if len(frame) < 64 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than its header", ErrRLE, len(frame))
	}
	if n := int(binary.LittleEndian.Uint32(frame)); n != nseg || nseg > 15 {
		return nil, fmt.Errorf("%w: %d segments, the geometry needs %d", ErrRLE, n, nseg)
	}
	plane := g.Rows * g.Columns
	rects = g.clip(rects)
	out := make([]byte, 64, len(frame))
	binary.LittleEndian.PutUint32(out, uint32(nseg))
	buf := make([]byte, plane)
	for s := 0; s < nseg; s++ {
		start := int(binary.LittleEndian.Uint32(frame[4+4*s:]))
		end := len(frame)
		if s+1 < nseg {
			end = int(binary.LittleEndian.Uint32(frame[8+4*s:]))
		}
		if start < 64 || end < start || end > len(frame) {
			return nil, fmt.Errorf("%w: segment %d offsets", ErrRLE, s+1)
		}
		if err := codec.UnpackBits(buf, frame[start:end]); err != nil {
			return nil, fmt.Errorf("%w: segment %d: %v", ErrRLE, s+1, err)
		}
		for _, r := range rects {
			for y := r.Y; y < r.Y+r.H; y++ {
				clear(buf[y*g.Columns+r.X : y*g.Columns+r.X+r.W])
			}
		}
		binary.LittleEndian.PutUint32(out[4+4*s:], uint32(len(out)))
		out = codec.PackBits(out, buf, g.Columns)
		if len(out)%2 == 1 {
			out = append(out, 0) // segments are even: a pad byte
		}
	}
	return out, nil
}
