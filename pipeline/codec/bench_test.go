package codec

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// BenchmarkDecode decodes the frames of the files scripts/bench-codecs
// makes (BENCH_CODECS_DIR: 640x480 RGB and 512x512 12-bit in every
// syntax), one frame per op: ns/op is the time per frame, which the
// script divides by the peers' (GDCM, DCMTK, OpenJPH) on the same files.
func BenchmarkDecode(b *testing.B) {
	dir := os.Getenv("BENCH_CODECS_DIR")
	if dir == "" {
		b.Skip("BENCH_CODECS_DIR not set: run scripts/bench-codecs")
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	sort.Strings(names)
	set := Default()
	for _, n := range names {
		src := benchSource(b, n)
		b.Run(strings.TrimSuffix(filepath.Base(n), ".dcm"), func(b *testing.B) {
			fr, err := set.Open(src)
			if err != nil {
				b.Skip(err)
			}
			buf := make([]byte, fr.Output().FrameBytes())
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := fr.Frame(i%src.Image.Frames, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchSource(b *testing.B, path string) *Source {
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	f, err := dicomraw.Parse(bytes.NewReader(raw), int64(len(raw)), dicomraw.DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	src, err := FromFile(f)
	if err != nil {
		b.Fatal(err)
	}
	return src
}
