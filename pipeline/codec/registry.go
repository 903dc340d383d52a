package codec

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Codec is one decoder for one transfer syntax, with the implementation's
// name for reports.
type Codec struct {
	Syntax string // transfer syntax UID
	Impl   string // "libjpeg-turbo 2.1.5", "Go (this package)"
	Dec    Decoder
}

// Set is the decoders a build has, by transfer syntax.
type Set struct {
	bySyntax map[string]Codec
	encoders map[string]Encoder
	// inProcess: the C decoders themselves, which the worker processes
	// run; pool: those workers.
	inProcess map[string]Decoder
	pool      *workerPool
	// Build names the build ("pure Go", "cgo codecs").
	Build string
}

// NewSet builds a set from codecs (later ones win).
func NewSet(build string, cs ...Codec) *Set {
	s := &Set{bySyntax: map[string]Codec{}, encoders: pureEncoders(), Build: build}
	for _, c := range cs {
		s.bySyntax[c.Syntax] = c
	}
	return s
}

// Default is this build's set: the pure-Go decoders, and the C libraries'
// in a build with cgo and the tag cgocodecs.
func Default() *Set { return buildSet() }

// pureCodecs are the decoders every build has.
func pureCodecs() []Codec {
	native := DecoderFunc(decodeNative)
	var cs []Codec
	for _, ts := range []string{ImplicitVRLE, ExplicitVRLE, DeflatedLE, ExplicitVRBE, papyrusImplicit} {
		cs = append(cs, Codec{ts, "Go (native)", native})
	}
	return append(cs,
		Codec{RLELossless, "Go (PS3.5 Annex G)", DecoderFunc(DecodeRLE)},
		Codec{DeflatedFrames, "Go (compress/flate)", DecoderFunc(decodeDeflatedFrame)},
	)
}

// Lookup returns the decoder of a transfer syntax.
func (s *Set) Lookup(ts string) (Codec, bool) {
	c, ok := s.bySyntax[ts]
	return c, ok
}

// Describe lists the set, one "syntax name (UID): implementation" a line.
func (s *Set) Describe() []string {
	var out []string
	for ts, c := range s.bySyntax {
		name := ts
		if syn, ok := dicomraw.LookupSyntax(ts); ok {
			name = syn.Name + " (" + ts + ")"
		}
		out = append(out, name+": "+c.Impl)
	}
	sort.Strings(out)
	return out
}

// Summary is one line: the build and the families it decodes.
func (s *Set) Summary() string {
	fams := map[string]bool{}
	for ts := range s.bySyntax {
		switch family(ts) {
		case famNative:
			fams["native"] = true
		case famRLE:
			fams["RLE"] = true
		case famDeflate:
			fams["deflated frames"] = true
		case famJPEG:
			fams["JPEG"] = true
		case famJLS:
			fams["JPEG-LS"] = true
		case famJ2K:
			if strings.HasPrefix(ts, "1.2.840.10008.1.2.4.20") {
				fams["HTJ2K"] = true
			} else {
				fams["JPEG 2000"] = true
			}
		}
	}
	var names []string
	for _, n := range []string{"native", "RLE", "deflated frames", "JPEG", "JPEG-LS", "JPEG 2000", "HTJ2K"} {
		if fams[n] {
			names = append(names, n)
		}
	}
	return fmt.Sprintf("%s build: decodes %s", s.Build, strings.Join(names, ", "))
}

// Frames decodes the frames of one Source, one at a time.
type Frames struct {
	src *Source
	out Image
	c   Codec
	buf []byte // one encoded frame
	// verbatim is the frame last read straight from the source, whole
	// and unchanged (-1: none).
	verbatim int
}

// Open prepares decoding src. It fails when src's geometry cannot be
// decoded or the build has no decoder for its syntax.
func (s *Set) Open(src *Source) (*Frames, error) {
	if err := src.Image.Check(); err != nil {
		return nil, err
	}
	c, ok := s.Lookup(src.Image.Syntax)
	if !ok {
		name := src.Image.Syntax
		if syn, ok := dicomraw.LookupSyntax(name); ok {
			name = syn.Name
		}
		return nil, fmt.Errorf("%w: %s (%s)", ErrUnsupported, name, s.Build)
	}
	if isEncapsulated(src.Image.Syntax) && len(src.frames) != src.Image.Frames {
		return nil, fmt.Errorf("%w: %d encoded frames for %d", ErrCorrupt, len(src.frames), src.Image.Frames)
	}
	return &Frames{src: src, out: Output(src.Image), c: c, verbatim: -1}, nil
}

// Output is the geometry of the decoded frames.
func (f *Frames) Output() Image { return f.out }

// Codec is the decoder used.
func (f *Frames) Codec() Codec { return f.c }

