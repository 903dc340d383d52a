package dicomraw

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// corpusDir is the shared test corpus beside the repository.
func corpusDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("../../../shared/corpus")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err != nil {
		t.Fatalf("shared corpus not found at %s: %v", d, err)
	}
	return d
}

func metaOf(f *File) []MetaElement {
	var m []MetaElement
	for _, e := range f.Meta {
		if e.Tag == 0x00020000 {
			continue
		}
		v := e.Value
		m = append(m, MetaElement{Tag: e.Tag, VR: e.VR, Value: v})
	}
	return m
}

// TestRoundTripUnchanged writes every corpus file back without edits: the
// dataset bytes after the File Meta must be identical to the input's.
func TestRoundTripUnchanged(t *testing.T) {
	dir := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, path := range files {
		name := filepath.Base(path)
		if name == "MANIFEST.tsv" || name == "README.md" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(bytes.NewReader(data), int64(len(data)), Limits{})
			if err != nil {
				t.Logf("rejected %s: %v", name, err)
				return
			}
			var out bytes.Buffer
			if err := Write(&out, f, metaOf(f)); err != nil {
				t.Fatalf("write: %v", err)
			}
			g, err := Parse(bytes.NewReader(out.Bytes()), int64(out.Len()), Limits{})
			if err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
			if f.Syntax.Deflated {
				return
			}
			in := data[f.BodyStart:f.BodyEnd]
			got := out.Bytes()[g.BodyStart:g.BodyEnd]
			if !bytes.Equal(in, got) {
				t.Fatalf("dataset bytes differ (%d vs %d)", len(in), len(got))
			}
		})
	}
}
