package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
)

// dicomInputs returns the inputs of files that are copies of corpus files.
func dicomInputs(files []inputFile) []inputFile {
	var d []inputFile
	for _, f := range files {
		if f.corpus != "" {
			d = append(d, f)
		}
	}
	return d
}

// nameParts returns the parts of an input path that must never show on the
// output side: each directory and file name, with and without extension.
func nameParts(rel string) []string {
	var parts []string
	for _, p := range strings.Split(rel, "/") {
		parts = append(parts, p)
		if ext := path.Ext(p); ext != "" {
			parts = append(parts, strings.TrimSuffix(p, ext))
		}
	}
	return parts
}

func TestRunUsageErrors(t *testing.T) {
	// Not parallel: the cases without a key need DEID_KEY unset, whatever
	// the environment of the test run.
	t.Setenv("DEID_KEY", "")
	in := makeInputs(t, sampleInputs)
	before := snapshot(t, in)
	root := t.TempDir()
	key := writeKey(t, root, keyA)
	loose := filepath.Join(root, "loose.key")
	if err := os.WriteFile(loose, []byte(keyA), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	badProfile := filepath.Join(root, "bad.yaml")
	if err := os.WriteFile(badProfile, []byte("name: bad\nrules:\n  - tag: PatientName\n    action: frobnicate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(in, "Doe John"), filepath.Join(root, "link into input")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(in, filepath.Join(root, "input link")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	report := filepath.Join(root, "report.json")

	tests := []struct {
		name       string
		env        string // DEID_KEY
		args       []string
		wantStderr string
		absent     []string // besides out and report
	}{
		{name: "no key", args: []string{"--in", in, "--out", out, "--report", report},
			wantStderr: "no project key"},
		{name: "no key, dry run", args: []string{"--in", in, "--dry-run", "--report", report},
			wantStderr: "no project key"},
		{name: "DEID_KEY not a key", env: "not a key", args: []string{"--in", in, "--out", out},
			wantStderr: "DEID_KEY"},
		{name: "DEID_KEY too short", env: keyA[:40], args: []string{"--in", in, "--out", out},
			wantStderr: "DEID_KEY"},
		{name: "key file readable by others", args: []string{"--in", in, "--out", out, "--key-file", loose},
			wantStderr: "mode 0644"},
		{name: "key file missing", args: []string{"--in", in, "--out", out, "--key-file", filepath.Join(root, "absent.key")},
			wantStderr: "key file"},
		{name: "unknown profile", args: []string{"--in", in, "--out", out, "--key-file", key, "--profile", "nosuch"},
			wantStderr: "unknown profile"},
		{name: "profile file missing", args: []string{"--in", in, "--out", out, "--key-file", key, "--profile", filepath.Join(root, "absent.yaml")},
			wantStderr: "cannot read profile"},
		{name: "profile file invalid", args: []string{"--in", in, "--out", out, "--key-file", key, "--profile", badProfile},
			wantStderr: "unknown action"},
		{name: "out inside in", args: []string{"--in", in, "--out", filepath.Join(in, "deid out"), "--key-file", key},
			wantStderr: "must not be inside", absent: []string{filepath.Join(in, "deid out")}},
		{name: "out deep inside in", args: []string{"--in", in, "--out", filepath.Join(in, "Doe John", "x", "y"), "--key-file", key},
			wantStderr: "must not be inside", absent: []string{filepath.Join(in, "Doe John", "x")}},
		{name: "out same as in", args: []string{"--in", in, "--out", in + string(filepath.Separator), "--key-file", key},
			wantStderr: "must not be inside"},
		{name: "in inside out", args: []string{"--in", in, "--out", filepath.Dir(in), "--key-file", key},
			wantStderr: "must not be inside"},
		{name: "out inside in through a symlink", args: []string{"--in", in, "--out", filepath.Join(root, "link into input", "out"), "--key-file", key},
			wantStderr: "must not be inside", absent: []string{filepath.Join(in, "Doe John", "out")}},
		{name: "in is a symlink, out inside its target", args: []string{"--in", filepath.Join(root, "input link"), "--out", filepath.Join(in, "out"), "--key-file", key},
			wantStderr: "must not be inside", absent: []string{filepath.Join(in, "out")}},
		{name: "report inside in", args: []string{"--in", in, "--out", out, "--key-file", key, "--report", filepath.Join(in, "report.json")},
			wantStderr: "--report must not be inside --in", absent: []string{filepath.Join(in, "report.json")}},
		{name: "report overwriting an input", args: []string{"--in", in, "--out", out, "--key-file", key, "--report", filepath.Join(in, "notes about Doe John.txt")},
			wantStderr: "--report must not be inside --in"},
		{name: "report inside out", args: []string{"--in", in, "--out", out, "--key-file", key, "--report", filepath.Join(out, "report.json")},
			wantStderr: "--report must not be inside --out"},
		{name: "missing --in", args: []string{"--out", out, "--key-file", key},
			wantStderr: "--in and --out are required"},
		{name: "empty --in", args: []string{"--in", "", "--out", out, "--key-file", key},
			wantStderr: "--in and --out are required"},
		{name: "missing --out", args: []string{"--in", in, "--key-file", key},
			wantStderr: "--in and --out are required"},
		{name: "--in does not exist", args: []string{"--in", filepath.Join(root, "absent"), "--out", out, "--key-file", key},
			wantStderr: "not a directory"},
		{name: "--in is a file", args: []string{"--in", key, "--out", out, "--key-file", key},
			wantStderr: "not a directory"},
		{name: "no workers", args: []string{"--in", in, "--out", out, "--key-file", key, "--workers", "0"},
			wantStderr: "--workers"},
		{name: "extra argument", args: []string{"--in", in, "--out", out, "--key-file", key, "more"},
			wantStderr: "unexpected argument"},
		{name: "unknown flag", args: []string{"--in", in, "--out", out, "--key-file", key, "--no-such-flag"},
			wantStderr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DEID_KEY", tc.env)
			code, stdout, stderr := runDeid(t, append([]string{"run"}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.wantStderr, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout on a usage error: %q", stdout)
			}
			for _, p := range append([]string{out, report}, tc.absent...) {
				mustNotExist(t, p)
			}
			if after := snapshot(t, in); !reflect.DeepEqual(before, after) {
				t.Errorf("the input tree changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestRunOutputs runs over a tree of corpus files with identifying names and
// checks the output layout and the report.
func TestRunOutputs(t *testing.T) {
	t.Parallel()
	for _, profile := range []string{"basic", "research"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			in := makeInputs(t, sampleInputs)
			root := t.TempDir()
			out, report := filepath.Join(root, "out"), filepath.Join(root, "report.json")
			code, stdout, stderr := runDeid(t, "run", "--in", in, "--out", out, "--profile", profile,
				"--key-file", writeKey(t, root, keyA), "--report", report)
			if code != exitOK {
				t.Fatalf("exit %d, want 0; stderr: %s", code, stderr)
			}
			dicoms := dicomInputs(sampleInputs)
			nonDICOM := len(sampleInputs) - len(dicoms)
			wantLine := fmt.Sprintf("inputs=%d written=%d rejected=0 quarantined=0 not_dicom=%d duplicates=0", len(sampleInputs), len(dicoms), nonDICOM)
			if !strings.Contains(stdout, wantLine) {
				t.Errorf("stdout %q does not contain %q", stdout, wantLine)
			}
			outputs := checkOutputLayout(t, out)
			if len(outputs) != len(dicoms) {
				t.Errorf("%d outputs for %d DICOM inputs: %v", len(outputs), len(dicoms), outputs)
			}
			for _, o := range outputs {
				for _, f := range sampleInputs {
					for _, part := range nameParts(f.rel) {
						if strings.Contains(o, part) {
							t.Errorf("output path %q contains %q from input %q", o, part, f.rel)
						}
					}
				}
			}

			raw, rep := readReport(t, report)
			for _, k := range []string{"tool", "standard_edition", "profile", "options", "counts", "files"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("report has no %q", k)
				}
			}
			if _, ok := raw["options"].([]any); !ok {
				t.Errorf("report options is %#v, want a JSON array", raw["options"])
			}
			if rep.Tool != version() || rep.Edition != "2024c" || rep.Profile != profile || rep.DryRun {
				t.Errorf("report header: tool %q, edition %q, profile %q, dry_run %v", rep.Tool, rep.Edition, rep.Profile, rep.DryRun)
			}
			wantOptions := map[string][]string{
				"basic":    {},
				"research": {"clean_descriptors", "retain_long_modified_dates", "retain_patient_characteristics", "retain_safe_private"},
			}[profile]
			gotOptions := append([]string{}, rep.Options...)
			sort.Strings(gotOptions)
			if !reflect.DeepEqual(gotOptions, wantOptions) {
				t.Errorf("report options %v, want %v", gotOptions, wantOptions)
			}
			wantCounts := ReportCounts{Inputs: len(sampleInputs), Written: len(dicoms), NotDICOM: nonDICOM}
			if rep.Counts != wantCounts {
				t.Errorf("report counts %+v, want %+v", rep.Counts, wantCounts)
			}
			if len(rep.Files) != len(sampleInputs) {
				t.Fatalf("report lists %d files, want %d", len(rep.Files), len(sampleInputs))
			}
			var reported []string
			byInput := map[string]FileOutcome{}
			for _, f := range rep.Files {
				byInput[f.Input] = f
				if f.Output != "" {
					reported = append(reported, filepath.ToSlash(f.Output))
				}
			}
			for _, f := range sampleInputs {
				fo, ok := byInput[filepath.FromSlash(f.rel)]
				switch {
				case !ok:
					t.Errorf("input %q missing from the report", f.rel)
				case f.corpus == "" && (fo.Status != "not-dicom" || fo.Output != ""):
					t.Errorf("%q: status %q, output %q; want not-dicom and no output", f.rel, fo.Status, fo.Output)
				case f.corpus != "" && (fo.Status != "written" || fo.Output == "" || fo.Bytes == 0 || fo.Counts == nil):
					t.Errorf("%q: status %q, output %q, bytes %d; want written", f.rel, fo.Status, fo.Output, fo.Bytes)
				}
			}
			sort.Strings(reported)
			if !reflect.DeepEqual(reported, outputs) {
				t.Errorf("outputs in the report %v differ from the output tree %v", reported, outputs)
			}
			// The burned-in text figures per modality add up to the
			// files': images, examined, read and frames.
			want := map[string]ModalityPixels{}
			for _, f := range rep.Files {
				if f.Pixels == nil || f.Status != "written" {
					continue
				}
				mod := f.Pixels.Modality
				if mod == "" {
					mod = "other"
				}
				m := want[mod]
				m.Images++
				if f.Pixels.Examined {
					m.Examined++
					m.Frames += f.Pixels.FramesTotal
					if f.Pixels.Read {
						m.Read++
					}
				}
				want[mod] = m
			}
			bt := rep.BurnedInText
			if len(want) == 0 || len(bt.ByModality) != len(want) {
				t.Errorf("burned_in_text by modality %v, want %d modalities", bt.ByModality, len(want))
			}
			examined := 0
			for mod, w := range want {
				got := bt.ByModality[mod]
				if got == nil || got.Images != w.Images || got.Examined != w.Examined || got.Read != w.Read || got.Frames != w.Frames ||
					(got.Frames > 0 && got.MS <= 0) {
					t.Errorf("burned_in_text by modality %s: %+v, want %+v", mod, got, w)
				}
				examined += w.Examined
			}
			if examined != bt.Examined {
				t.Errorf("examined per modality %d, in all %d", examined, bt.Examined)
			}
		})
	}
}

// TestRunInputsUnchanged checks that no run, whatever its outcome, changes
// the bytes, times or modes of the inputs or adds anything to their tree.
func TestRunInputsUnchanged(t *testing.T) {
	t.Parallel()
	withRejected := append(append([]inputFile{}, sampleInputs...),
		inputFile{rel: "Doe John/truncated scan.dcm", corpus: "malformed_mr_truncated.dcm"})
	tests := []struct {
		name     string
		files    []inputFile
		args     []string
		wantCode int
	}{
		{name: "basic", files: sampleInputs, args: []string{"--profile", "basic"}, wantCode: exitOK},
		{name: "research, one worker", files: sampleInputs, args: []string{"--profile", "research", "--workers", "1"}, wantCode: exitOK},
		{name: "example-custom", files: sampleInputs, args: []string{"--profile", "example-custom"}, wantCode: exitOK},
		{name: "dry run", files: sampleInputs, args: []string{"--dry-run"}, wantCode: exitOK},
		{name: "with a rejected input", files: withRejected, args: []string{"--profile", "research"}, wantCode: exitRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := makeInputs(t, tc.files)
			before := snapshot(t, in)
			for p, st := range before {
				if st.sum != "" && !st.mtime.Equal(oldTime) {
					t.Fatalf("%s: test setup did not set the modification time", p)
				}
			}
			root := t.TempDir()
			args := append([]string{"run", "--in", in, "--out", filepath.Join(root, "out"),
				"--key-file", writeKey(t, root, keyA), "--report", filepath.Join(root, "report.json")}, tc.args...)
			code, _, stderr := runDeid(t, args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr)
			}
			after := snapshot(t, in)
			for _, p := range sortedKeys(before) {
				b, a := before[p], after[p]
				switch {
				case a == fileState{}:
					t.Errorf("%q disappeared from the input tree", p)
				case a.sum != b.sum:
					t.Errorf("%q: sha256 changed from %s to %s", p, b.sum, a.sum)
				case !a.mtime.Equal(b.mtime):
					t.Errorf("%q: modification time changed from %v to %v", p, b.mtime, a.mtime)
				case a.mode != b.mode:
					t.Errorf("%q: mode changed from %v to %v", p, b.mode, a.mode)
				}
			}
			for _, p := range sortedKeys(after) {
				if _, ok := before[p]; !ok {
					t.Errorf("%q appeared in the input tree", p)
				}
			}
		})
	}
}

// TestRunDeterministic checks that the same key gives byte-identical output
// trees however the run is done, and that another key shares nothing.
func TestRunDeterministic(t *testing.T) {
	t.Parallel()
	// Two encodings of one SOP Instance are included: which one is written
	// must not depend on worker timing.
	files := append(append([]inputFile{}, sampleInputs...),
		inputFile{rel: "Doe John/MR (copy) little endian.dcm", corpus: "mr_small_explicit_le.dcm"},
		inputFile{rel: "Doe John/MR again/implicit.dcm", corpus: "mr_small_implicit_le.dcm"})
	in := makeInputs(t, files)
	root := t.TempDir()
	keyFileA, keyFileB := writeKey(t, root, keyA), writeKey(t, root, keyB)
	if err := os.Symlink(in, filepath.Join(root, "input link")); err != nil {
		t.Fatal(err)
	}
	runTree := func(t *testing.T, args ...string) map[string]string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		report := filepath.Join(t.TempDir(), "report.json")
		code, _, stderr := runDeid(t, append([]string{"run", "--out", out, "--report", report}, args...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkOutputLayout(t, out)
		_, rep := readReport(t, report)
		if rep.Counts.Duplicates != 2 {
			t.Errorf("%d duplicates, want 2 (three encodings of one MR)", rep.Counts.Duplicates)
		}
		// The MR listed first in path order is written, the others are
		// duplicates of it.
		pos, byInput := 0, map[string]FileOutcome{}
		for i, f := range rep.Files {
			byInput[filepath.ToSlash(f.Input)] = f
			if filepath.ToSlash(f.Input) == "Doe John/MR (copy) big endian" {
				pos = i + 1
			}
		}
		first := byInput["Doe John/MR (copy) big endian"]
		if first.Status != "written" {
			t.Errorf("first MR encoding: status %q, want written", first.Status)
		}
		for _, rel := range []string{"Doe John/MR (copy) little endian.dcm", "Doe John/MR again/implicit.dcm"} {
			f := byInput[rel]
			if f.Status != "duplicate" || f.Output != first.Output || !strings.Contains(f.Reason, fmt.Sprintf("input #%d,", pos)) {
				t.Errorf("%q: %+v; want a duplicate of input #%d", rel, f, pos)
			}
		}
		return tree(t, out)
	}
	base := runTree(t, "--in", in, "--key-file", keyFileA, "--workers", "4")
	if len(base) != len(dicomInputs(sampleInputs)) {
		t.Fatalf("%d outputs, want %d", len(base), len(dicomInputs(sampleInputs)))
	}

	tests := []struct {
		name string
		args []string
	}{
		{name: "again, 4 workers", args: []string{"--in", in, "--key-file", keyFileA, "--workers", "4"}},
		{name: "1 worker", args: []string{"--in", in, "--key-file", keyFileA, "--workers", "1"}},
		{name: "16 workers", args: []string{"--in", in, "--key-file", keyFileA, "--workers", "16"}},
		{name: "input named through a symlink", args: []string{"--in", filepath.Join(root, "input link"), "--key-file", keyFileA, "--workers", "3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := runTree(t, tc.args...)
			if !reflect.DeepEqual(got, base) {
				t.Errorf("output tree differs from the first run:\nfirst %v\nthis  %v", base, got)
			}
		})
	}

	t.Run("different key", func(t *testing.T) {
		t.Parallel()
		other := runTree(t, "--in", in, "--key-file", keyFileB, "--workers", "4")
		if len(other) != len(base) {
			t.Errorf("%d outputs with key B, %d with key A", len(other), len(base))
		}
		components := func(m map[string]string) map[string]bool {
			c := map[string]bool{}
			for p := range m {
				for _, part := range strings.Split(p, "/") {
					c[part] = true
				}
			}
			return c
		}
		ca := components(base)
		for part := range components(other) {
			if ca[part] {
				t.Errorf("path component %q appears under both keys", part)
			}
		}
		sums := map[string]bool{}
		for _, s := range base {
			sums[s] = true
		}
		for p, s := range other {
			if sums[s] {
				t.Errorf("%s has the same bytes as an output of key A", p)
			}
		}
	})
}

// TestRunRejected checks that an input the engine refuses makes the run
// exit 1, is not written, is reported with a reason, and is named on
// stderr by position only.
func TestRunRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		corpus     string
		rel        string
		wantReason string
	}{
		{name: "truncated", corpus: "malformed_mr_truncated.dcm", rel: "Doe John/Secret Patient 1970-01-01.dcm", wantReason: "truncated"},
		{name: "truncated, first in order", corpus: "malformed_mr_truncated.dcm", rel: "AAA Secret Patient.dcm", wantReason: "truncated"},
		{name: "DICOMDIR", corpus: "dicomdir_pydicom", rel: "Smith, Jane/DICOMDIR of Secret Patient", wantReason: "DICOMDIR"},
		{name: "no SOP Instance UID", corpus: "private_sq_nested.dcm", rel: "zz Secret Patient/fragment.dcm", wantReason: "not a composite instance"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := append(append([]inputFile{}, sampleInputs[:3]...), sampleInputs[6], inputFile{rel: tc.rel, corpus: tc.corpus})
			in := makeInputs(t, files)
			root := t.TempDir()
			out, report := filepath.Join(root, "out"), filepath.Join(root, "report.json")
			code, stdout, stderr := runDeid(t, "run", "--in", in, "--out", out, "--key-file", writeKey(t, root, keyA),
				"--report", report, "--workers", "2")
			if code != exitRejected {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitRejected, stderr)
			}
			// The position is that of the input in path order.
			var rels []string
			for _, f := range files {
				rels = append(rels, filepath.FromSlash(f.rel))
			}
			sort.Strings(rels)
			pos := sort.SearchStrings(rels, filepath.FromSlash(tc.rel)) + 1
			if !regexp.MustCompile(fmt.Sprintf(`(?m)^rejected input #%d: .*%s`, pos, regexp.QuoteMeta(tc.wantReason))).MatchString(stderr) {
				t.Errorf("stderr does not name input #%d with reason %q:\n%s", pos, tc.wantReason, stderr)
			}
			if n := strings.Count(stderr, "rejected input #"); n != 1 {
				t.Errorf("stderr names %d rejected inputs, want 1", n)
			}
			for _, part := range append(nameParts(filepath.ToSlash(tc.rel)), "Secret") {
				if strings.Contains(stderr, part) || strings.Contains(stdout, part) {
					t.Errorf("the rejected input's name (%q) appears in the output:\nstdout: %s\nstderr: %s", part, stdout, stderr)
				}
			}
			if !strings.Contains(stdout, "rejected=1") {
				t.Errorf("stdout %q does not count one rejection", stdout)
			}

			_, rep := readReport(t, report)
			if rep.Counts.Rejected != 1 || rep.Counts.Written != 3 || rep.Counts.NotDICOM != 1 {
				t.Errorf("report counts %+v, want 3 written, 1 rejected, 1 not DICOM", rep.Counts)
			}
			if len(rep.Files) != len(files) {
				t.Fatalf("report lists %d files, want %d", len(rep.Files), len(files))
			}
			fo := rep.Files[pos-1]
			if fo.Input != filepath.FromSlash(tc.rel) {
				t.Errorf("report entry #%d is %q, want %q", pos, fo.Input, tc.rel)
			}
			if fo.Status != "rejected" || !strings.Contains(fo.Reason, tc.wantReason) || fo.Output != "" || fo.Bytes != 0 {
				t.Errorf("report entry %+v, want status rejected, a reason with %q, no output", fo, tc.wantReason)
			}
			var written []string
			for _, f := range rep.Files {
				if f.Status == "written" {
					written = append(written, filepath.ToSlash(f.Output))
				}
			}
			sort.Strings(written)
			if outputs := checkOutputLayout(t, out); !reflect.DeepEqual(outputs, written) {
				t.Errorf("output tree %v, want exactly the written outputs %v", outputs, written)
			}
		})
	}
}

func TestRunDryRun(t *testing.T) {
	t.Parallel()
	withRejected := append(append([]inputFile{}, sampleInputs...),
		inputFile{rel: "Doe John/truncated scan.dcm", corpus: "malformed_mr_truncated.dcm"})
	tests := []struct {
		name     string
		files    []inputFile
		out      string // "none": no --out; "absent": --out not existing; "empty": --out an empty directory
		profile  string
		wantCode int
		wantRows []string // regular expressions for rows of the table
	}{
		// Five of the six DICOM inputs have a Patient's Name (the RT Ion Plan
		// without File Meta has none); all six have a Study Instance UID.
		{name: "no --out", files: sampleInputs, out: "none", profile: "basic", wantCode: exitOK,
			wantRows: []string{`PatientName\s+pseudonym\s+5\s`, `PatientID\s+pseudonym\s+5\s`, `StudyInstanceUID\s+uid\s+6\s`,
				`StudyDate\s+empty\s+6\s+Table E.1-1 Z`, `PatientSex\s+empty\s`}},
		{name: "--out absent", files: sampleInputs, out: "absent", profile: "research", wantCode: exitOK,
			wantRows: []string{`PatientName\s+pseudonym\s+5\s`, `StudyDate\s+clean\s+6\s+Table E.1-1 C`, `PatientSex\s+keep\s`}},
		{name: "--out empty", files: sampleInputs, out: "empty", profile: "research", wantCode: exitOK,
			wantRows: []string{`PatientName\s+pseudonym\s+5\s`}},
		// The truncated MR is not planned, so it is not counted.
		{name: "rejected input", files: withRejected, out: "absent", profile: "basic", wantCode: exitRejected,
			wantRows: []string{`PatientName\s+pseudonym\s+5\s`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := makeInputs(t, tc.files)
			root := t.TempDir()
			out, report := filepath.Join(root, "out"), filepath.Join(root, "report.json")
			args := []string{"run", "--dry-run", "--in", in, "--profile", tc.profile, "--key-file", writeKey(t, root, keyA), "--report", report}
			switch tc.out {
			case "empty":
				if err := os.Mkdir(out, 0o755); err != nil {
					t.Fatal(err)
				}
				fallthrough
			case "absent":
				args = append(args, "--out", out)
			}
			code, stdout, stderr := runDeid(t, args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr)
			}
			if tc.out == "empty" {
				if ents, err := os.ReadDir(out); err != nil || len(ents) != 0 {
					t.Errorf("dry run wrote into --out: %v %v", ents, err)
				}
			} else {
				mustNotExist(t, out)
			}
			if !regexp.MustCompile(`(?m)^ATTRIBUTE PATH\s+ACTION\s+FILES\s+WHY$`).MatchString(stdout) {
				t.Errorf("no table header in:\n%s", stdout)
			}
			for _, re := range tc.wantRows {
				if !regexp.MustCompile(`(?m)^` + re).MatchString(stdout) {
					t.Errorf("no row matching %s in:\n%s", re, stdout)
				}
			}
			// Nested attributes are listed by their path.
			if !regexp.MustCompile(`(?m)^\w+Sequence/\w+\s`).MatchString(stdout) {
				t.Errorf("no attribute path inside a sequence in:\n%s", stdout)
			}
			raw, rep := readReport(t, report)
			if raw["dry_run"] != true || len(rep.AttributeReview) == 0 {
				t.Errorf("report: dry_run %v, %d review rows", raw["dry_run"], len(rep.AttributeReview))
			}
			for _, f := range rep.Files {
				if f.Status != "planned" && f.Status != "not-dicom" && f.Status != "rejected" {
					t.Errorf("dry run report: %q has status %q", f.Input, f.Status)
				}
			}
		})
	}
}