// Verbatim reports whether the last Frame call read frame i straight
// from the source, whole and unchanged (native little-endian data), and
// where in the source it lies: its bytes can then serve a copy of the
// source's range [off, off+len(dst)).
func (f *Frames) Verbatim(i int) (off int64, ok bool) {
	if i < 0 || f.verbatim != i {
		return 0, false
	}
	return f.src.Pixels.ValueOffset + int64(i)*int64(f.src.Image.FrameBytes()), true
}

// Frame decodes frame i (0-based) into dst, which must hold
// Output().FrameBytes() bytes.
func (f *Frames) Frame(i int, dst []byte) (err error) {
	if len(dst) != f.out.FrameBytes() {
		return fmt.Errorf("codec: destination of %d bytes for a frame of %d", len(dst), f.out.FrameBytes())
	}
	if i < 0 || i >= f.src.Image.Frames {
		return fmt.Errorf("%w: frame %d of %d", ErrCorrupt, i+1, f.src.Image.Frames)
	}
	// A decoder's bug on hostile input is this file's failure, not the
	// process's: a Go panic becomes an error (C libraries are guarded by
	// their header checks and their own error paths).
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: frame %d: decoder failed", ErrCorrupt, i+1)
		}
	}()
	f.verbatim = -1
	var src []byte
	if isEncapsulated(f.src.Image.Syntax) {
		if f.buf, err = f.src.FrameData(i, f.buf); err != nil {
			return err
		}
		src = f.buf
	} else if f.src.Image.BitsAllocated == 1 {
		return f.src.bitFrame(i, dst)
	} else {
		fb := int64(f.src.Image.FrameBytes())
		if int64(len(dst)) == fb {
			// Native frames are read straight into dst (and swapped there
			// when big endian): no copy through buf, the cost every CT
			// slice's screening would otherwise pay twice.
			n, err := f.src.r.ReadAt(dst, f.src.Pixels.ValueOffset+int64(i)*fb)
			if err != nil && err != io.EOF {
				return fmt.Errorf("%w: frame %d unreadable", ErrCorrupt, i+1)
			}
			// A frame cut short by the end of the file reads as zeros
			// there, never as what dst held before (callers reuse it).
			clear(dst[n:])
			if n == len(dst) && !f.src.Image.BigEndian {
				f.verbatim = i
			}
			swapNative(dst, f.src.Image)
			return nil
		}
		if cap(f.buf) < int(fb) {
			f.buf = make([]byte, fb)
		}
		src = f.buf[:fb]
		n, err := f.src.r.ReadAt(src, f.src.Pixels.ValueOffset+int64(i)*fb)
		if err != nil && err != io.EOF {
			return fmt.Errorf("%w: frame %d unreadable", ErrCorrupt, i+1)
		}
		clear(src[n:])
	}
	if err := f.c.Dec.Decode(dst, src, f.src.Image); err != nil {
		return fmt.Errorf("frame %d: %w", i+1, err)
	}
	return nil
}

// bitFrame unpacks frame i of native 1-bit data: frames follow each other
// bit by bit, least significant bit first (PS3.5 8.1.1, D.2).
func (s *Source) bitFrame(i int, dst []byte) error {
	n := int64(s.Image.Rows) * int64(s.Image.Columns)
	first := int64(i) * n
	b := make([]byte, (first+n+7)/8-first/8)
	if _, err := s.r.ReadAt(b, s.Pixels.ValueOffset+first/8); err != nil && err != io.EOF {
		return fmt.Errorf("%w: frame %d unreadable", ErrCorrupt, i+1)
	}
	unpackBitsLSB(dst, b, int(first%8))
	return nil
}

// unpackBitsLSB writes len(dst) bits of src, from bit skip on, as bytes.
func unpackBitsLSB(dst, src []byte, skip int) {
	for p := range dst {
		bit := p + skip
		dst[p] = src[bit>>3] >> (bit & 7) & 1
	}
}

// decodeNative copies a native frame, swapping bytes of big endian data.
func decodeNative(dst, src []byte, in Image) error {
	if len(src) < len(dst) {
		return fmt.Errorf("%w: native frame short", ErrCorrupt)
	}
	copy(dst, src)
	swapNative(dst, in)
	return nil
}

// swapNative makes big endian samples little endian, in place.
func swapNative(dst []byte, in Image) {
	if in.BigEndian {
		switch in.BitsAllocated {
		case 16:
			for i := 0; i+1 < len(dst); i += 2 {
				dst[i], dst[i+1] = dst[i+1], dst[i]
			}
		case 32:
			for i := 0; i+3 < len(dst); i += 4 {
				dst[i], dst[i+1], dst[i+2], dst[i+3] = dst[i+3], dst[i+2], dst[i+1], dst[i]
			}
		}
	}
}
