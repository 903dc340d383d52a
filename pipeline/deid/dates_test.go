package deid

import "testing"

// A DT value of reduced precision with an impossible month is not a date:
// it fails (the caller empties the value) instead of panicking.
func TestShiftDTRange(t *testing.T) {
	cases := []struct {
		in   string
		days int
		want string
		ok   bool
	}{
		{"20240315", -10, "20240305", true},
		{"20240315123000.5-0500", -10, "20240305123000.5-0500", true},
		{"202403", -1, "202402", true},
		{"2024", -1, "2023", true},
		{"20240101-20240201", -1, "20231231-20240131", true},
		{"201399", -472, "", false}, // month 99
		{"202500", -1, "", false},   // month 00
		{"202413-202401", -1, "", false},
		{"-202400", -1, "", false},
		{"2024x", -1, "", false},
		{"", -1, "", false},
	}
	for _, c := range cases {
		got, ok := shiftDTRange(c.in, c.days)
		if got != c.want || ok != c.ok {
			t.Errorf("shiftDTRange(%q, %d) = %q, %v; want %q, %v", c.in, c.days, got, ok, c.want, c.ok)
		}
	}
}

func TestValidTMRange(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"10", true}, {"1015", true}, {"101500", true}, {"101500.1", true}, {"235960.123456", true},
		{"10:15", true}, {"10:15:00", true}, {"10:15:00.5", true},
		{"101500-111500", true}, {"-1115", true}, {"10-", true},
		{"", false}, {"-", false}, {"1", false}, {"101", false}, {"2400", false}, {"1060", false},
		{"101561", false}, {"1015.5", false}, {"101500.", false}, {"101500.1234567", false},
		{"10:1500", false}, {"10:15:", false}, {"1015-16-17", false},
		{"00$?$m$&0000", false}, {"KOWAL", false},
	}
	for _, c := range cases {
		if got := validTMRange(c.in); got != c.ok {
			t.Errorf("validTMRange(%q) = %v, want %v", c.in, got, c.ok)
		}
	}
}

// Under Retain Longitudinal Temporal Information with Modified Dates a
// time stays as it is, and a TM value that is not a time is emptied
// (from fuzzing: a Discharge Time holding a name was kept whole).
func TestTimeKeptOnlyWhenATime(t *testing.T) {
	const tStudyTime = 0x00080030
	cases := []struct{ in, want string }{
		{"101500", "101500"},
		{`101500.25\1016`, `101500.25\1016`},
		{"10:15:00", "10:15:00"},
		{"Wojciechowska", ""},
		{"00$?$m$&000000", ""},
		{`101500\KOWAL`, ""},
	}
	e := newEngine(t, researchProfile(), 3)
	for _, c := range cases {
		var els []el
		for _, x := range sampleCT("PID-TM-000042", "1.2.826.0.1.999.1.2.9") {
			if x.tag != tStudyTime {
				els = append(els, x)
			}
		}
		out, _ := deidBytes(t, e, buildFile(t, false, append(els, s(tStudyTime, "TM", c.in))))
		if got, ok := parse(t, out).str(tStudyTime); !ok || got != c.want {
			t.Errorf("Study Time %q: written %q (present %v), want %q", c.in, got, ok, c.want)
		}
	}
}
