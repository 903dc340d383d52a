package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		out      string // relative to a fresh temp dir; "" means no --out
		existing string // content of a file already at out, if any
		args     []string
		wantCode int
		newDirs  []string // directories keygen must create, mode 0700
	}{
		{name: "new file", out: "project.key", wantCode: exitOK},
		{name: "name with spaces", out: "my project.key", wantCode: exitOK},
		{name: "missing parent directories", out: "keys/2024/project.key", wantCode: exitOK,
			newDirs: []string{"keys", "keys/2024"}},
		{name: "existing file is not overwritten", out: "project.key", existing: "do not touch\n", wantCode: exitRejected},
		{name: "existing key is not overwritten", out: "project.key", existing: keyA + "\n", wantCode: exitRejected},
		{name: "no --out", wantCode: exitUsage},
		{name: "extra argument", out: "project.key", args: []string{"extra"}, wantCode: exitUsage},
		{name: "unknown flag", out: "project.key", args: []string{"--force"}, wantCode: exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := []string{"keygen"}
			var out string
			if tc.out != "" {
				out = filepath.Join(dir, filepath.FromSlash(tc.out))
				args = append(args, "--out", out)
			}
			args = append(args, tc.args...)
			if tc.existing != "" {
				if err := os.WriteFile(out, []byte(tc.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := runDeid(t, args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr)
			}
			if code != exitOK {
				if stderr == "" {
					t.Error("failure without a message on stderr")
				}
				switch {
				case tc.existing != "":
					got, err := os.ReadFile(out)
					if err != nil || string(got) != tc.existing {
						t.Errorf("existing file changed: %q, %v", got, err)
					}
				case out != "":
					mustNotExist(t, out)
				}
				return
			}
			st, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
			}
			for _, d := range tc.newDirs {
				st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(d)))
				if err != nil {
					t.Fatal(err)
				}
				if !st.IsDir() || st.Mode().Perm() != 0o700 {
					t.Errorf("created directory %s: mode %v, want a directory with mode 0700", d, st.Mode())
				}
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			s := strings.TrimSpace(string(data))
			if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
				t.Errorf("key file holds %q, want 64 hex digits (256 bits)", s)
			}
			if _, err := pseudonym.LoadKeyFile(out); err != nil {
				t.Errorf("the key cannot be loaded back: %v", err)
			}
			if !strings.Contains(stdout, out) {
				t.Errorf("stdout does not name the key file: %q", stdout)
			}
			if strings.Contains(stdout+stderr, s) {
				t.Error("the key itself was printed")
			}
		})
	}
}

// TestKeygenFreshKeys checks that two keys are never the same, and that a
// generated key drives `deid run`.
func TestKeygenFreshKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var keys []string
	for _, n := range []string{"a.key", "b.key"} {
		p := filepath.Join(dir, n)
		if code, _, stderr := runDeid(t, "keygen", "--out", p); code != exitOK {
			t.Fatalf("keygen: exit %d: %s", code, stderr)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(b))
	}
	if keys[0] == keys[1] {
		t.Fatal("two keygen runs wrote the same key")
	}
	in := makeInputs(t, sampleInputs[:1])
	out := filepath.Join(dir, "out")
	if code, _, stderr := runDeid(t, "run", "--in", in, "--out", out, "--key-file", filepath.Join(dir, "a.key")); code != exitOK {
		t.Fatalf("run with a generated key: exit %d: %s", code, stderr)
	}
	if n := len(checkOutputLayout(t, out)); n != 1 {
		t.Errorf("%d outputs, want 1", n)
	}
}

func TestTopLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no arguments", args: nil, wantCode: exitUsage, wantStderr: "Usage:"},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantStdout: "deid run --in DIR --out DIR"},
		{name: "--help", args: []string{"--help"}, wantCode: exitOK, wantStdout: "deid keygen --out FILE"},
		{name: "version", args: []string{"version"}, wantCode: exitOK, wantStdout: "dicomdeid " + Version},
		{name: "--version", args: []string{"--version"}, wantCode: exitOK, wantStdout: "dicomdeid " + Version},
		{name: "unknown command", args: []string{"anonymise"}, wantCode: exitUsage, wantStderr: `unknown command "anonymise"`},
		{name: "profiles without subcommand", args: []string{"profiles"}, wantCode: exitUsage, wantStderr: "want list"},
		{name: "profiles unknown subcommand", args: []string{"profiles", "edit"}, wantCode: exitUsage, wantStderr: `unknown subcommand "edit"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runDeid(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d", code, tc.wantCode)
			}
			if !strings.Contains(stdout, tc.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tc.wantStdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.wantStderr)
			}
			if tc.wantStdout == "" && stdout != "" {
				t.Errorf("unexpected stdout %q", stdout)
			}
		})
	}
}
