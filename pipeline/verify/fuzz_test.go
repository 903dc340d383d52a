package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

// FuzzVerify audits any pair of files as `deid verify` does: the values of
// one (the original) looked for in the other (an output of any tool). No
// input panics, the verdict is the same twice, and what a finding names
// (attribute paths, which end up in messages) is printable ASCII built
// from the dictionary and tags, never a string copied from the file.
func FuzzVerify(f *testing.F) {
	dir, _ := filepath.Abs("../../../shared/corpus")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	var prev []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) > 64<<10 {
			continue
		}
		f.Add(b, b)
		if prev != nil {
			f.Add(prev, b)
		}
		prev = b
	}
	lim := dicomraw.Limits{MaxInflated: 64 << 20}
	pol := Policy{}
	pol.Options[ps315.RetainSafePrivate] = true
	f.Fuzz(func(t *testing.T, orig, anon []byte) {
		in, err := dicomraw.Parse(bytes.NewReader(orig), int64(len(orig)), lim)
		if err != nil {
			return
		}
		out, err := dicomraw.Parse(bytes.NewReader(anon), int64(len(anon)), lim)
		if err != nil {
			return
		}
		m := Collect(in, pol).Compile()
		fs, _, err := m.Scan(out)
		if err != nil {
			return // a value that cannot be read back: reported as unverifiable
		}
		again, _, err := m.Scan(out)
		if err != nil || !reflect.DeepEqual(fs, again) {
			t.Fatalf("verdict differs between two scans of the same output")
		}
		for _, fd := range fs {
			for _, s := range []string{fd.Path, fd.Source} {
				for i := 0; i < len(s); i++ {
					if s[i] < 0x20 || s[i] > 0x7E {
						t.Fatalf("finding path %q is not printable ASCII", s)
					}
				}
			}
		}
	})
}
