package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// deid run as an attacker would try it: UIDs that are paths, links planted
// in --out, a report aimed at the key, at the inputs or through a dangling
// link. Nothing may be written outside --out or over a file the run reads.

// retainUIDsProfile is a profile that keeps the inputs' UIDs, so that they
// name the outputs.
func retainUIDsProfile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "retain-uids.yaml")
	if err := os.WriteFile(p, []byte("name: retain-uids\nextends: basic\noptions:\n  retain_uids: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// withUIDs rewrites a corpus file with the given top-level UIDs (tag ->
// value) and returns its bytes.
func withUIDs(t *testing.T, corpus string, uids map[dicomraw.Tag]string) []byte {
	t.Helper()
	in, err := os.ReadFile(filepath.Join(corpusDir(t), corpus))
	if err != nil {
		t.Fatal(err)
	}
	f, err := dicomraw.Parse(bytes.NewReader(in), int64(len(in)), dicomraw.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Elements {
		if v, ok := uids[e.Tag]; ok {
			e.Op, e.NewValue = dicomraw.OpReplace, []byte(v)
		}
	}
	var out bytes.Buffer
	meta := []dicomraw.MetaElement{{Tag: 0x00020001, VR: "OB", Value: []byte{0, 1}},
		{Tag: 0x00020002, VR: "UI", Value: []byte("1.2.840.10008.5.1.4.1.1.2")},
		{Tag: 0x00020003, VR: "UI", Value: []byte(uids[0x00080018])},
		{Tag: dicomraw.TagTransferSyntaxUID, VR: "UI", Value: []byte(f.Syntax.UID)}}
	if err := dicomraw.Write(&out, f, meta); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeInput(t *testing.T, data []byte) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "x.dcm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestRunUIDsThatArePathsStayInsideOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		uids map[dicomraw.Tag]string
	}{
		{"SOP Instance UID ../../../victim", map[dicomraw.Tag]string{0x00080018: "../../../victim"}},
		{"Study UID ..", map[dicomraw.Tag]string{0x00080018: "1.2.3.4.5", 0x0020000D: "..", 0x0020000E: "../.."}},
		{"absolute SOP Instance UID", map[dicomraw.Tag]string{0x00080018: "/tmp/victim"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			victim := filepath.Join(root, "victim.dcm")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			in := writeInput(t, withUIDs(t, "ct_small_explicit_le.dcm", tc.uids))
			out := filepath.Join(root, "out")
			report := filepath.Join(t.TempDir(), "report.json")
			code, _, stderr := runDeid(t, "run", "--in", in, "--out", out, "--profile", retainUIDsProfile(t),
				"--key-file", writeKey(t, t.TempDir(), keyA), "--report", report, "--workers", "1")
			if code != exitOK {
				t.Fatalf("exit %d; stderr: %s", code, stderr)
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Fatal("a file outside --out was overwritten")
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != 2 {
				t.Fatalf("%d entries beside --out, want only the victim", len(entries)-1)
			}
			_, rep := readReport(t, report)
			if rep.Counts.NamedByHash != 1 || len(rep.Files) != 1 || !rep.Files[0].OutputHashed {
				t.Fatalf("report counts %+v, file %+v: want one output named by a hash", rep.Counts, rep.Files)
			}
			name := filepath.ToSlash(rep.Files[0].Output)
			if !strings.Contains(name, "hashed-") || strings.Contains(name, "..") || strings.Contains(name, "victim") {
				t.Fatalf("output named %q", name)
			}
			if _, err := os.Stat(filepath.Join(out, rep.Files[0].Output)); err != nil {
				t.Fatalf("the reported output is not in --out: %v", err)
			}
			if !strings.Contains(stderr, "named by a keyed hash") {
				t.Errorf("stderr does not say an output is named by a hash: %s", stderr)
			}
		})
	}
}

// A symbolic link planted in --out where an output directory goes (its
// Study UID is known to whoever sends the file) is not written through.
func TestRunRefusesToWriteThroughALinkOutOfOut(t *testing.T) {
	root := t.TempDir()
	out, elsewhere := filepath.Join(root, "out"), filepath.Join(root, "elsewhere")
	for _, d := range []string{out, elsewhere} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	study := "1.2.826.0.1.3680043.2.1125.7"
	if err := os.Symlink(elsewhere, filepath.Join(out, study)); err != nil {
		t.Fatal(err)
	}
	in := writeInput(t, withUIDs(t, "ct_small_explicit_le.dcm", map[dicomraw.Tag]string{
		0x00080018: "1.2.826.0.1.3680043.2.1125.7.3", 0x0020000D: study, 0x0020000E: "1.2.826.0.1.3680043.2.1125.7.2"}))
	code, stdout, stderr := runDeid(t, "run", "--in", in, "--out", out, "--profile", retainUIDsProfile(t),
		"--key-file", writeKey(t, t.TempDir(), keyA), "--workers", "1")
	if code != exitRejected || !strings.Contains(stdout, "written=0 rejected=1") {
		t.Fatalf("exit %d, %s; want the file rejected; stderr: %s", code, stdout, stderr)
	}
	if got := tree(t, elsewhere); len(got) != 0 {
		t.Fatalf("written through the link: %v", got)
	}
	if strings.Contains(stderr, elsewhere) {
		t.Errorf("the error names the folder the link leads to: %s", stderr)
	}
}

func TestRunReportSafety(t *testing.T) {
	root := t.TempDir()
	in := makeInputs(t, sampleInputs[:1])
	key := writeKey(t, root, keyA)
	profile := retainUIDsProfile(t)
	keyBefore, _ := os.ReadFile(key)
	danglingIntoIn := filepath.Join(root, "dangling.json")
	if err := os.Symlink(filepath.Join(in, "new report.json"), danglingIntoIn); err != nil {
		t.Fatal(err)
	}
	linkToKey := filepath.Join(root, "key-link.json")
	if err := os.Symlink(key, linkToKey); err != nil {
		t.Fatal(err)
	}
	hardToKey := filepath.Join(root, "key-hard.json")
	if err := os.Link(key, hardToKey); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(root, "out")
	danglingIntoOut := filepath.Join(root, "dangling-out.json")
	if err := os.Symlink(filepath.Join(outDir, "r.json"), danglingIntoOut); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(root, "existing.json")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	inBefore := snapshot(t, in)
	for _, tc := range []struct {
		name, report string
		extra        []string
		want         string
	}{
		{"report is the key file", key, nil, "must not be the project key file"},
		{"report is the key file, forced", key, []string{"--force"}, "must not be the project key file"},
		{"report links to the key file", linkToKey, []string{"--force"}, "must not be the project key file"},
		{"report is a hard link of the key file", hardToKey, []string{"--force"}, "must not be the project key file"},
		{"report is the profile file", profile, []string{"--force"}, "must not be the profile file"},
		{"dangling link into --in", danglingIntoIn, nil, "must not be inside --in"},
		{"dangling link into --out", danglingIntoOut, nil, "must not be inside --out"},
		{"existing file", existing, nil, "exists; give --force"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--in", in, "--out", outDir, "--key-file", key, "--profile", profile, "--report", tc.report}, tc.extra...)
			code, _, stderr := runDeid(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want a usage error saying %q", code, stderr, tc.want)
			}
			mustNotExist(t, outDir)
		})
	}
	if b, _ := os.ReadFile(key); !bytes.Equal(b, keyBefore) {
		t.Fatal("the key file changed")
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("an existing file was replaced without --force")
	}
	if after := snapshot(t, in); !reflect.DeepEqual(inBefore, after) {
		t.Fatal("the input tree changed")
	}

	// A new report, and an existing one replaced with --force: mode 0600.
	for _, tc := range []struct {
		report string
		extra  []string
	}{{filepath.Join(root, "new.json"), nil}, {existing, []string{"--force"}}} {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"run", "--in", in, "--out", out, "--key-file", key, "--report", tc.report}, tc.extra...)
		if code, _, stderr := runDeid(t, args...); code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		st, err := os.Lstat(tc.report)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
			t.Fatalf("report %s has mode %v, want a regular file of mode 0600", filepath.Base(tc.report), st.Mode())
		}
		readReport(t, tc.report)
	}
}
