package charset

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// corpusDir is the shared test corpus, a sibling of the repository root:
// <root>/pipeline/charset -> <root>/../shared/corpus.
var corpusDir = filepath.Join("..", "..", "..", "shared", "corpus")

// goldenExtraFiles are the non-charset_* corpus files with golden values.
var goldenExtraFiles = []string{
	"mr_j2k_iso_ir13.dcm",
	"sr_latin2_ir101.dcm",
	"cr_referenced_by_gsps.dcm",
	"gsps_referencing_cr.dcm",
}

// semanticOnly lists the corpus values that Encode does not reproduce byte
// for byte, because their writer chose another legal encoding. For these the
// test asserts Decode(Encode(x)) == x instead, and that the bytes really
// differ (so the list cannot go stale).
var semanticOnly = map[string]string{
	"charset_sq_inherit.json (0032,1064)[0](0010,0010)": "writer returns G0 with ESC ( B (ASCII); " +
		"value 1 is ISO 2022 IR 13, so Encode returns with ESC ( J (JIS X 0201 Romaji), as PS3.5 H.3.2 and charset_japanese_ir13_ir87 do",
	"charset_sq_override.json (0032,1064)[0](0010,0010)": "same as charset_sq_inherit: ESC ( B instead of ESC ( J",
	"charset_korean_multi.json (0008,1070)": "writer (AGFA) appends ESC ( B after Korean text although G0 never " +
		"left ASCII; Encode, like PS3.5 I.2 and pydicom, writes no escape there",
	"charset_korean_multi.json (0010,0010)": "trailing ESC ( B, see (0008,1070)",
	"charset_korean_multi.json (0010,1001)": "ESC ( B before '\\' and at the end, see (0008,1070)",
	"charset_korean_multi.json (0010,21B0)": "trailing ESC ( B, see (0008,1070)",
}

type goldenFile struct {
	File      string        `json:"file"`
	Generator string        `json:"generator"`
	Values    []goldenValue `json:"values"`
}

type goldenValue struct {
	Path     string   `json:"path"`
	VR       string   `json:"vr"`
	Charset  []string `json:"charset"`
	RawHex   string   `json:"raw_hex"`
	Pydicom  []string `json:"pydicom"`
	Expected string   `json:"expected"`
	Note     string   `json:"note"`
}

// goldenNames lists the corpus files that must have a golden file: every
// charset_*.dcm present in the corpus plus goldenExtraFiles.
func goldenNames(t *testing.T) []string {
	t.Helper()
	if fi, err := os.Stat(corpusDir); err != nil || !fi.IsDir() {
		t.Fatalf("shared DICOM corpus not found at %s (expected <repo root>/../shared/corpus): %v", corpusDir, err)
	}
	matches, err := filepath.Glob(filepath.Join(corpusDir, "charset_*.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatalf("no charset_*.dcm files in %s", corpusDir)
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(m))
	}
	names = append(names, goldenExtraFiles...)
	sort.Strings(names)
	return names
}

func loadGolden(t *testing.T, name string) goldenFile {
	t.Helper()
	path := filepath.Join("testdata", strings.TrimSuffix(name, ".dcm")+".json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file for %s missing (regenerate with testdata/gen_golden.py): %v", name, err)
	}
	var g goldenFile
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if g.File != name {
		t.Fatalf("%s describes %q, want %q", path, g.File, name)
	}
	return g
}

func TestGoldenCorpus(t *testing.T) {
	type tally struct{ exact, semantic int }
	counts := map[string]*tally{}
	usedExceptions := map[string]bool{}

	for _, name := range goldenNames(t) {
		g := loadGolden(t, name)
		file, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil {
			t.Fatalf("reading corpus file: %v", err)
		}
		t.Run(name, func(t *testing.T) {
			for _, v := range g.Values {
				key := strings.TrimSuffix(name, ".dcm") + ".json " + v.Path
				raw, err := hex.DecodeString(v.RawHex)
				if err != nil {
					t.Fatalf("%s: bad raw_hex: %v", key, err)
				}
				// Tie the golden to the corpus without a DICOM parser: the
				// value bytes and the (0008,0005) value that governs them
				// must both be in the file.
				if !bytes.Contains(file, raw) {
					t.Errorf("%s: raw value bytes not found in %s", key, name)
				}
				if cs := strings.Join(v.Charset, `\`); cs != "" && !bytes.Contains(file, []byte(cs)) {
					t.Errorf("%s: Specific Character Set %q not found in %s", key, cs, name)
				}

				set, err := Parse(v.Charset)
				if err != nil {
					t.Fatalf("%s: Parse(%q): %v", key, v.Charset, err)
				}
				if got := set.Decode(raw, v.VR); got != v.Expected {
					t.Errorf("%s: Decode(%s, %s) = %q, want %q", key, v.RawHex, v.VR, got, v.Expected)
				}

				enc, err := set.Encode(v.Expected, v.VR)
				if err != nil {
					t.Errorf("%s: Encode(%q): %v", key, v.Expected, err)
					continue
				}
				c := counts[set.String()]
				if c == nil {
					c = &tally{}
					counts[set.String()] = c
				}
				if reason, ok := semanticOnly[key]; ok {
					usedExceptions[key] = true
					if bytes.Equal(enc, raw) {
						t.Errorf("%s: listed as not byte-exact (%s) but Encode now reproduces it; drop it from semanticOnly", key, reason)
					}
					if back := set.Decode(enc, v.VR); back != v.Expected {
						t.Errorf("%s: Decode(Encode(x)) = %q, want %q (Encode gave %x)", key, back, v.Expected, enc)
					}
					c.semantic++
					continue
				}
				if !bytes.Equal(enc, raw) {
					t.Errorf("%s: Encode(%q) = %x, want %x", key, v.Expected, enc, raw)
				}
				c.exact++
			}
		})
	}

	for key := range semanticOnly {
		if !usedExceptions[key] {
			t.Errorf("semanticOnly entry %q matches no golden value", key)
		}
	}
	var sets []string
	for s := range counts {
		sets = append(sets, s)
	}
	sort.Strings(sets)
	for _, s := range sets {
		t.Logf("round trip %-34s byte-exact %3d, decode-equal only %d", s, counts[s].exact, counts[s].semantic)
	}
}

// TestGoldenFilesHaveCorpusFile keeps testdata honest: no golden file for a
// corpus file that is gone or no longer selected.
func TestGoldenFilesHaveCorpusFile(t *testing.T) {
	want := map[string]bool{}
	for _, n := range goldenNames(t) {
		want[strings.TrimSuffix(n, ".dcm")+".json"] = true
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("stale golden file %s: no matching corpus file", f)
		}
	}
}
