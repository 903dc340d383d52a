//go:build cgocodecs && cgo

package codec

import (
	"testing"
	"time"
)

func FuzzJPEG(f *testing.F) {
	for _, fr := range corpusFrames(f, JPEGBaseline, JPEGExtended, JPEGLossless, JPEGLosslessSV1) {
		if len(fr) < 256<<10 {
			f.Add(fr)
		}
	}
	dec := fuzzDecoder(JPEGExtended)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFrame(t, dec, JPEGExtended, data, JPEGHeader) })
}

func FuzzJPEGLS(f *testing.F) {
	for _, fr := range corpusFrames(f, JPEGLSLossless, JPEGLSNear) {
		f.Add(fr)
	}
	dec := fuzzDecoder(JPEGLSLossless)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFrame(t, dec, JPEGLSLossless, data, JPEGHeader) })
}

func FuzzJ2K(f *testing.F) {
	for _, fr := range corpusFrames(f, J2KLossless, J2K, HTJ2KLossless, HTJ2KLosslessRP, HTJ2K) {
		if len(fr) < 256<<10 {
			f.Add(fr)
		}
	}
	dec := fuzzDecoder(J2K)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFrame(t, dec, J2K, data, J2KHeader) })
}

// fuzzDecoder is the production path: the C decoder in a worker process,
// with a frame time limit below the fuzzer's hang detection (10 s), so a
// stuck decoder is the worker's ErrCorrupt, not a hung fuzz input; the
// parent must never crash, hang or answer with a frame of another size.
func fuzzDecoder(ts string) Decoder {
	set := Default()
	set.pool.limit = 3 * time.Second
	c, _ := set.Lookup(ts)
	return c.Dec
}
