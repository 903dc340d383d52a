package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Two fixed project keys (32 bytes each, hex), so that runs can be compared
// across tests and across key sources (file, DEID_KEY).
var (
	keyA = strings.Repeat("0123456789abcdef", 4)
	keyB = strings.Repeat("fedcba9876543210", 4)
)

// corpusDir returns the shared corpus of real public DICOM files. It is
// required: the tests fail, not skip, without it.
func corpusDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("../../../shared/corpus")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err != nil {
		t.Fatalf("shared corpus not found at %s (tests read ../shared/corpus): %v", d, err)
	}
	return d
}

// runDeid runs the command in-process as a user would and returns its exit code
// and output.
func runDeid(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// writeKey writes a hex key to a new file with mode 0600 and returns its path.
func writeKey(t *testing.T, dir, hexKey string) string {
	t.Helper()
	p := filepath.Join(dir, "project-"+hexKey[:6]+".key")
	if err := os.WriteFile(p, []byte(hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

// inputFile is one file of a test input tree: a copy of a corpus file under
// an identifying-looking name, or a literal text (empty for an empty file).
type inputFile struct {
	rel    string // path under --in, with spaces and subdirectories
	corpus string // corpus file to copy, or "" for text
	text   string
}

// sampleInputs are six varied DICOM files (explicit LE CT with private
// groups, big-endian MR, JPEG secondary capture, RT plan, a dataset with
// neither preamble nor File Meta, ISO 2022 Japanese names) plus a text file
// and an empty file, under names a hospital might use.
var sampleInputs = []inputFile{
	{rel: "Doe John/CT head 2019-01-01.dcm", corpus: "ct_small_explicit_le.dcm"},
	{rel: "Doe John/MR (copy) big endian", corpus: "mr_small_explicit_be.dcm"},
	{rel: "Smith, Jane/2020 visit/secondary capture.dcm", corpus: "sc_rgb_jpeg_baseline.dcm"},
	{rel: "Smith, Jane/2020 visit/RT plan #2.dcm", corpus: "rtplan_small.dcm"},
	{rel: "no meta no preamble", corpus: "rtionplan_nometa_explicit_le.dcm"},
	{rel: "Yamada Tarou 山田太郎.DCM", corpus: "charset_japanese_ir87.dcm"},
	{rel: "notes about Doe John.txt", text: "Patient Doe John, MRN 1234567, called on Monday.\n"},
	{rel: "Smith, Jane/empty file"},
}

// oldTime is the modification time given to every input, so that any write
// to an input would show.
var oldTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)

// makeInputs builds an input tree of files under a new temporary directory
// and returns the directory.
func makeInputs(t *testing.T, files []inputFile) string {
	t.Helper()
	corpus := corpusDir(t)
	dir := filepath.Join(t.TempDir(), "in put")
	for _, f := range files {
		data := []byte(f.text)
		if f.corpus != "" {
			var err error
			if data, err = os.ReadFile(filepath.Join(corpus, f.corpus)); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, oldTime, oldTime); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fileState is what must not change about an input.
type fileState struct {
	sum   string
	mtime time.Time
	mode  fs.FileMode
}

// snapshot returns every entry under dir (files and directories) by slash
// path; files carry their sha256.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := fileState{mode: info.Mode()}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(data)
			st.sum, st.mtime = hex.EncodeToString(s[:]), info.ModTime()
		}
		m[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tree returns the regular files under dir by slash path with their sha256,
// or nil when dir does not exist.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	m := map[string]string{}
	for p, st := range snapshot(t, dir) {
		if st.sum != "" {
			m[p] = st.sum
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

var (
	uidDirRE  = regexp.MustCompile(`^2\.25\.\d+$`)
	uidFileRE = regexp.MustCompile(`^2\.25\.\d+\.dcm$`)
)

// checkOutputLayout asserts that out holds exactly OUT/<uid>/<uid>/<uid>.dcm
// files, each a Part 10 file, and nothing else (no temporary files), and
// returns the output paths.
func checkOutputLayout(t *testing.T, out string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == out {
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		last := parts[len(parts)-1]
		switch {
		case d.IsDir() && len(parts) <= 2:
			if !uidDirRE.MatchString(last) {
				t.Errorf("output directory %q: component %q is not a 2.25 UID", rel, last)
			}
		case d.Type().IsRegular() && len(parts) == 3:
			if !uidFileRE.MatchString(last) {
				t.Errorf("output file %q: name %q is not <2.25 UID>.dcm", rel, last)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if len(data) < 132 || string(data[128:132]) != "DICM" {
				t.Errorf("output %q is not a Part 10 file (no DICM at offset 128)", rel)
			}
			files = append(files, filepath.ToSlash(rel))
		default:
			t.Errorf("unexpected entry %q (mode %v) in the output tree", rel, d.Type())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// readReport decodes a JSON report twice: as a generic map, to check the
// key names a consumer sees, and as a Report.
func readReport(t *testing.T, path string) (map[string]any, *Report) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	return raw, &rep
}

// mustNotExist fails when p exists.
func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); err == nil {
		t.Errorf("%s exists; nothing should have been written", p)
	} else if !os.IsNotExist(err) {
		t.Error(err)
	}
}
