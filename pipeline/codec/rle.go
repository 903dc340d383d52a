package codec

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, then
// one PackBits segment per byte of each sample, most significant byte
// first; a segment is one plane of Rows*Columns bytes.

// DecodeRLE decodes one RLE frame into dst in the native layout of
// Output(in): samples interleaved (whatever in's Planar Configuration
// says: RLE keeps each sample in its own segments), little endian.
func DecodeRLE(dst, src []byte, in Image) error {
	if in.BitsAllocated == 1 {
		return fmt.Errorf("%w: 1-bit RLE", ErrGeometry)
	}
	bps := in.BitsAllocated / 8
	nseg := in.SamplesPerPixel * bps
	plane := in.Rows * in.Columns
	if len(dst) != plane*nseg {
		return fmt.Errorf("%w: RLE destination size", ErrGeometry)
	}
	if len(src) < 64 {
		return fmt.Errorf("%w: RLE frame of %d bytes, shorter than its header", ErrCorrupt, len(src))
	}
	if n := int(binary.LittleEndian.Uint32(src)); n != nseg || nseg > 15 {
		return fmt.Errorf("%w: %d RLE segments, the geometry needs %d", ErrCorrupt, n, nseg)
	}
	seg := make([]byte, plane)
	for s := 0; s < nseg; s++ {
		start := int64(binary.LittleEndian.Uint32(src[4+4*s:]))
		end := int64(len(src))
		if s+1 < nseg {
			end = int64(binary.LittleEndian.Uint32(src[8+4*s:]))
		}
		if start < 64 || end < start || end > int64(len(src)) {
			return fmt.Errorf("%w: RLE segment %d offsets", ErrCorrupt, s+1)
		}
		if err := UnpackBits(seg, src[start:end]); err != nil {
			return fmt.Errorf("%w: RLE segment %d: %v", ErrCorrupt, s+1, err)
		}
		sample, byteMSB := s/bps, s%bps
		b := bps - 1 - byteMSB // little endian position of this byte
		stride := in.SamplesPerPixel * bps
		base := sample*bps + b
		for p, v := range seg {
			dst[base+p*stride] = v
		}
	}
	return nil
}

// EncodeRLE appends the RLE Lossless encoding of one native frame (in's
// layout) to dst.
func EncodeRLE(dst, frame []byte, in Image) ([]byte, error) {
	bps := in.BitsAllocated / 8
	nseg := in.SamplesPerPixel * bps
	plane := in.Rows * in.Columns
	if nseg > 15 || len(frame) != plane*nseg {
		return nil, fmt.Errorf("%w: RLE holds at most 15 segments", ErrGeometry)
	}
	start := len(dst)
	dst = append(dst, make([]byte, 64)...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(nseg))
	seg := make([]byte, plane)
	for s := 0; s < nseg; s++ {
		sample, b := s/bps, bps-1-s%bps
		if in.PlanarConfiguration == 1 && in.SamplesPerPixel > 1 {
			base := sample * plane * bps
			for p := range seg {
				seg[p] = frame[base+p*bps+b]
			}
		} else {
			stride := in.SamplesPerPixel * bps
			base := sample*bps + b
			for p := range seg {
				seg[p] = frame[base+p*stride]
			}
		}
		binary.LittleEndian.PutUint32(dst[start+4+4*s:], uint32(len(dst)-start))
		dst = PackBits(dst, seg, in.Columns)
		if (len(dst)-start)%2 == 1 {
			dst = append(dst, 0) // segments are even: a pad byte
		}
	}
	return dst, nil
}

// UnpackBits decodes a PackBits segment into exactly len(dst) bytes; what
// follows (padding) is ignored.
func UnpackBits(dst, src []byte) error {
	n := 0
	for i := 0; n < len(dst); {
		if i >= len(src) {
			return fmt.Errorf("ends after %d of %d bytes", n, len(dst))
		}
		c := int8(src[i])
		i++
		switch {
		case c >= 0: // c+1 literal bytes
			k := int(c) + 1
			if i+k > len(src) || n+k > len(dst) {
				return errors.New("literal run beyond the segment")
			}
			copy(dst[n:], src[i:i+k])
			n, i = n+k, i+k
		case c != -128: // 1-c copies of the next byte
			k := 1 - int(c)
			if i >= len(src) || n+k > len(dst) {
				return errors.New("replicate run beyond the segment")
			}
			b := src[i]
			i++
			for j := 0; j < k; j++ {
				dst[n+j] = b
			}
			n += k
		}
	}
	return nil
}

// PackBits appends the PackBits encoding of src to dst, row by row (a run
// never crosses the end of a row, as PS3.5 G.3.1 recommends).
func PackBits(dst, src []byte, rowLen int) []byte {
	for row := 0; row < len(src); row += rowLen {
		dst = packRow(dst, src[row:min(row+rowLen, len(src))])
	}
	return dst
}

func packRow(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		// A run of 3 or more equal bytes is replicated.
		j := i + 1
		for j < len(s) && j-i < 128 && s[j] == s[i] {
			j++
		}
		if j-i >= 3 {
			dst = append(dst, byte(int8(1-(j-i))), s[i])
			i = j
			continue
		}
		// Literal bytes up to the next run of 3 (or 128 bytes).
		k := i
		for k < len(s) && k-i < 128 {
			if k+2 < len(s) && s[k] == s[k+1] && s[k] == s[k+2] {
				break
			}
			k++
		}
		dst = append(dst, byte(k-i-1))
		dst = append(dst, s[i:k]...)
		i = k
	}
	return dst
}

// decodeDeflatedFrame inflates one frame of Deflated Image Frame
// Compression (a raw deflate stream of the native frame), never beyond
// the frame's size.
func decodeDeflatedFrame(dst, src []byte, in Image) error {
	fr := flate.NewReader(bytes.NewReader(src))
	defer fr.Close()
	out := dst
	if in.BitsAllocated == 1 {
		out = make([]byte, (len(dst)+7)/8)
	}
	if _, err := io.ReadFull(fr, out); err != nil {
		return fmt.Errorf("%w: deflated frame: %v", ErrCorrupt, errText(err))
	}
	// More than the frame (a deflate bomb, or the wrong geometry): the
	// surplus is never inflated past one byte.
	var one [1]byte
	if n, _ := fr.Read(one[:]); n > 0 {
		return fmt.Errorf("%w: deflated frame inflates beyond its %d bytes", ErrCorrupt, len(out))
	}
	if in.BitsAllocated == 1 {
		unpackBitsLSB(dst, out, 0)
	}
	return nil
}

// errText keeps an error's cause without anything of the data.
func errText(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated"
	}
	var ce flate.CorruptInputError
	if errors.As(err, &ce) {
		return "corrupt at byte " + fmt.Sprint(int64(ce))
	}
	return "malformed"
}
