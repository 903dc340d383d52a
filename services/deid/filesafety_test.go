package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every command that writes a file, aimed at what it must never replace:
// the project key, a credentials file, an input, through a symbolic link
// (dangling or not) or a hard link. The target must be refused and
// nothing it names changed.

// victims is a directory of files a command must not touch, and a
// snapshot of them.
type victims struct {
	dir, key, nkey, s3, input string
	before                    map[string]fileState
}

func newVictims(t *testing.T) *victims {
	t.Helper()
	v := &victims{dir: t.TempDir()}
	v.key = writeKey(t, v.dir, keyA)
	v.nkey = filepath.Join(v.dir, "admin.nk")
	os.WriteFile(v.nkey, []byte("# dicomdeid NATS credentials\nSUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU\n"), 0o600)
	v.s3 = filepath.Join(v.dir, "operator.credentials")
	os.WriteFile(v.s3, []byte("[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n"), 0o600)
	v.input = filepath.Join(v.dir, "batch.csv")
	os.WriteFile(v.input, []byte("uid\n1.2.3.4\n"), 0o600)
	v.before = snapshot(t, v.dir)
	return v
}

func (v *victims) unchanged(t *testing.T) {
	t.Helper()
	if after := snapshot(t, v.dir); !reflect.DeepEqual(v.before, after) {
		t.Fatalf("a protected file changed:\nbefore %v\nafter  %v", v.before, after)
	}
}

// targets are the paths a writer is aimed at: each must be refused.
func (v *victims) targets(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	d := t.TempDir()
	link := func(name, to string) string {
		p := filepath.Join(d, name)
		if err := os.Symlink(to, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hard := filepath.Join(d, "hard-key")
	if err := os.Link(v.key, hard); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{
		"the key file":                   v.key,
		"a link to the key file":         link("link-key", v.key),
		"a hard link of the key file":    hard,
		"a dangling link":                link("dangling", filepath.Join(v.dir, "new-file")),
		"an NKey seed":                   v.nkey,
		"a link to an NKey seed":         link("link-nkey", v.nkey),
		"S3 credentials":                 v.s3,
		"the input":                      v.input,
		"a link to the input":            link("link-input", v.input),
		"the key file, another spelling": filepath.Join(v.dir, ".", filepath.Base(v.key)),
	}
	for k, p := range extra {
		m[k] = p
	}
	return m
}

func TestWritersRefuseProtectedTargets(t *testing.T) {
	v := newVictims(t)
	for name, target := range v.targets(t, nil) {
		for _, force := range [][]string{nil, {"--force"}} {
			args := append([]string{"pseudonym", "--key-file", v.key, "--batch", v.input, "--out", target}, force...)
			t.Run(strings.Join(force, "")+" pseudonym --out to "+name, func(t *testing.T) {
				code, _, stderr := runDeid(t, args...)
				if code == exitOK || !strings.Contains(stderr, "--out") || strings.Contains(stderr, "not defined") {
					t.Errorf("exit %d, stderr %q: want a refusal naming --out", code, stderr)
				}
				v.unchanged(t)
			})
		}
	}
	// deid verify --json: the targets above, and inside --orig or --anon.
	orig := makeInputs(t, sampleInputs[:1])
	anon := filepath.Join(t.TempDir(), "anon")
	if code, _, se := runDeid(t, "run", "--in", orig, "--out", anon, "--key-file", v.key, "--no-progress"); code != exitOK {
		t.Fatalf("run: %s", se)
	}
	origBefore, anonBefore := snapshot(t, orig), snapshot(t, anon)
	var anyOut string
	for _, p := range []string{anon} {
		filepath.Walk(p, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				anyOut = path
			}
			return nil
		})
	}
	for name, target := range v.targets(t, map[string]string{
		"inside --orig": filepath.Join(orig, "audit.json"), "inside --anon": filepath.Join(anon, "audit.json"), "an output": anyOut}) {
		if name == "the input" {
			continue // pseudonym's input, not verify's: --orig and --anon are
		}
		for _, force := range [][]string{nil, {"--force"}} {
			args := append([]string{"verify", "--orig", orig, "--anon", anon, "--key-file", v.key, "--json", target}, force...)
			t.Run(strings.Join(force, "")+" verify --json to "+name, func(t *testing.T) {
				code, _, stderr := runDeid(t, args...)
				if code == exitOK || !strings.Contains(stderr, "--json") || strings.Contains(stderr, "not defined") {
					t.Errorf("exit %d, stderr %q: want a refusal naming --json", code, stderr)
				}
				v.unchanged(t)
			})
		}
	}
	if !reflect.DeepEqual(origBefore, snapshot(t, orig)) || !reflect.DeepEqual(anonBefore, snapshot(t, anon)) {
		t.Fatal("verify --json wrote into --orig or --anon")
	}
	// What the writers may do: a new file of mode 0600, an existing one
	// only with --force.
	d := t.TempDir()
	existing := filepath.Join(d, "existing")
	os.WriteFile(existing, []byte("keep me"), 0o644)
	for _, args := range [][]string{
		{"pseudonym", "--key-file", v.key, "--batch", v.input, "--out"},
		{"verify", "--orig", orig, "--anon", anon, "--key-file", v.key, "--json"},
	} {
		code, _, se := runDeid(t, append(args, existing)...)
		if code == exitOK || !strings.Contains(se, "--force") {
			t.Errorf("%s over an existing file without --force: exit %d %q", args[0], code, se)
		}
		if b, _ := os.ReadFile(existing); string(b) != "keep me" {
			t.Fatalf("%s replaced an existing file without --force", args[0])
		}
		fresh := filepath.Join(d, args[0]+".new")
		if code, _, se := runDeid(t, append(args, fresh)...); code != exitOK {
			t.Fatalf("%s to a new file: exit %d %s", args[0], code, se)
		}
		if st, err := os.Lstat(fresh); err != nil || st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
			t.Errorf("%s wrote %v (%v), want a regular file of mode 0600", args[0], st.Mode(), err)
		}
	}
	if code, _, se := runDeid(t, "verify", "--orig", orig, "--anon", anon, "--key-file", v.key, "--json", existing, "--force"); code != exitOK {
		t.Fatalf("verify --json --force over an existing file: %s", se)
	}
	if b, _ := os.ReadFile(existing); bytes.Equal(b, []byte("keep me")) {
		t.Error("--force did not replace the file")
	}
	v.unchanged(t)
}

