// Package codec decodes DICOM pixel data, one frame at a time, whatever
// its transfer syntax: native (uncompressed), RLE Lossless, Deflated Image
// Frame Compression, and — in the full build (tag cgocodecs) — JPEG
// (Baseline, Extended 12-bit, Lossless), JPEG-LS, JPEG 2000 and HTJ2K
// through the field's C libraries. A frame is decoded to the native layout
// PS3.5 defines for its decoded Photometric Interpretation (little endian,
// BitsAllocated per sample, the output Image's Planar Configuration).
//
// Codec input is untrusted: every codestream header is checked against
// the DICOM geometry before anything is allocated from it, the output of
// a frame is bounded by that geometry (a decompression bomb cannot grow
// it), and every failure is an error, never a crash.
//
// Decoding every frame of a file, for OCR or any other reader of pixels:
//
//	src, err := codec.FromFile(f) // f from dicomraw.Parse; cheap: no decoding
//	if err != nil { ... }         // no pixel data, or geometry not decodable
//	fmt.Println(src.Image.Frames, src.Image.Rows, src.Image.Columns)
//	fr, err := codec.Default().Open(src)
//	if err != nil { ... }         // no decoder for the syntax in this build
//	out := fr.Output()            // Photometric, samples, bits of the decoded frames
//	buf := make([]byte, out.FrameBytes())
//	for i := 0; i < out.Frames; i++ {
//		if err := fr.Frame(i, buf); err != nil { ... } // hostile or damaged frame
//		// buf holds frame i, native layout of out
//	}
//
// In the full build the C decoders run in worker processes (isolate.go):
// a program that decodes calls codec.ServeWorkerIfAsked() first in main,
// and its test binaries in TestMain.
package codec

import (
	"errors"
	"fmt"
)

// Image is the pixel geometry of a Pixel Data element and how it is
// encoded: what the Image Pixel module says, and the transfer syntax.
type Image struct {
	Rows, Columns   int
	Frames          int
	SamplesPerPixel int
	// BitsAllocated is 8, 16 or 32, or 1 (packed bits, one sample: the
	// decoded frames have one byte, 0 or 1, per pixel).
	BitsAllocated       int
	BitsStored          int
	PixelRepresentation int // 0 unsigned, 1 two's complement
	// PlanarConfiguration 0: samples interleaved per pixel (RGBRGB...);
	// 1: one plane per sample (RR..GG..BB..).
	PlanarConfiguration int
	Photometric         string
	// Syntax is the transfer syntax UID; BigEndian tells native data of
	// Explicit VR Big Endian (decoded frames are always little endian).
	Syntax    string
	BigEndian bool
}

// Errors, by cause. Messages never carry pixel or header values beyond
// the geometry itself.
var (
	// ErrGeometry: the Image Pixel module describes pixels this package
	// cannot decode exactly (or that make no sense).
	ErrGeometry = errors.New("pixel geometry not supported")
	// ErrUnsupported: no decoder for the transfer syntax in this build.
	ErrUnsupported = errors.New("transfer syntax not decodable in this build")
	// ErrCorrupt: a frame's codestream is malformed, truncated, or does
	// not match the DICOM geometry.
	ErrCorrupt = errors.New("frame does not decode as its attributes say")
)

// MaxFrameBytes bounds one decoded frame (1 GiB): larger frames are
// refused before anything is allocated.
const MaxFrameBytes = 1 << 30

// FrameBytes is the size of one native frame (of 1-bit data: unpacked,
// one byte per pixel, as decoded).
func (im Image) FrameBytes() int {
	if im.BitsAllocated == 1 {
		return im.Rows * im.Columns
	}
	return im.Rows * im.Columns * im.SamplesPerPixel * (im.BitsAllocated / 8)
}

// packedBits is the number of bits of all frames of 1-bit data.
func (im Image) packedBits() int64 { return int64(im.Rows) * int64(im.Columns) * int64(im.Frames) }

// Check validates the geometry of a frame to decode.
func (im Image) Check() error {
	switch {
	case im.Rows <= 0 || im.Columns <= 0 || im.Frames <= 0 || im.Rows > 65535 || im.Columns > 65535:
		return fmt.Errorf("%w: %d rows, %d columns, %d frames", ErrGeometry, im.Rows, im.Columns, im.Frames)
	case im.SamplesPerPixel != 1 && im.SamplesPerPixel != 3:
		return fmt.Errorf("%w: %d samples per pixel", ErrGeometry, im.SamplesPerPixel)
	case im.BitsAllocated == 1 && (im.SamplesPerPixel != 1 || im.BitsStored != 1):
		return fmt.Errorf("%w: 1 bit allocated with %d samples", ErrGeometry, im.SamplesPerPixel)
	case im.BitsAllocated != 1 && im.BitsAllocated != 8 && im.BitsAllocated != 16 && im.BitsAllocated != 32:
		return fmt.Errorf("%w: %d bits allocated", ErrGeometry, im.BitsAllocated)
	case im.BitsStored < 1 || im.BitsStored > im.BitsAllocated:
		return fmt.Errorf("%w: %d bits stored in %d allocated", ErrGeometry, im.BitsStored, im.BitsAllocated)
	case im.PixelRepresentation != 0 && im.PixelRepresentation != 1:
		return fmt.Errorf("%w: pixel representation %d", ErrGeometry, im.PixelRepresentation)
	case im.PlanarConfiguration != 0 && im.PlanarConfiguration != 1:
		return fmt.Errorf("%w: planar configuration %d", ErrGeometry, im.PlanarConfiguration)
	case int64(im.Rows)*int64(im.Columns)*int64(im.SamplesPerPixel)*int64(im.BitsAllocated/8) > MaxFrameBytes:
		return fmt.Errorf("%w: frame larger than %d bytes", ErrGeometry, MaxFrameBytes)
	case im.Photometric == "YBR_FULL_422" && !isEncapsulated(im.Syntax):
		// Native 4:2:2 data is laid out two samples per pixel.
		return fmt.Errorf("%w: native YBR_FULL_422", ErrGeometry)
	}
	return nil
}

