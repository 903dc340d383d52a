package verify

import (
	"bytes"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/charset"
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

// A JIS X 0208 value with its escape sequences cut ("$?$m$&" for たろう)
// spells the value only where a two-byte set is in G0; elsewhere the same
// bytes are ASCII. From fuzzing: a kept comment "000$?$m$&000", plain
// ASCII to every reader, was reported as the patient's given name.
func TestBareJISTextOnlyInTwoByteG0(t *testing.T) {
	jp, _ := charset.Parse([]string{"", "ISO 2022 IR 87"})
	name, err := jp.Encode("やまだ^たろう", "PN")
	if err != nil {
		t.Fatal(err)
	}
	in := file(t, input(`\ISO 2022 IR 87`, string(name))...)
	cases := []struct {
		name, comment string
		found         bool
	}{
		{"ASCII text, no escape", "000$?$m$&000", false},
		{"after a return to ASCII", "\x1b$B<3<T\x1b(B $?$m$&", false},
		{"inside JIS text begun earlier", "\x1b$B<3<T$?$m$&\x1b(B", true},
		{"a G1 designation leaves JIS in G0", "\x1b$B<3<T\x1b)I$?$m$&\x1b(B", true},
		{"JIS left active across a line end (read cautiously)", "\x1b$B<3<T\r\n$?$m$&", true},
		{"after an unknown two-byte designation", "\x1b$@$?$m$&\x1b(B", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := file(t, v(tCharset, "CS", `\ISO 2022 IR 87`), v(tComments, "LT", c.comment))
			fs, _ := findings(t, Policy{}, in, out)
			if (len(fs) > 0) != c.found {
				t.Errorf("found=%v, want %v (%v)", len(fs) > 0, c.found, fs)
			}
		})
	}
}