func TestNATSCredsGenerateRefusesLinks(t *testing.T) {
	v := newVictims(t)
	out := t.TempDir()
	if err := os.Symlink(v.key, filepath.Join(out, "nats-server.env")); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runDeid(t, "nats-creds", "generate", "--out", out); code == exitOK {
		t.Error("nats-creds generate wrote through a link at nats-server.env")
	}
	v.unchanged(t)
	// A seed file's name as a link to the key: refused, key kept.
	out2 := t.TempDir()
	os.Symlink(v.key, filepath.Join(out2, "admin.nk"))
	if code, _, _ := runDeid(t, "nats-creds", "generate", "--out", out2); code == exitOK {
		t.Error("nats-creds generate accepted a link as a seed file")
	}
	v.unchanged(t)
	// Run twice: the seeds are kept, the environment file rewritten.
	out3 := t.TempDir()
	for i := 0; i < 2; i++ {
		if code, _, se := runDeid(t, "nats-creds", "generate", "--out", out3); code != exitOK {
			t.Fatalf("generate #%d: %s", i+1, se)
		}
	}
	if st, err := os.Lstat(filepath.Join(out3, "nats-server.env")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("nats-server.env: %v %v", st, err)
	}
}

func TestRunCrosswalkSafety(t *testing.T) {
	root := t.TempDir()
	in := makeInputs(t, sampleInputs[:1])
	v := newVictims(t)
	outDir := filepath.Join(root, "out")
	report := filepath.Join(root, "report.json")
	existing := filepath.Join(root, "existing.csv")
	os.WriteFile(existing, []byte("keep me"), 0o644)
	inBefore := snapshot(t, in)
	for name, target := range v.targets(t, map[string]string{
		"the report":   report,
		"inside --out": filepath.Join(outDir, "cw.csv"),
		"inside --in":  filepath.Join(in, "cw.csv"),
		"a dangling link into --out": func() string {
			p := filepath.Join(root, "d-out")
			os.Symlink(filepath.Join(outDir, "cw.csv"), p)
			return p
		}(),
		"a dangling link into --in": func() string { p := filepath.Join(root, "d-in"); os.Symlink(filepath.Join(in, "cw.csv"), p); return p }(),
		"a link to another file":    func() string { p := filepath.Join(root, "l-other"); os.Symlink(existing, p); return p }(),
		"an existing file":          existing,
	}) {
		t.Run(name, func(t *testing.T) {
			os.RemoveAll(outDir)
			os.Remove(report)
			code, _, stderr := runDeid(t, "run", "--in", in, "--out", outDir, "--key-file", v.key, "--report", report,
				"--crosswalk", target, "--no-progress")
			if code != exitUsage || !strings.Contains(stderr, "--crosswalk") {
				t.Fatalf("exit %d, stderr %q; want a usage error naming --crosswalk", code, stderr)
			}
			mustNotExist(t, outDir)
			mustNotExist(t, report)
		})
	}
	v.unchanged(t)
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("an existing file was replaced")
	}
	if !reflect.DeepEqual(inBefore, snapshot(t, in)) {
		t.Fatal("the input tree changed")
	}
	// With --force an existing regular file is replaced (mode 0600).
	if code, _, se := runDeid(t, "run", "--in", in, "--out", outDir, "--key-file", v.key, "--crosswalk", existing, "--force", "--no-progress"); code != exitOK {
		t.Fatalf("--crosswalk over an existing file with --force: %s", se)
	}
	if st, _ := os.Lstat(existing); st.Mode().Perm() != 0o600 {
		t.Errorf("crosswalk mode %v", st.Mode())
	}
}
