package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	d := t.TempDir()
	read := filepath.Join(d, "read.txt")
	os.WriteFile(read, []byte("read me"), 0o600)
	key := filepath.Join(d, "p.key")
	os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	seed := filepath.Join(d, "x.nk")
	os.WriteFile(seed, []byte("# c\nSUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU\n"), 0o600)
	other := filepath.Join(d, "other.txt")
	os.WriteFile(other, []byte("old"), 0o644)
	os.Symlink(other, filepath.Join(d, "link"))
	os.Symlink(filepath.Join(d, "nowhere"), filepath.Join(d, "dangling"))
	os.Link(read, filepath.Join(d, "hard"))
	os.Mkdir(filepath.Join(d, "dir"), 0o700)
	protect := []Protected{{Path: read, What: "input"}}
	for _, tc := range []struct {
		name    string
		replace bool
		want    string // "" for written
	}{
		{"new", false, ""},
		{"other.txt", false, "exists"},
		{"other.txt", true, ""},
		{"link", true, "symbolic link"},
		{"dangling", true, "symbolic link"},
		{"read.txt", true, "is the input"},
		{"hard", true, "is the input"},
		{"p.key", true, "a project key"},
		{"x.nk", true, "NATS credentials"},
		{"dir", true, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(d, tc.name)
			err := WriteBytes(p, Options{Replace: tc.replace, Protect: protect}, []byte("new"))
			if tc.want == "" {
				b, _ := os.ReadFile(p)
				st, _ := os.Lstat(p)
				if err != nil || string(b) != "new" || st.Mode().Perm() != 0o600 {
					t.Fatalf("%v, %q, mode %v: want written with mode 0600", err, b, st.Mode())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	for p, want := range map[string]string{read: "read me", other: "new", filepath.Join(d, "nowhere"): ""} {
		b, err := os.ReadFile(p)
		if string(b) != want || want == "" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s holds %q, want %q", filepath.Base(p), b, want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(d, ".deid-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
