//go:build cgocodecs && cgo

package codec

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/codec/ijg"
)

// BenchmarkCandidates measures the implementations considered for each
// family on the same frames (BENCH_CODECS_DIR): ns per frame, and how far
// each one's pixels are from the chosen decoder's (maxdiff: the largest
// difference of a sample; diff%: the share of samples that differ).
//
//	JPEG Baseline 8-bit: Go's image/jpeg, libjpeg-turbo, GDCM's IJG 8-bit
//	JPEG Lossless 12-bit: GDCM's IJG 12-bit and 16-bit builds
//	The cost of the worker processes: each C decoder in and out of process
func BenchmarkCandidates(b *testing.B) {
	dir := os.Getenv("BENCH_CODECS_DIR")
	if dir == "" {
		b.Skip("BENCH_CODECS_DIR not set: run scripts/bench-codecs")
	}
	type cand struct {
		name string
		dec  func(dst, src []byte, im Image) error
	}
	ijgDec := func(lib ijg.Library, dct bool) func(dst, src []byte, im Image) error {
		return func(dst, src []byte, im Image) error {
			return ijg.Decode(lib, dst, src, ijg.Params{Width: im.Columns, Height: im.Rows, Components: im.SamplesPerPixel, OutBytes: im.BitsAllocated / 8, DCT: dct})
		}
	}
	isolatedDec := Default().pool.decode
	files := []struct {
		file  string
		cands []cand
	}{
		{"rgb640.jpeg-baseline.dcm", []cand{{"libjpeg-turbo", decodeJPEG}, {"gdcm-ijg8", ijgDec(ijg.IJG8, true)}, {"go-image-jpeg", decodeGoJPEG}}},
		{"mono512.jpeg-sv1.dcm", []cand{{"gdcm-ijg12", decodeJPEG}, {"gdcm-ijg16", ijgDec(ijg.IJG16, false)}}},
		{"rgb640.htj2k.dcm", []cand{{"openjpeg-in-process", decodeJ2K}, {"openjpeg-worker-process", isolatedDec}}},
		{"mono512.htj2k.dcm", []cand{{"openjpeg-in-process", decodeJ2K}, {"openjpeg-worker-process", isolatedDec}}},
		{"rgb640.jpeg-baseline.dcm", []cand{{"libjpeg-turbo-in-process", decodeJPEG}, {"libjpeg-turbo-worker-process", isolatedDec}}},
		{"mono512.jpegls.dcm", []cand{{"charls-in-process", decodeJLS}, {"charls-worker-process", isolatedDec}}},
	}
	for _, f := range files {
		src := benchSource(b, filepath.Join(dir, f.file))
		frame, err := src.FrameData(0, nil)
		if err != nil {
			b.Fatal(err)
		}
		out := Output(src.Image)
		ref := make([]byte, out.FrameBytes())
		if err := f.cands[0].dec(ref, frame, src.Image); err != nil {
			b.Fatal(err)
		}
		for _, c := range f.cands {
			b.Run(f.file+"/"+c.name, func(b *testing.B) {
				dst := make([]byte, out.FrameBytes())
				b.SetBytes(int64(len(dst)))
				for i := 0; i < b.N; i++ {
					if err := c.dec(dst, frame, src.Image); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				maxd, nd, _ := compare(dst, out, ref, max(out.BitsAllocated/8, 1))
				b.ReportMetric(float64(maxd), "maxdiff")
				b.ReportMetric(100*float64(nd)/float64(len(ref)/max(out.BitsAllocated/8, 1)), "diff%")
			})
		}
	}
}

// decodeGoJPEG is the pure-Go candidate: the standard library's
// image/jpeg (8-bit baseline and progressive only), YCbCr converted to
// RGB by image/color.
func decodeGoJPEG(dst, src []byte, im Image) error {
	img, err := jpeg.Decode(bytes.NewReader(src))
	if err != nil {
		return err
	}
	switch m := img.(type) {
	case *image.YCbCr:
		i := 0
		for y := 0; y < im.Rows; y++ {
			for x := 0; x < im.Columns; x++ {
				r, g, bl, _ := m.At(x, y).RGBA()
				dst[i], dst[i+1], dst[i+2] = byte(r>>8), byte(g>>8), byte(bl>>8)
				i += 3
			}
		}
	case *image.Gray:
		copy(dst, m.Pix)
	}
	return nil
}
