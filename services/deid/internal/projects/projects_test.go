package projects

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirStore(t *testing.T) {
	ctx := context.Background()
	s := DirStore{Dir: filepath.Join(t.TempDir(), "projects")}
	if err := s.Create(ctx, "alpha", nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(s.Dir, "alpha.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if dst, _ := os.Stat(s.Dir); dst.Mode().Perm() != 0o700 {
		t.Errorf("store directory mode %v, want 0700", dst.Mode().Perm())
	}
	k1, err := s.Key(ctx, "alpha")
	if err != nil || !k1.Valid() {
		t.Fatalf("key: %v", err)
	}
	if err := s.Create(ctx, "alpha", nil); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists (keys are never replaced)", err)
	}
	if k2, _ := s.Key(ctx, "alpha"); k2.Encode() != k1.Encode() {
		t.Error("the key changed")
	}
	if err := s.Create(ctx, "beta", nil); err != nil {
		t.Fatal(err)
	}
	if kb, _ := s.Key(ctx, "beta"); kb.Encode() == k1.Encode() {
		t.Error("two projects got the same key")
	}
	if names, err := s.List(ctx); err != nil || strings.Join(names, ",") != "alpha,beta" {
		t.Errorf("list %v %v", names, err)
	}
	if _, err := s.Key(ctx, "nope"); !errors.Is(err, ErrNoProject) {
		t.Errorf("unknown project: %v", err)
	}
	for _, bad := range []string{"", "../x", "a b", strings.Repeat("x", 65)} {
		if err := s.Create(ctx, bad, nil); !errors.Is(err, ErrName) {
			t.Errorf("project name %q accepted", bad)
		}
	}
	// A store others can read is refused.
	os.Chmod(s.Dir, 0o755)
	if _, err := s.Key(ctx, "alpha"); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("open store: %v", err)
	}
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	s := DirStore{Dir: filepath.Join(t.TempDir(), "p")}
	table := "patient_id,issuer_of_patient_id,research_id\nMRN1,,R-001\nMRN2,HOSP-A,R-002\n"
	if err := s.Create(ctx, "gamma", strings.NewReader(table)); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lookup(ctx, "gamma")
	if err != nil || l == nil || l.Rows != 2 {
		t.Fatalf("lookup %v %v", l, err)
	}
	cases := []struct {
		id, issuer, want string
		ok               bool
	}{
		{"MRN1", "", "R-001", true},
		{"MRN1", "ANY", "R-001", true}, // a row without issuer matches any
		{"MRN2", "HOSP-A", "R-002", true},
		{"MRN2", "HOSP-B", "", false},
		{"MRN3", "", "", false},
	}
	for _, c := range cases {
		got, ok := l.ResearchID(c.id, c.issuer)
		if got != c.want || ok != c.ok {
			t.Errorf("ResearchID(%s, %s) = %q %v, want %q %v", c.id, c.issuer, got, ok, c.want, c.ok)
		}
	}
	if l, _ := s.Lookup(ctx, "none"); l != nil {
		t.Error("a project without a table has one")
	}
	bad := []struct{ name, csv, want string }{
		{"no header", "MRN1,R-1\n", "header"},
		{"empty research id", "patient_id,research_id\nMRN-SECRET-9,\n", "line 2"},
		{"one research id, two patients", "patient_id,research_id\nMRN-A,R-1\nMRN-B,R-1\n", "line 3"},
	}
	for _, b := range bad {
		_, err := ParseLookup(strings.NewReader(b.csv))
		if err == nil || !strings.Contains(err.Error(), b.want) || strings.Contains(err.Error(), "MRN") {
			t.Errorf("%s: error %v, want one mentioning %q and no value", b.name, err, b.want)
		}
	}
	if err := s.Create(ctx, "delta", strings.NewReader("nonsense")); err == nil {
		t.Error("a project was created with an unreadable lookup table")
	}
}