// TestRunKeyFromEnv checks that DEID_KEY gives the same outputs as the same
// key in a file, in each accepted text form, and that --key-file wins.
func TestRunKeyFromEnv(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("DEID_KEY", "")
	in := makeInputs(t, sampleInputs)
	root := t.TempDir()
	keyFile := writeKey(t, root, keyA)
	runTree := func(t *testing.T, args ...string) map[string]string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		code, _, stderr := runDeid(t, append([]string{"run", "--in", in, "--out", out}, args...)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		checkOutputLayout(t, out)
		return tree(t, out)
	}
	base := runTree(t, "--key-file", keyFile)
	if len(base) == 0 {
		t.Fatal("no outputs")
	}
	rawA, _ := hex.DecodeString(keyA)
	tests := []struct {
		name     string
		env      string
		args     []string
		wantSame bool
	}{
		{name: "hex", env: keyA, wantSame: true},
		{name: "hex with spaces and newline", env: "  " + keyA + "\n", wantSame: true},
		{name: "upper-case hex", env: strings.ToUpper(keyA), wantSame: true},
		{name: "base64", env: base64.StdEncoding.EncodeToString(rawA), wantSame: true},
		{name: "key file wins over DEID_KEY", env: keyB, args: []string{"--key-file", keyFile}, wantSame: true},
		{name: "another key", env: keyB, wantSame: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DEID_KEY", tc.env)
			got := runTree(t, tc.args...)
			if tc.wantSame {
				if !reflect.DeepEqual(got, base) {
					t.Errorf("outputs differ from those of the key file:\nfile %v\nenv  %v", base, got)
				}
				return
			}
			if len(got) != len(base) {
				t.Errorf("%d outputs, want %d", len(got), len(base))
			}
			for p := range got {
				if _, ok := base[p]; ok {
					t.Errorf("another key gave the same output path %s", p)
				}
			}
		})
	}
}

