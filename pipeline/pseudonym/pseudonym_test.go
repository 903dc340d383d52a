package pseudonym

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func key(t *testing.T, b byte) Key {
	t.Helper()
	k, err := ParseKey([]byte(strings.Repeat(string([]byte{'0' + b%10}), 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var uidRE = regexp.MustCompile(`^2\.25\.(0|[1-9][0-9]*)$`)

func TestUIDDeterministicValidAndKeyed(t *testing.T) {
	p1, _ := New(key(t, 1))
	p1b, _ := New(key(t, 1))
	p2, _ := New(key(t, 2))
	for _, in := range []string{"1.2.3", "1.2.826.0.1.3680043.2.1125.1.88283567125017766373928311689895890", "", "x"} {
		a, b, c := p1.UID(in), p1b.UID(in), p2.UID(in)
		if a != b {
			t.Errorf("same key, same input gave %s and %s", a, b)
		}
		if a == c {
			t.Errorf("different keys gave the same UID %s", a)
		}
		if !uidRE.MatchString(a) || len(a) > 64 {
			t.Errorf("invalid UID %q", a)
		}
	}
	if p1.UID("1.2.3") == p1.UID("1.2.4") {
		t.Error("different inputs collide")
	}
}

func TestFormat(t *testing.T) {
	p, _ := New(key(t, 3))
	cases := []struct {
		tmpl string
		re   string
		err  bool
	}{
		{"ANON{hash:12}", `^ANON[A-Z2-7]{12}$`, false},
		{"P-{digits:8}", `^P-[0-9]{8}$`, false},
		{"{hash:26}", `^[A-Z2-7]{26}$`, false},
		{"{hash:27}", ``, true},
		{"{digits:0}", ``, true},
		{"{hash:3", ``, true},
		{"{bogus:3}", ``, true},
	}
	for _, c := range cases {
		got, err := p.Format(c.tmpl, "patient", "12345")
		if c.err {
			if err == nil {
				t.Errorf("%s: want error", c.tmpl)
			}
			continue
		}
		if err != nil || !regexp.MustCompile(c.re).MatchString(got) {
			t.Errorf("%s: got %q, %v", c.tmpl, got, err)
		}
		again, _ := p.Format(c.tmpl, "patient", "12345")
		other, _ := p.Format(c.tmpl, "patient", "12346")
		if again != got || other == got {
			t.Errorf("%s: not deterministic or not input-dependent", c.tmpl)
		}
	}
	a, _ := p.Format("{hash:12}", "patient", "1")
	b, _ := p.Format("{hash:12}", "other", "1")
	if a == b {
		t.Error("domains are not separated")
	}
}

func TestDayShift(t *testing.T) {
	p, _ := New(key(t, 4))
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		id := string(rune('A'+i%26)) + strings.Repeat("x", i)
		d := p.DayShift(id, 10, 20)
		if d > -10 || d < -20 {
			t.Fatalf("shift %d outside [-20,-10]", d)
		}
		if d != p.DayShift(id, 10, 20) {
			t.Fatal("not deterministic")
		}
		seen[d] = true
	}
	if len(seen) < 5 {
		t.Errorf("shift barely varies: %v", seen)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "project.key")
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode().Perm())
	}
	if err := WriteKeyFile(path, k); err == nil {
		t.Error("overwrote an existing key file")
	}
	k2, err := LoadKeyFile(path)
	if err != nil || k2.Encode() != k.Encode() {
		t.Fatalf("reload: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadKeyFile(path); err == nil || strings.Contains(err.Error(), k.Encode()) {
		t.Errorf("world-readable key accepted or error shows the key: %v", err)
	}
	if _, err := ParseKey([]byte("abcd")); err == nil {
		t.Error("short key accepted")
	}
	if _, err := New(Key{}); err == nil {
		t.Error("no key, yet a pseudonymizer")
	}
}

// Index keys are keyed: the same key gives the same index key on every
// worker, another key or another domain another one, and none is the
// bare SHA-256 a reader could compute from a guess.
func TestIndexer(t *testing.T) {
	a, _ := ParseKey([]byte(strings.Repeat("ab", 32)))
	b, _ := ParseKey([]byte(strings.Repeat("cd", 32)))
	ia, err := NewIndexer(a)
	if err != nil {
		t.Fatal(err)
	}
	ia2, _ := NewIndexer(a)
	ib, _ := NewIndexer(b)
	k := ia.Key("accession", "2")
	bare := sha256.Sum256([]byte("2"))
	switch {
	case len(k) != 32:
		t.Errorf("index key %q: want 32 hex digits", k)
	case k != ia2.Key("accession", "2"):
		t.Error("the same key gave two index keys")
	case k == ib.Key("accession", "2"):
		t.Error("two project keys gave the same index key")
	case k == ia.Key("study", "2"):
		t.Error("two domains gave the same index key")
	case strings.HasPrefix(hex.EncodeToString(bare[:]), k):
		t.Error("the index key is the bare SHA-256")
	}
	p, _ := New(a)
	if strings.Contains(p.UID("2"), k) {
		t.Error("an index key shares its bits with a pseudonym")
	}
	if _, err := NewIndexer(Key{}); err == nil {
		t.Error("an indexer without a key")
	}
}
