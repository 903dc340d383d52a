package verify

import (
	"bytes"
	"testing"
)

// Only the escape sequences of an ISO 2022 encoding are cut to make
// shorter forms of a value, and only a final return that follows a
// designation: from fuzzing, a name read without a known character set
// held a literal ESC ("00\x1b0A"), was cut to "00" and found in every
// value with two zeros in a row.
func TestEscapeForms(t *testing.T) {
	const jis = "\x1b$B;3ED\x1b(B" // 山田 in ISO 2022 IR 87
	cases := []struct {
		name    string
		in      string
		iso2022 bool
		want    []string
	}{
		{"no escape", "Kowalski", true, []string{"Kowalski"}},
		{"JIS X 0208 text and its return", jis, true, []string{jis, "\x1b$B;3ED"}},
		{"long enough without escapes", "\x1b$B;3ED;R\x1b(B", true, []string{"\x1b$B;3ED;R\x1b(B", "\x1b$B;3ED;R", ";3ED;R"}},
		{"literal ESC outside ISO 2022", "00\x1b0A", false, []string{"00\x1b0A"}},
		{"literal ESC outside ISO 2022, long", "Kowalski\x1b(B", false, []string{"Kowalski\x1b(B"}},
		{"designation near the end is not a return", "Al\x1b-A\xfc", true, []string{"Al\x1b-A\xfc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := escapeForms([]byte(c.in), c.iso2022)
			if len(got) != len(c.want) {
				t.Fatalf("escapeForms(%q) = %q, want %q", c.in, got, c.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], []byte(c.want[i])) {
					t.Fatalf("escapeForms(%q) = %q, want %q", c.in, got, c.want)
				}
			}
		})
	}
}

// The same through Collect and Scan: a name with a literal ESC, in a file
// whose character set is unknown, is looked for whole.
func TestLiteralEscapeInName(t *testing.T) {
	in := file(t, v(tCharset, "CS", "NOT A CHARSET"), v(tName, "PN", "00\x1b0A^Kowalska"))
	cases := []struct {
		name  string
		out   []el
		found bool
	}{
		{"digits of a kept code", []el{v(0x00080100, "SH", "0000000000")}, false},
		{"the name component itself", []el{v(tComments, "LT", "see 00\x1b0A here")}, true},
		{"another component", []el{v(tComments, "LT", "Kowalska")}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := findings(t, Policy{}, in, file(t, c.out...))
			if (len(fs) > 0) != c.found {
				t.Errorf("found=%v, want %v (%v)", len(fs) > 0, c.found, fs)
			}
		})
	}
}
