package deid

import "testing"

// Cleaned text loses whatever the verifier would find in it: the bounds
// of a match are the verifier's (numbers may touch letters, short words
// may touch non-ASCII letters), and taking one value out can expose
// another (from fuzzing: "000000m$&" kept "m$&", a Discharge Date, once
// "000000" was gone).
func TestRedactBounds(t *testing.T) {
	word := needle{runes: []rune("lee"), bound: boundWord}
	date := needle{runes: []rune("19450321"), bound: boundNumber}
	zeros := needle{runes: []rune("000000"), bound: boundNumber}
	odd := needle{runes: []rune("m$&"), bound: boundNumber}
	cases := []struct {
		text    string
		needles []needle
		want    string
	}{
		{"patient Lee moved", []needle{word}, "patient *** moved"},
		{"asleep", []needle{word}, "asleep"},
		{"Leeé", []needle{word}, "***é"},
		{"\u212Alee", []needle{word}, "\u212A***"}, // KELVIN SIGN lower-cases to an ASCII k
		{"DOB19450321", []needle{date}, "DOB***"},
		{"119450321", []needle{date}, "119450321"},
		{"0.19450321", []needle{date}, "0.19450321"},
		{"19450321.5", []needle{date}, "19450321.5"},
		{"19450321.", []needle{date}, "***."},
		{"000000m$&A00", []needle{zeros, odd}, "******A00"},
		{"m$&000000", []needle{odd, zeros}, "******"},
	}
	for _, c := range cases {
		if got, _ := redact(c.text, c.needles); got != c.want {
			t.Errorf("redact(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}
