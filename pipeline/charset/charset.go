// Package charset implements DICOM Specific Character Set (0008,0005)
// handling for the de-identification engine.
//
// The engine keeps every original byte of a dataset. It only needs to
//
//   - decode text values into Go strings, so that identifying values can be
//     searched for (matching itself happens elsewhere), and
//   - encode replacement text (a value with identifying parts redacted) back
//     into the dataset's character set.
//
// Decoding is deliberately lenient: it never fails, because a value we cannot
// read is a value we cannot check for identifying data, and a best-effort
// string still lets most of it be matched. Bytes that have no meaning in the
// declared set become U+FFFD. Encoding is strict: it fails rather than write
// bytes that a conformant reader would decode to something else.
//
// The reference behaviour is pydicom's charset module (PS3.3 C.12.1.1.2,
// PS3.5 6.1). Deliberate differences from pydicom are listed at Set.Decode
// and Set.Encode.
package charset

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// mode says how a Set maps bytes to characters.
type mode uint8

const (
	// modeDefault is ISO-IR 6 without code extensions (no or empty (0008,0005)).
	modeDefault mode = iota
	// modeSingle is one ISO 8859-like single-byte set without code extensions:
	// ASCII in GL, C1 controls, one 96-character set in GR.
	modeSingle
	// modeJISX0201 is ISO_IR 13 without code extensions.
	modeJISX0201
	// modeUTF8 is ISO_IR 192.
	modeUTF8
	// modeGB18030 is GB18030.
	modeGB18030
	// modeGBK is GBK.
	modeGBK
	// modeISO2022 is any set using ISO 2022 code extensions (PS3.5 6.1.2.5).
	modeISO2022
)

// termDef describes one defined term of (0008,0005).
type termDef struct {
	mode mode   // mode when the term is the only value
	iso  bool   // the "ISO 2022 ..." form, i.e. it announces code extensions
	g0   elemID // code element it puts in G0, elNone if it keeps the default
	g1   elemID // code element it puts in G1, elNone if none
}

// definedTerms maps the defined terms of PS3.3 Tables C.12-2..C.12-5 to
// their code elements. It is read-only.
var definedTerms = map[string]termDef{
	"ISO_IR 6":   {mode: modeDefault, g0: elASCII},
	"ISO_IR 100": {mode: modeSingle, g0: elASCII, g1: elLatin1},
	"ISO_IR 101": {mode: modeSingle, g0: elASCII, g1: elLatin2},
	"ISO_IR 109": {mode: modeSingle, g0: elASCII, g1: elLatin3},
	"ISO_IR 110": {mode: modeSingle, g0: elASCII, g1: elLatin4},
	"ISO_IR 144": {mode: modeSingle, g0: elASCII, g1: elCyrillic},
	"ISO_IR 127": {mode: modeSingle, g0: elASCII, g1: elArabic},
	"ISO_IR 126": {mode: modeSingle, g0: elASCII, g1: elGreek},
	"ISO_IR 138": {mode: modeSingle, g0: elASCII, g1: elHebrew},
	"ISO_IR 148": {mode: modeSingle, g0: elASCII, g1: elLatin5},
	"ISO_IR 203": {mode: modeSingle, g0: elASCII, g1: elLatin9},
	"ISO_IR 166": {mode: modeSingle, g0: elASCII, g1: elThai},
	"ISO_IR 13":  {mode: modeJISX0201, g0: elJISRoman, g1: elKatakana},
	"ISO_IR 192": {mode: modeUTF8},
	"GB18030":    {mode: modeGB18030},
	"GBK":        {mode: modeGBK},

	"ISO 2022 IR 6":   {mode: modeISO2022, iso: true, g0: elASCII},
	"ISO 2022 IR 100": {mode: modeISO2022, iso: true, g0: elASCII, g1: elLatin1},
	"ISO 2022 IR 101": {mode: modeISO2022, iso: true, g0: elASCII, g1: elLatin2},
	"ISO 2022 IR 109": {mode: modeISO2022, iso: true, g0: elASCII, g1: elLatin3},
	"ISO 2022 IR 110": {mode: modeISO2022, iso: true, g0: elASCII, g1: elLatin4},
	"ISO 2022 IR 144": {mode: modeISO2022, iso: true, g0: elASCII, g1: elCyrillic},
	"ISO 2022 IR 127": {mode: modeISO2022, iso: true, g0: elASCII, g1: elArabic},
	"ISO 2022 IR 126": {mode: modeISO2022, iso: true, g0: elASCII, g1: elGreek},
	"ISO 2022 IR 138": {mode: modeISO2022, iso: true, g0: elASCII, g1: elHebrew},
	"ISO 2022 IR 148": {mode: modeISO2022, iso: true, g0: elASCII, g1: elLatin5},
	"ISO 2022 IR 203": {mode: modeISO2022, iso: true, g0: elASCII, g1: elLatin9},
	"ISO 2022 IR 166": {mode: modeISO2022, iso: true, g0: elASCII, g1: elThai},
	"ISO 2022 IR 13":  {mode: modeISO2022, iso: true, g0: elJISRoman, g1: elKatakana},
	"ISO 2022 IR 87":  {mode: modeISO2022, iso: true, g0: elJIS0208},
	"ISO 2022 IR 159": {mode: modeISO2022, iso: true, g0: elJIS0212},
	"ISO 2022 IR 149": {mode: modeISO2022, iso: true, g1: elKSX1001},
	"ISO 2022 IR 58":  {mode: modeISO2022, iso: true, g1: elGB2312},
}

