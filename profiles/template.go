package profiles

import (
	"fmt"
	"strconv"
	"strings"
)

// Placeholder limits, the same as pseudonym.Format enforces at run time:
// 26 base32 characters carry 130 bits, more than the keyed hash needs to
// stay collision-free, and 20 digits are what a 64-bit slice of it gives.
const (
	maxHashChars  = 26
	maxDigitChars = 20
)

// template is a parsed pseudonym or replacement template.
type template struct {
	segs         []segment
	placeholders int
}

// segment is literal text or one placeholder ({hash:N} or {digits:N}).
type segment struct {
	lit  string
	kind string // "hash" or "digits"; "" for literal text
	n    int
}

// parseTemplate checks the syntax of a template. It reports the first
// problem only: a template is one short string, so one message is enough
// to fix it.
func parseTemplate(s string) (template, error) {
	var t template
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			t.segs = append(t.segs, segment{lit: rest})
			break
		}
		if i > 0 {
			t.segs = append(t.segs, segment{lit: rest[:i]})
		}
		if rest[i] == '}' {
			return t, fmt.Errorf("'}' without '{' at offset %d", len(s)-len(rest)+i)
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return t, fmt.Errorf("unclosed '{' at offset %d", len(s)-len(rest)+i)
		}
		ph := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		kind, num, ok := strings.Cut(ph, ":")
		if !ok || (kind != "hash" && kind != "digits") {
			return t, fmt.Errorf("unknown placeholder {%s} (want {hash:N} or {digits:N})", ph)
		}
		n, err := strconv.Atoi(num)
		if err != nil || num == "" || num[0] < '0' || num[0] > '9' {
			return t, fmt.Errorf("placeholder {%s}: N must be a number", ph)
		}
		limit := maxHashChars
		if kind == "digits" {
			limit = maxDigitChars
		}
		if n < 1 || n > limit {
			return t, fmt.Errorf("placeholder {%s}: N must be 1..%d", ph, limit)
		}
		t.segs = append(t.segs, segment{kind: kind, n: n})
		t.placeholders++
	}
	for _, sg := range t.segs {
		if sg.kind != "" {
			continue
		}
		for _, r := range sg.lit {
			// Only the default repertoire is safe: the engine does not
			// change Specific Character Set for a replaced value, and a
			// backslash would split the value into several.
			if r < 0x20 || r > 0x7E {
				return t, fmt.Errorf("character %q not allowed (printable ASCII only)", r)
			}
			if r == '\\' {
				return t, fmt.Errorf("backslash not allowed (it separates values in DICOM)")
			}
		}
	}
	return t, nil
}

// maxLen is the longest string the template can render to.
func (t template) maxLen() int {
	n := 0
	for _, sg := range t.segs {
		if sg.kind == "" {
			n += len(sg.lit)
		} else {
			n += sg.n
		}
	}
	return n
}

// literals is all literal text of the template.
func (t template) literals() string {
	var b strings.Builder
	for _, sg := range t.segs {
		b.WriteString(sg.lit)
	}
	return b.String()
}

// pnGroups is the longest rendering of each PN component group ('='
// separated; placeholders never render '=') and the number of '^'
// component separators in each.
func (t template) pnGroups() (lens, carets []int) {
	lens, carets = []int{0}, []int{0}
	for _, sg := range t.segs {
		if sg.kind != "" {
			lens[len(lens)-1] += sg.n
			continue
		}
		for _, r := range sg.lit {
			switch r {
			case '=':
				lens, carets = append(lens, 0), append(carets, 0)
				continue
			case '^':
				carets[len(carets)-1]++
			}
			lens[len(lens)-1]++
		}
	}
	return lens, carets
}

// vrMaxLen is the maximum value length of the text VRs of PS3.5 Table
// 6.2-1 (PN: per component group), 0 for VRs without a practical limit.
func vrMaxLen(vr string) int {
	switch vr {
	case "AS":
		return 4
	case "DA":
		return 8
	case "IS":
		return 12
	case "TM":
		return 14
	case "AE", "CS", "DS", "SH":
		return 16
	case "DT":
		return 26
	case "LO", "PN", "UI":
		return 64
	case "ST":
		return 1024
	case "LT":
		return 10240
	}
	return 0
}

// fitsVR checks that every rendering of t is a valid length for vr (and,
// for the VRs with a restricted repertoire that a hash could break, valid
// characters). It returns "" when it fits.
func (t template) fitsVR(vr string) string {
	switch vr {
	case "PN":
		lens, carets := t.pnGroups()
		if len(lens) > 3 {
			return fmt.Sprintf("PN has at most 3 component groups ('=' separated), template has %d", len(lens))
		}
		for i, l := range lens {
			if l > 64 {
				return fmt.Sprintf("renders up to %d characters in PN component group %d, VR PN allows 64", l, i+1)
			}
			if carets[i] > 4 {
				return fmt.Sprintf("PN component group %d has %d components ('^' separated), at most 5 allowed", i+1, carets[i]+1)
			}
		}
		return ""
	case "UI":
		for _, sg := range t.segs {
			if sg.kind == "hash" {
				return "a UI value holds digits and dots only: use {digits:N}, not {hash:N}"
			}
		}
		if strings.Trim(t.literals(), "0123456789.") != "" {
			return "a UI value holds digits and dots only"
		}
	case "CS":
		if strings.Trim(t.literals(), "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _") != "" {
			return "a CS value holds upper-case letters, digits, space and '_' only"
		}
	}
	if m := vrMaxLen(vr); m > 0 && t.maxLen() > m {
		return fmt.Sprintf("renders up to %d characters, VR %s allows %d", t.maxLen(), vr, m)
	}
	return ""
}