// Outputs appear whole or not at all: they are written in a hidden
// folder and renamed into place, and what a killed run left there is gone
// after the next run.
func TestRunLeavesNoPartialOutputs(t *testing.T) {
	in := makeInputs(t, sampleInputs)
	root := t.TempDir()
	out := filepath.Join(root, "out")
	left := filepath.Join(out, ".deid-partial", "0", "out-killed.dcm")
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(left, []byte("DICM half"), 0o600)
	if code, _, stderr := runDeid(t, "run", "--in", in, "--out", out, "--key-file", writeKey(t, root, keyA), "--workers", "3"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, ".deid-partial")); !os.IsNotExist(err) {
		t.Errorf("partial outputs folder still there: %v", err)
	}
	if got, want := len(checkOutputLayout(t, out)), len(dicomInputs(sampleInputs)); got != want {
		t.Errorf("%d outputs, want %d", got, want)
	}
}

// deid run's collector settings are its own: the process it runs in gets
// its settings back (the service benchmark runs deid run beside the
// service, which must not then collect against deid run's 48 MiB limit).
func TestRunRestoresCollectorSettings(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOGC or GOMEMLIMIT set in the environment: deid run leaves them alone")
	}
	gc := debug.SetGCPercent(123)
	limit := debug.SetMemoryLimit(1 << 40)
	defer debug.SetGCPercent(gc)
	defer debug.SetMemoryLimit(limit)
	root := t.TempDir()
	if code, _, stderr := runDeid(t, "run", "--in", makeInputs(t, sampleInputs), "--out", filepath.Join(root, "out"),
		"--key-file", writeKey(t, root, keyA)); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := debug.SetGCPercent(123); got != 123 {
		t.Errorf("GOGC after deid run: %d, want 123", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<40 {
		t.Errorf("memory limit after deid run: %d, want %d", got, int64(1<<40))
	}
}
