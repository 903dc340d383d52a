package dicomraw

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeedMax keeps corpus seeds small: larger files add little but slow
// every mutation.
const fuzzSeedMax = 1 << 20

// addCorpusSeeds adds every shared corpus file up to fuzzSeedMax bytes.
func addCorpusSeeds(f *testing.F) {
	dir := corpusDir(f)
	paths, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, p := range paths {
		if n := filepath.Base(p); n == "MANIFEST.tsv" || n == "README.md" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Size() > fuzzSeedMax {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fuzzLimits are the defaults with room for what a fuzzer can build in a
// few kilobytes, but no more, so a slow input is a finding, not a hang.
var fuzzLimits = Limits{MaxInflated: 64 << 20}

// FuzzParse: no input panics; whatever parses writes back (dataset copied
// from the source, File Meta naming its syntax) and the written file
// parses again to the same top-level structure.
func FuzzParse(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		pf, err := Parse(bytes.NewReader(in), int64(len(in)), fuzzLimits)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not a *dicomraw.Error: %v", err, err)
			}
			return
		}
		defer pf.Close()
		var out bytes.Buffer
		meta := []MetaElement{{Tag: TagTransferSyntaxUID, VR: "UI", Value: []byte(pf.Syntax.UID)}}
		if err := Write(&out, pf, meta); err != nil {
			t.Fatalf("parsed but does not write: %v", err)
		}
		// Written here: deflated again, it may compress better than the
		// input did, so no ratio applies (as for the engine's outputs).
		back := fuzzLimits
		back.MaxInflateRatio = -1
		g, err := Parse(bytes.NewReader(out.Bytes()), int64(out.Len()), back)
		if err != nil {
			t.Fatalf("written output does not parse: %v", err)
		}
		defer g.Close()
		if g.Syntax.UID != pf.Syntax.UID {
			t.Fatalf("syntax %s written, %s read back", pf.Syntax.UID, g.Syntax.UID)
		}
		if len(g.Elements) != len(pf.Elements) {
			t.Fatalf("%d top-level elements written, %d read back", len(pf.Elements), len(g.Elements))
		}
		for i, e := range pf.Elements {
			if g.Elements[i].Tag != e.Tag {
				t.Fatalf("element %d: %s written, %s read back", i, e.Tag, g.Elements[i].Tag)
			}
		}
		if !pf.Syntax.Deflated && !bytes.Equal(in[pf.BodyStart:pf.BodyEnd], out.Bytes()[g.BodyStart:g.BodyEnd]) {
			t.Fatal("dataset bytes changed by an unedited write")
		}
	})
}

// FuzzParseCharged: under a small memory budget no input panics, a refused
// charge always fails the parse (kind limit), and a parse the budget
// allows reads the same tree as one without a budget.
func FuzzParseCharged(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		b := &capBudget{limit: 256 << 10}
		lim := fuzzLimits
		lim.Budget = b
		pf, err := Parse(bytes.NewReader(in), int64(len(in)), lim)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *dicomraw.Error: %v", err, err)
			}
			if b.used > b.limit && pe.Kind != ErrLimit {
				t.Fatalf("over the budget, the parse failed with kind %s: %v", pe.Kind, err)
			}
			return
		}
		defer pf.Close()
		if b.used > b.limit {
			t.Fatalf("parsed although %d bytes were charged against a limit of %d", b.used, b.limit)
		}
		free, err := Parse(bytes.NewReader(in), int64(len(in)), fuzzLimits)
		if err != nil {
			t.Fatalf("parses under a budget, not without: %v", err)
		}
		defer free.Close()
		if free.Count != pf.Count || len(free.Elements) != len(pf.Elements) {
			t.Fatalf("%d elements and items under a budget, %d without", pf.Count, free.Count)
		}
	})
}