// Set is a parsed Specific Character Set. It is immutable and safe for
// concurrent use.
type Set struct {
	terms []string // normalised terms, as they would be written in (0008,0005)
	mode  mode

	// single is the GR set of modeSingle.
	single elemID

	// For modeISO2022: the state at the start of a value and after each
	// reset point (value 1 of (0008,0005), PS3.5 6.1.2.5.3), and the code
	// elements the set declares, in the order of its values. Encode only
	// ever designates declared elements.
	init     state
	declared []elemID
}

// state is the pair of code elements designated to G0 and G1.
type state struct{ g0, g1 elemID }

// UnknownTermError reports a (0008,0005) value that is not a supported
// defined term. Term is the offending value; it is the only variable part of
// the message, so the error can be logged without leaking patient data.
type UnknownTermError struct {
	Term string
}

// Error implements error.
func (e *UnknownTermError) Error() string {
	return fmt.Sprintf("charset: unknown Specific Character Set defined term %q", e.Term)
}

// maxTermInError bounds how much of a bad term goes into an error message:
// a CS value is at most 16 characters, anything longer is garbage that need
// not be repeated in full in a log.
const maxTermInError = 64

// Default returns the default character repertoire (ISO-IR 6), the set that
// applies when (0008,0005) is absent or empty. It is a function rather than a
// package variable so that no caller can replace it.
func Default() *Set {
	return &Set{mode: modeDefault}
}

// Parse takes the values of (0008,0005), already split on '\' (surrounding
// spaces are trimmed again here). An empty list or [""] is the default
// repertoire ISO-IR 6. An empty value 1 in a multi-valued set means
// ISO 2022 IR 6, as in "\ISO 2022 IR 87".
//
// Like pydicom, Parse accepts two common misspellings ("ISO IR 100",
// "ISO-2022-IR-87") and is lenient about illegal combinations: a stand-alone
// set (ISO_IR 192, GB18030, GBK) as value 1 makes further values be ignored,
// and one in a later value is dropped; a non-ISO-2022 term in a multi-valued
// set is treated as its ISO 2022 form. Any other unknown term is an
// *UnknownTermError.
func Parse(terms []string) (*Set, error) {
	norm := make([]string, 0, len(terms))
	for _, t := range terms {
		norm = append(norm, normaliseTerm(t))
	}
	if len(norm) == 0 || (len(norm) == 1 && norm[0] == "") {
		return &Set{terms: norm, mode: modeDefault}, nil
	}

	defs := make([]termDef, len(norm))
	for i, t := range norm {
		if t == "" && i == 0 {
			defs[i] = definedTerms["ISO 2022 IR 6"]
			continue
		}
		d, ok := definedTerms[t]
		if !ok {
			if len(t) > maxTermInError {
				t = t[:maxTermInError]
			}
			return nil, &UnknownTermError{Term: t}
		}
		defs[i] = d
	}

	if len(norm) == 1 || isStandAlone(defs[0].mode) {
		d := defs[0]
		s := &Set{terms: norm[:1], mode: d.mode}
		switch d.mode {
		case modeSingle:
			s.single = d.g1
		case modeISO2022:
			s.setUp2022(defs[:1])
		}
		return s, nil
	}

	keptTerms := norm[:1]
	keptDefs := defs[:1]
	for i := 1; i < len(norm); i++ {
		if isStandAlone(defs[i].mode) {
			continue
		}
		keptTerms = append(keptTerms, norm[i])
		keptDefs = append(keptDefs, defs[i])
	}
	s := &Set{terms: keptTerms, mode: modeISO2022}
	s.setUp2022(keptDefs)
	return s, nil
}

func isStandAlone(m mode) bool {
	return m == modeUTF8 || m == modeGB18030 || m == modeGBK
}

