//go:build cgocodecs && cgo

package codec

import "testing"

func FuzzJPEG(f *testing.F) {
	for _, fr := range corpusFrames(f, JPEGBaseline, JPEGExtended, JPEGLossless, JPEGLosslessSV1) {
		if len(fr) < 256<<10 {
			f.Add(fr)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFrame(t, DecoderFunc(decodeJPEG), JPEGExtended, data, JPEGHeader) })
}

func FuzzJPEGLS(f *testing.F) {
	for _, fr := range corpusFrames(f, JPEGLSLossless, JPEGLSNear) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFrame(t, DecoderFunc(decodeJLS), JPEGLSLossless, data, JPEGHeader)
	})
}

func FuzzJ2K(f *testing.F) {
	for _, fr := range corpusFrames(f, J2KLossless, J2K, HTJ2KLossless, HTJ2KLosslessRP, HTJ2K) {
		if len(fr) < 256<<10 {
			f.Add(fr)
		}
	}
	// The registry's decoder: frames with HTJ2K code-blocks go to a child
	// process (OpenJPEG's HT decoder aborts on some, see isolate.go).
	c, _ := Default().Lookup(J2K)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFrame(t, c.Dec, J2K, data, J2KHeader) })
}
