package codec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Verbatim says which decoded frames are the file's own bytes: native
// little-endian frames are (at the place it gives), big-endian and
// compressed ones are not, and only for the frame last read.
func TestVerbatim(t *testing.T) {
	dir := corpusDir(t)
	for _, c := range []struct {
		name     string
		verbatim bool
	}{
		{"ct_ge_private.dcm", true},
		{"mr_small_explicit_be.dcm", false},
		{"us_philips_rle_2frame.dcm", false},
	} {
		data, err := os.ReadFile(filepath.Join(dir, c.name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		src, err := FromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := Default().Open(src)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := fr.Verbatim(0); ok {
			t.Errorf("%s: verbatim before any frame was read", c.name)
		}
		frame := make([]byte, fr.Output().FrameBytes())
		if err := fr.Frame(0, frame); err != nil {
			t.Fatal(err)
		}
		off, ok := fr.Verbatim(0)
		if ok != c.verbatim {
			t.Fatalf("%s: Verbatim %v, want %v", c.name, ok, c.verbatim)
		}
		if ok && !bytes.Equal(data[off:off+int64(len(frame))], frame) {
			t.Errorf("%s: the frame is not the file's bytes at %d", c.name, off)
		}
		if _, ok := fr.Verbatim(1); ok {
			t.Errorf("%s: frame 2 verbatim, but frame 1 was read", c.name)
		}
	}
}
