package codec

import (
	"bytes"
	"compress/flate"
	"fmt"
)

// Encoder encodes one native frame (im's layout) losslessly, appending
// to dst. Masked frames are written with one: in the input's own syntax
// when the input was lossless and the build has its encoder, otherwise
// as RLE Lossless.
type Encoder interface {
	Encode(dst, frame []byte, im Image) ([]byte, error)
}

// EncoderFunc adapts a function to Encoder.
type EncoderFunc func(dst, frame []byte, im Image) ([]byte, error)

// Encode calls f.
func (f EncoderFunc) Encode(dst, frame []byte, im Image) ([]byte, error) { return f(dst, frame, im) }

// Encoder returns the lossless encoder of a transfer syntax, if the
// build has one: RLE Lossless and Deflated Image Frame Compression in
// every build, JPEG-LS Lossless (CharLS) in the full one.
func (s *Set) Encoder(ts string) (Encoder, bool) {
	e, ok := s.encoders[ts]
	return e, ok
}

func pureEncoders() map[string]Encoder {
	return map[string]Encoder{
		RLELossless:    EncoderFunc(EncodeRLE),
		DeflatedFrames: EncoderFunc(encodeDeflatedFrame),
	}
}

// encodeDeflatedFrame deflates one frame (raw deflate, PS3.5 A.4.11),
// padded to an even length with a zero byte after the stream's end.
func encodeDeflatedFrame(dst, frame []byte, im Image) ([]byte, error) {
	if im.BitsAllocated == 1 {
		return nil, fmt.Errorf("%w: 1-bit frames are not re-encoded", ErrGeometry)
	}
	b := bytes.NewBuffer(dst)
	w, err := flate.NewWriter(b, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(frame); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out := b.Bytes()
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	return out, nil
}
