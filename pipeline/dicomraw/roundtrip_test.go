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

// heldBody is a body whose bytes [off, off+len(b)) are held in memory,
// and whose reader returns junk there: what is written of that range can
// only come from the held bytes.
type heldBody struct {
	r   []byte
	off int64
	b   []byte
}

func (h *heldBody) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(h.r).ReadAt(p, off)
	for i := range p[:n] {
		if pos := off + int64(i); pos >= h.off && pos < h.off+int64(len(h.b)) {
			p[i] = 0xEE
		}
	}
	return n, err
}

func (h *heldBody) Held() (int64, []byte) { return h.off, h.b }

// A source that holds a range in memory (HeldSource) is written from
// there: the output is the same bytes, whatever the range overlaps.
func TestWriteFromHeld(t *testing.T) {
	dir := corpusDir(t)
	for _, name := range []string{"ct_ge_private.dcm", "us_philips_rle_2frame.dcm", "mr_siemens_csa.dcm"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(bytes.NewReader(data), int64(len(data)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := Write(&want, f, metaOf(f)); err != nil {
			t.Fatal(err)
		}
		s, n := f.BodyStart, f.BodyEnd-f.BodyStart
		for _, r := range [][2]int64{{s + n/3, s + 2*n/3}, {s, s + n/2}, {s + n - 100, s + n}, {s + n/2, s + n/2 + 1}} {
			g, err := Parse(bytes.NewReader(data), int64(len(data)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			g.Body = &heldBody{r: data, off: r[0], b: append([]byte(nil), data[r[0]:r[1]]...)}
			var got bytes.Buffer
			if err := Write(&got, g, metaOf(g)); err != nil {
				t.Fatalf("%s, held %v: %v", name, r, err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("%s, held %v: output differs from the file's", name, r)
			}
		}
	}
}