// setUp2022 derives the initial state and the declared code elements.
func (s *Set) setUp2022(defs []termDef) {
	first := defs[0]
	s.init = state{g0: elASCII, g1: first.g1}
	// A multi-byte G0 set as value 1 is not allowed (PS3.3 C.12.1.1.2); if a
	// file does it anyway, text starts in ASCII, as in pydicom.
	if first.g0 == elJISRoman {
		s.init.g0 = elJISRoman
	}
	add := func(id elemID) {
		if id == elNone {
			return
		}
		for _, d := range s.declared {
			if d == id {
				return
			}
		}
		s.declared = append(s.declared, id)
	}
	add(s.init.g0)
	add(s.init.g1)
	for _, d := range defs {
		add(d.g0)
		add(d.g1)
	}
}

// normaliseTerm trims padding and fixes the misspellings pydicom accepts, so
// that files written by sloppy software still decode.
func normaliseTerm(t string) string {
	t = strings.ToUpper(strings.Trim(t, " \x00"))
	switch {
	case len(t) > 6 && strings.HasPrefix(t, "ISO") && t[3] != '_' && t[4:6] == "IR":
		// "ISO IR 100", "ISO-IR 100" -> "ISO_IR 100"
		if _, ok := definedTerms["ISO_IR"+t[6:]]; ok {
			return "ISO_IR" + t[6:]
		}
	case len(t) > 12 && strings.HasPrefix(t, "ISO") && t[4:8] == "2022" && t[9:11] == "IR" &&
		!strings.HasPrefix(t, "ISO 2022 IR "):
		// "ISO_2022_IR_87", "ISO-2022-IR-87" -> "ISO 2022 IR 87"
		if _, ok := definedTerms["ISO 2022 IR "+t[12:]]; ok {
			return "ISO 2022 IR " + t[12:]
		}
	}
	return t
}

// Terms returns the normalised defined terms as they would be written in
// (0008,0005) (values ignored by Parse are left out). It is empty for the
// default repertoire parsed from an empty list. The slice is a copy.
func (s *Set) Terms() []string {
	return append([]string(nil), s.terms...)
}

// IsDefault reports whether the set is plain ASCII (ISO-IR 6) with no other
// code element declared, i.e. no text in it needs any conversion.
func (s *Set) IsDefault() bool {
	if s.mode == modeDefault {
		return true
	}
	if s.mode != modeISO2022 {
		return false
	}
	for _, id := range s.declared {
		if id != elASCII {
			return false
		}
	}
	return true
}

// UsesCodeExtensions reports whether text in this set may contain ISO 2022
// escape sequences, in which case bytes cannot be compared or spliced without
// tracking the designation state.
func (s *Set) UsesCodeExtensions() bool {
	return s.mode == modeISO2022
}

// String describes the set for logs, e.g. `ISO 2022 IR 13\ISO 2022 IR 87`.
func (s *Set) String() string {
	if s.mode == modeDefault && (len(s.terms) == 0 || s.terms[0] == "") {
		return "ISO_IR 6 (default)"
	}
	return strings.Join(s.terms, `\`)
}

// vrClass groups VRs by which bytes reset ISO 2022 designations.
type vrClass uint8

const (
	// vrMulti: SH, LO, UC, and the ASCII VRs: '\' separates values.
	vrMulti vrClass = iota
	// vrSingle: ST, LT, UT, UR: always one value, '\' is an ordinary character.
	vrSingle
	// vrPN: '\' separates values, '=' groups and '^' components.
	vrPN
)

func classify(vr string) vrClass {
	switch strings.ToUpper(vr) {
	case "PN":
		return vrPN
	case "ST", "LT", "UT", "UR":
		return vrSingle
	}
	return vrMulti
}

// isControlReset reports the control characters before which the initial
// designations must be active for every VR (PS3.5 6.1.2.5.3): CR, LF, FF, TAB.
func isControlReset(c byte) bool {
	return c == '\r' || c == '\n' || c == '\f' || c == '\t'
}

// isDelimiter reports the printable characters that, read while a
// single-byte set is in G0, end a value or PN component and so reset the
// designations. encode is true when choosing where Encode returns to the
// initial state: it then also treats '\' in ST/LT/UT as a reset point, which
// costs a few escape bytes but keeps the output readable by decoders that
// reset at '\' for every VR.
func (c vrClass) isDelimiter(b byte, encode bool) bool {
	switch b {
	case '\\':
		return c != vrSingle || encode
	case '^', '=':
		return c == vrPN
	}
	return false
}

// invalidAt tells, for a RuneError met while ranging over text, whether it is
// invalid UTF-8 (true) or a genuine U+FFFD in the text (false).
func invalidAt(text string, off int) bool {
	r, size := utf8.DecodeRuneInString(text[off:])
	return r == utf8.RuneError && size <= 1
}
