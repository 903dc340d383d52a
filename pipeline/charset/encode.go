package charset

import (
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// EncodeError reports text that Encode cannot write in a set. It carries the
// byte offset in the input, never the text itself, so it can be logged
// without leaking patient data.
type EncodeError struct {
	Offset  int    // byte offset of the offending character in the input text
	Charset string // Set.String() of the target set
	Invalid bool   // the input was not valid UTF-8 at Offset
}

// Error implements error.
func (e *EncodeError) Error() string {
	if e.Invalid {
		return fmt.Sprintf("charset: invalid UTF-8 at byte offset %d of text to encode in %s", e.Offset, e.Charset)
	}
	return fmt.Sprintf("charset: character at byte offset %d cannot be represented in %s", e.Offset, e.Charset)
}

// Encode encodes text for a value of the given VR in the set. It returns an
// *EncodeError if a character cannot be represented (or text is not valid
// UTF-8); it never substitutes characters, since a silently altered value in
// a de-identified file is worse than a reported failure.
//
// For ISO 2022 sets Encode chooses among the code elements the set declares:
// a character stays in the currently designated set when it can, otherwise it
// goes into the first declared element (in (0008,0005) order) that has it,
// after that element's escape sequence. Before every reset point (see Decode:
// CR, LF, FF, TAB, '\', and '^' '=' for PN) and at the end of the value the
// designations of value 1 are restored (PS3.5 6.1.2.5.3): G0 by its escape
// sequence (ESC ( B, or ESC ( J after ISO 2022 IR 13), G1 by its escape
// sequence if value 1 has a G1 set. If value 1 has none (e.g.
// "\ISO 2022 IR 149") nothing can be written to undesignate G1 and none is
// needed, since every reader resets at those points; this matches PS3.5
// Annex I and pydicom, though some writers add ESC ( B there anyway.
//
// Choices that keep the output readable by simple decoders (pydicom decodes
// each escape-introduced run with one codec): ASCII after JIS X 0208/0212
// and GR characters after JIS X 0208/0212 are preceded by a return of G0 to
// value 1's set, and in ST/LT/UT '\' is also treated as a reset point.
//
// Symmetric with Decode's leniency, Encode still refuses what a conformant
// reader would misread: non-ASCII in the default repertoire, ESC in ISO 2022
// text, YEN SIGN and OVERLINE in ISO_IR 13 (their JIS X 0201 bytes would read
// back as '\' and '~'), and U+FFFD in any set that lacks it.
func (s *Set) Encode(text string, vr string) ([]byte, error) {
	if s.mode == modeISO2022 {
		return s.encode2022(text, classify(vr))
	}
	if s.mode == modeGB18030 || s.mode == modeGBK {
		enc := simplifiedchinese.GBK
		if s.mode == modeGB18030 {
			enc = simplifiedchinese.GB18030
		}
		return s.encodeWith(text, enc)
	}
	out := make([]byte, 0, len(text))
	for off, r := range text {
		if r == utf8.RuneError && invalidAt(text, off) {
			return nil, &EncodeError{Offset: off, Charset: s.String(), Invalid: true}
		}
		switch {
		case s.mode == modeUTF8:
			out = utf8.AppendRune(out, r)
			continue
		case r < 0x80:
			out = append(out, byte(r))
			continue
		case s.mode == modeSingle:
			if r < 0xa0 { // C1, as Decode reads it
				out = append(out, byte(r))
				continue
			}
			if b, ok := elements[s.single].cm.EncodeRune(r); ok && b >= 0xa0 {
				out = append(out, b)
				continue
			}
		case s.mode == modeJISX0201:
			if r >= kanaFirstRune && r <= kanaLastRune {
				out = append(out, byte(r-kanaFirstRune+kanaFirstByte))
				continue
			}
		}
		return nil, &EncodeError{Offset: off, Charset: s.String()}
	}
	return out, nil
}

// encodeWith encodes with a whole-value x/text encoder; on failure it finds
// the offending character one rune at a time, for the error offset.
func (s *Set) encodeWith(text string, enc encoding.Encoding) ([]byte, error) {
	t := enc.NewEncoder()
	out := make([]byte, 0, len(text)+8)
	var buf [8]byte
	for off, r := range text {
		if r == utf8.RuneError && invalidAt(text, off) {
			return nil, &EncodeError{Offset: off, Charset: s.String(), Invalid: true}
		}
		if r < 0x80 {
			out = append(out, byte(r))
			continue
		}
		n, ok := runeBytes(t, r, &buf)
		if !ok {
			return nil, &EncodeError{Offset: off, Charset: s.String()}
		}
		out = append(out, buf[:n]...)
	}
	return out, nil
}

// encode2022 writes text with ISO 2022 code extensions; see Encode.
func (s *Set) encode2022(text string, vc vrClass) ([]byte, error) {
	out := make([]byte, 0, len(text)+8)
	st := s.init
	var c codecs
	var buf [8]byte

	// restoreG0 puts value 1's single-byte set back in G0 if a two-byte set
	// is there, so that ASCII/GR bytes that follow read as intended.
	restoreG0 := func() {
		if st.g0 != s.init.g0 {
			out = append(out, elements[s.init.g0].esc...)
			st.g0 = s.init.g0
		}
	}
	// restore returns to the designations of value 1 before a reset point.
	restore := func() {
		restoreG0()
		if st.g1 != s.init.g1 {
			if s.init.g1 != elNone {
				out = append(out, elements[s.init.g1].esc...)
			}
			st.g1 = s.init.g1
		}
	}

	for off, r := range text {
		if r == utf8.RuneError && invalidAt(text, off) {
			return nil, &EncodeError{Offset: off, Charset: s.String(), Invalid: true}
		}
		if r < 0x80 {
			b := byte(r)
			switch {
			case b == esc:
				// A literal ESC would be read as the start of an escape sequence.
				return nil, &EncodeError{Offset: off, Charset: s.String()}
			case b < 0x20 || b == 0x7f:
				if isControlReset(b) {
					restore()
				}
			case vc.isDelimiter(b, true):
				restore()
			default:
				// Printable ASCII, including space: written in value 1's G0
				// set (ASCII or JIS X 0201 Romaji, both read as ASCII).
				restoreG0()
			}
			out = append(out, b)
			continue
		}
		if r < 0xa0 { // C1 controls are independent of the designations
			out = append(out, byte(r))
			continue
		}

		// Stay in the current sets when possible.
		if st.g1 != elNone {
			if n, ok := c.encodeIn(st.g1, r, &buf); ok {
				restoreG0()
				out = append(out, buf[:n]...)
				continue
			}
		}
		if elements[st.g0].width == 2 {
			if n, ok := c.encodeIn(st.g0, r, &buf); ok {
				out = append(out, buf[:n]...)
				continue
			}
		}
		found := false
		for _, id := range s.declared {
			if id == st.g0 || id == st.g1 {
				continue
			}
			n, ok := c.encodeIn(id, r, &buf)
			if !ok {
				continue
			}
			if elements[id].g1 {
				restoreG0()
				st.g1 = id
			} else {
				st.g0 = id
			}
			out = append(out, elements[id].esc...)
			out = append(out, buf[:n]...)
			found = true
			break
		}
		if !found {
			return nil, &EncodeError{Offset: off, Charset: s.String()}
		}
	}
	restore()
	return out, nil
}
