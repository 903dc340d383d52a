package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("lung.yaml", "name: lung\nextends: research\n")
	write("notes.txt", "not a profile")
	var reads []string
	l := &Loader{ReadFile: func(name string) ([]byte, error) {
		reads = append(reads, name)
		return os.ReadFile(name)
	}}
	r, err := l.NewRegistry(RegistryConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(builtinNames(), "lung") {
		if p, err := r.Get(n); err != nil || p.Name != n {
			t.Errorf("Get(%q) = %v, %v", n, p, err)
		}
	}
	reads = nil
	for _, n := range []string{filepath.Join(dir, "lung.yaml"), "/etc/shadow", "lung.yaml", "../lung", "notes", "", "LUNG"} {
		if _, err := r.Get(n); !errors.Is(err, ErrNotRegistered) {
			t.Errorf("Get(%q): %v, want ErrNotRegistered", n, err)
		}
	}
	if len(reads) != 0 {
		t.Errorf("Get read files: %v", reads)
	}

	allowed, err := l.NewRegistry(RegistryConfig{Dir: dir, Allow: []string{"lung", "basic"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(allowed.Names(), ","); got != "basic,lung" {
		t.Errorf("allowed names %s", got)
	}
	if _, err := allowed.Get("research"); !errors.Is(err, ErrNotRegistered) {
		t.Error("a profile left out of the allow-list is served")
	}

	for name, c := range map[string]RegistryConfig{
		"unknown allowed name": {Allow: []string{"nope"}},
		"missing directory":    {Dir: filepath.Join(dir, "absent")},
	} {
		if _, err := l.NewRegistry(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "a.yaml"), []byte("name: b\nextends: basic\n"), 0o600)
	if _, err := l.NewRegistry(RegistryConfig{Dir: bad}); err == nil {
		t.Error("a file whose name is not its profile's name was registered")
	}
	clash := t.TempDir()
	os.WriteFile(filepath.Join(clash, "research.yaml"), []byte("name: research\nextends: basic\n"), 0o600)
	if _, err := l.NewRegistry(RegistryConfig{Dir: clash}); err == nil {
		t.Error("a file shadowing a built-in was registered")
	}
	// The service's own --profile file is registered by its name.
	own := filepath.Join(t.TempDir(), "site.yaml")
	os.WriteFile(own, []byte("name: site\nextends: research\n"), 0o600)
	r2, err := l.NewRegistry(RegistryConfig{Extra: []string{own, "research"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Get("site"); err != nil {
		t.Errorf("--profile file not registered: %v", err)
	}
}