// Decoder decodes one frame of one transfer syntax: src is the frame's
// encoded bytes (its fragments joined), dst exactly one frame of the
// Output image. A frame whose codestream disagrees with in (size,
// components, precision) is refused before dst is written.
type Decoder interface {
	Decode(dst, src []byte, in Image) error
}

// DecoderFunc adapts a function to Decoder.
type DecoderFunc func(dst, src []byte, in Image) error

// Decode calls f.
func (f DecoderFunc) Decode(dst, src []byte, in Image) error { return f(dst, src, in) }

// Output is the image that decoding in yields: the decoded Photometric
// Interpretation (JPEG colour is decoded to RGB, JPEG 2000's YBR_ICT and
// YBR_RCT to RGB through the inverse component transform), samples
// interleaved (Planar Configuration 0) for compressed syntaxes, as they
// are for native and deflated frames, little endian.
func Output(in Image) Image {
	out := in
	out.Syntax, out.BigEndian = "1.2.840.10008.1.2.1", false
	if in.BitsAllocated == 1 {
		out.BitsAllocated = 8
	}
	if in.SamplesPerPixel == 3 {
		switch f := family(in.Syntax); {
		case f == famJPEG && !jpegLossless(in.Syntax):
			out.Photometric = "RGB" // libjpeg converts YCbCr (and leaves RGB)
		case f == famJ2K && (in.Photometric == "YBR_ICT" || in.Photometric == "YBR_RCT"):
			out.Photometric = "RGB"
		}
		if isEncapsulated(in.Syntax) && family(in.Syntax) != famDeflate {
			out.PlanarConfiguration = 0 // deflated frames are native frames, as they were
		}
	}
	return out
}

type fam uint8

const (
	famNative fam = iota
	famRLE
	famDeflate
	famJPEG
	famJLS
	famJ2K
	famOther
)

// Transfer syntax UIDs this package knows.
const (
	ImplicitVRLE     = "1.2.840.10008.1.2"
	ExplicitVRLE     = "1.2.840.10008.1.2.1"
	DeflatedLE       = "1.2.840.10008.1.2.1.99"
	ExplicitVRBE     = "1.2.840.10008.1.2.2"
	JPEGBaseline     = "1.2.840.10008.1.2.4.50"
	JPEGExtended     = "1.2.840.10008.1.2.4.51"
	JPEGLossless     = "1.2.840.10008.1.2.4.57"
	JPEGLosslessSV1  = "1.2.840.10008.1.2.4.70"
	JPEGLSLossless   = "1.2.840.10008.1.2.4.80"
	JPEGLSNear       = "1.2.840.10008.1.2.4.81"
	J2KLossless      = "1.2.840.10008.1.2.4.90"
	J2K              = "1.2.840.10008.1.2.4.91"
	HTJ2KLossless    = "1.2.840.10008.1.2.4.201"
	HTJ2KLosslessRP  = "1.2.840.10008.1.2.4.202"
	HTJ2K            = "1.2.840.10008.1.2.4.203"
	RLELossless      = "1.2.840.10008.1.2.5"
	DeflatedFrames   = "1.2.840.10008.1.2.8.1"
	papyrusImplicit  = "1.2.840.10008.1.20"
	jpipReferenced   = "1.2.840.10008.1.2.4.94"
	jpipReferencedDf = "1.2.840.10008.1.2.4.95"
)

func family(ts string) fam {
	switch ts {
	case ImplicitVRLE, ExplicitVRLE, DeflatedLE, ExplicitVRBE, papyrusImplicit:
		return famNative
	case RLELossless:
		return famRLE
	case DeflatedFrames:
		return famDeflate
	case JPEGBaseline, JPEGExtended, JPEGLossless, JPEGLosslessSV1:
		return famJPEG
	case JPEGLSLossless, JPEGLSNear:
		return famJLS
	case J2KLossless, J2K, HTJ2KLossless, HTJ2KLosslessRP, HTJ2K:
		return famJ2K
	}
	return famOther
}

func jpegLossless(ts string) bool { return ts == JPEGLossless || ts == JPEGLosslessSV1 }

func isEncapsulated(ts string) bool {
	f := family(ts)
	return f != famNative && ts != jpipReferenced && ts != jpipReferencedDf
}

// LossySyntax tells that a transfer syntax may have lost information:
// JPEG Baseline and Extended, JPEG-LS near-lossless, JPEG 2000 and HTJ2K
// "lossy or lossless" (whether one frame did is Lossy's answer).
func LossySyntax(ts string) bool {
	switch ts {
	case JPEGBaseline, JPEGExtended, JPEGLSNear, J2K, HTJ2K:
		return true
	}
	return false
}

// LossyMethod is the Lossy Image Compression Method (0028,2114) defined
// term of a lossy syntax (PS3.3 C.7.6.1.1.5.1).
func LossyMethod(ts string) string {
	switch family(ts) {
	case famJPEG:
		return "ISO_10918_1"
	case famJLS:
		return "ISO_14495_1"
	case famJ2K:
		if ts == HTJ2K {
			return "ISO_15444_15"
		}
		return "ISO_15444_1"
	}
	return ""
}
