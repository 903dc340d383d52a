//go:build cgocodecs && cgo

package codec

import (
	"bytes"
	"fmt"

	"github.com/dicomdeid/dicomdeid/pipeline/codec/charls"
	"github.com/dicomdeid/dicomdeid/pipeline/codec/ijg"
	"github.com/dicomdeid/dicomdeid/pipeline/codec/openjpeg"
)

// CGO tells that this build has the C libraries' decoders.
const CGO = true

func buildSet() *Set {
	jpeg := Codec{Impl: ijg.Version(), Dec: DecoderFunc(decodeJPEG)}
	jls := Codec{Impl: charls.Version(), Dec: DecoderFunc(decodeJLS)}
	j2k := Codec{Impl: openjpeg.Version(), Dec: DecoderFunc(decodeJ2K)}
	cs := pureCodecs()
	// The C decoders run in worker processes (isolate.go): a crash or a
	// stuck decoder costs one frame, not the service.
	pool := &workerPool{}
	inProcess := map[string]Decoder{}
	checkJPEG := func(src []byte, in Image) error { return checkHeader(src, in, JPEGHeader) }
	checkJ2K := func(src []byte, in Image) error { return checkHeader(src, in, J2KHeader) }
	for ts, c := range map[string]Codec{
		JPEGBaseline: jpeg, JPEGExtended: jpeg, JPEGLossless: jpeg, JPEGLosslessSV1: jpeg,
		JPEGLSLossless: jls, JPEGLSNear: jls,
		J2KLossless: j2k, J2K: j2k, HTJ2KLossless: j2k, HTJ2KLosslessRP: j2k, HTJ2K: j2k,
	} {
		inProcess[ts] = c.Dec
		check := checkJPEG
		if family(ts) == famJ2K {
			check = checkJ2K
		}
		c.Syntax, c.Impl, c.Dec = ts, c.Impl+", in a worker process", isolated{pool: pool, check: check}
		cs = append(cs, c)
	}
	set := NewSet("cgo codecs", cs...)
	set.inProcess = inProcess
	set.pool = pool
	set.encoders[JPEGLSLossless] = EncoderFunc(encodeJLS)
	return set
}

// checkHeader reads a frame's codestream header and checks it against
// the geometry (the worker checks again before decoding).
func checkHeader(src []byte, in Image, hdr func([]byte) (StreamInfo, error)) error {
	si, err := hdr(src)
	if err != nil {
		return err
	}
	return CheckStream(si, in)
}

// maxScans bounds the scans of one JPEG frame: a progressive stream of
// thousands of tiny scans costs minutes of CPU for one small image.
const maxScans = 256

func outBytes(in Image) (int, error) {
	switch in.BitsAllocated {
	case 8, 16:
		return in.BitsAllocated / 8, nil
	}
	return 0, fmt.Errorf("%w: %d bits allocated in a compressed frame", ErrGeometry, in.BitsAllocated)
}

func decodeJPEG(dst, src []byte, in Image) error {
	si, err := JPEGHeader(src)
	if err != nil {
		return err
	}
	if err := CheckStream(si, in); err != nil {
		return err
	}
	ob, err := outBytes(in)
	if err != nil {
		return err
	}
	if si.Marker == 0xF7 {
		return fmt.Errorf("%w: a JPEG-LS codestream in a JPEG syntax", ErrCorrupt)
	}
	if bytes.Count(src, []byte{0xFF, 0xDA}) > maxScans {
		return fmt.Errorf("%w: more than %d JPEG scans", ErrCorrupt, maxScans)
	}
	var lib ijg.Library
	switch {
	case si.Marker >= 0xC9: // arithmetic coding, hierarchical: not in DICOM's JPEG syntaxes here
		return fmt.Errorf("%w: JPEG process of marker %X", ErrUnsupported, si.Marker)
	case si.Lossy && si.Precision == 8:
		lib = ijg.Turbo
	case si.Lossy && si.Precision == 12:
		lib = ijg.IJG12
	case si.Lossy:
		return fmt.Errorf("%w: DCT JPEG of precision %d", ErrCorrupt, si.Precision)
	case si.Subsampled:
		return fmt.Errorf("%w: subsampled lossless JPEG", ErrUnsupported)
	case si.Precision <= 8:
		lib = ijg.IJG8
	case si.Precision <= 12:
		lib = ijg.IJG12
	default:
		lib = ijg.IJG16
	}
	p := ijg.Params{Width: si.Width, Height: si.Height, Components: si.Components, OutBytes: ob, DCT: si.Lossy}
	if err := ijg.Decode(lib, dst, src, p); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

func decodeJLS(dst, src []byte, in Image) error {
	si, err := JPEGHeader(src)
	if err != nil {
		return err
	}
	if si.Marker != 0xF7 {
		return fmt.Errorf("%w: not a JPEG-LS codestream", ErrCorrupt)
	}
	if err := CheckStream(si, in); err != nil {
		return err
	}
	ob, err := outBytes(in)
	if err != nil {
		return err
	}
	sb := 1
	if si.Precision > 8 {
		sb = 2
	}
	out := dst
	if sb != ob {
		out = make([]byte, len(dst)/ob*sb)
	}
	if err := charls.Decode(out, src, si.Width, si.Height, si.Components, sb); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if sb != ob { // 8-bit stream in 16-bit pixels
		for i, v := range out {
			dst[2*i], dst[2*i+1] = v, 0
		}
	}
	return nil
}

func decodeJ2K(dst, src []byte, in Image) error {
	si, err := J2KHeader(src)
	if err != nil {
		return err
	}
	if err := CheckStream(si, in); err != nil {
		return err
	}
	if si.Subsampled {
		return fmt.Errorf("%w: JPEG 2000 with subsampled components", ErrUnsupported)
	}
	ob, err := outBytes(in)
	if err != nil {
		return err
	}
	if err := openjpeg.Decode(dst, src[si.Offset:], si.Width, si.Height, si.Components, ob); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// encodeJLS encodes a frame as lossless JPEG-LS with im.BitsStored bits
// per sample (the caller passes the input codestream's precision, which
// every decoded and masked sample fits in).
func encodeJLS(dst, frame []byte, im Image) ([]byte, error) {
	if im.BitsAllocated != 8 && im.BitsAllocated != 16 || im.BitsStored < 2 || im.BitsStored > im.BitsAllocated {
		return nil, fmt.Errorf("%w: JPEG-LS of %d bits in %d", ErrGeometry, im.BitsStored, im.BitsAllocated)
	}
	if im.BitsAllocated == 16 && im.BitsStored <= 8 { // CharLS takes one byte a sample then
		narrow := make([]byte, len(frame)/2)
		for i := range narrow {
			narrow[i] = frame[2*i]
		}
		frame = narrow
	}
	out, err := charls.Encode(dst, frame, im.Columns, im.Rows, im.SamplesPerPixel, im.BitsStored)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(out)%2 == 1 {
		out = append(out, 0) // items are even; a JPEG-LS decoder stops at EOI
	}
	return out, nil
}
