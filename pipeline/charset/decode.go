package charset

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/simplifiedchinese"
)

const esc = 0x1b

// Decode decodes the raw bytes of a value of a text VR (SH, LO, ST, LT, UT,
// UC, PN, and the ASCII VRs such as AE and CS) into a string. raw may hold
// several values separated by '\'; the separators are kept. Trailing padding
// is not removed. Decode never fails: bytes that mean nothing in the set
// become U+FFFD, and the result is always valid UTF-8.
//
// With ISO 2022 code extensions the escape sequences are interpreted and
// dropped. The designations go back to those of value 1 of (0008,0005) at
// CR, LF, FF and TAB, at '\' for the multi-valued VRs and, for PN, also at
// '^' and '='. The delimiters only count while a single-byte set is in G0:
// inside JIS X 0208/0212 text the same bytes are halves of characters (e.g.
// 0x24 0x5E is "ま"), and a conformant writer has returned to ASCII before a
// real delimiter anyway.
//
// Deliberate leniency, and differences from pydicom:
//   - ST, LT, UT and UR hold one value, so '\' does not reset there (as in
//     pydicom and PS3.5 6.1.2.5.3); a writer that re-designates after '\'
//     decodes the same either way.
//   - Known escape sequences are honoured even for code elements the set does
//     not declare, since reading more text correctly only helps find
//     identifying data; unknown sequences become one U+FFFD. pydicom falls
//     back to value 1 instead.
//   - Bytes 0x80-0xFF with no G1 set designated (the default repertoire,
//     ISO 2022 IR 6) are read as ISO 8859-1, as pydicom does: such files are
//     common and almost always Latin-1.
//   - ISO_IR 13 without extensions also reads Shift_JIS double-byte
//     characters, as pydicom does (it decodes ISO_IR 13 as shift_jis), because
//     Japanese devices often write Shift_JIS under that label.
//   - Byte 0x5C reads as '\' and 0x7E as '~' in JIS X 0201 Romaji (ISO-IR 14),
//     not as YEN SIGN and OVERLINE: DICOM uses 0x5C as the value delimiter in
//     every set (PS3.5 6.2), so a decoded '\' must stay the delimiter for
//     callers that split values after decoding. pydicom does the same.
//   - GB 2312 (ISO 2022 IR 58) text is decoded properly; pydicom 2.3 leaves
//     the escape sequences in the string.
//   - C1 bytes (0x80-0x9F) are the C1 controls U+0080-U+009F in the ISO 8859
//     sets and ISO 2022 mode (so ISO_IR 100 0x80 is U+0080, not the
//     windows-1252 euro sign).
func (s *Set) Decode(raw []byte, vr string) string {
	if isPlain(raw, s.mode) {
		return string(raw)
	}
	switch s.mode {
	case modeDefault:
		return decodeLatin1(raw)
	case modeSingle:
		return decodeSingle(raw, s.single)
	case modeJISX0201:
		return decodeJISX0201(raw)
	case modeUTF8:
		return decodeUTF8(raw)
	case modeGB18030:
		return decodeWith(raw, simplifiedchinese.GB18030)
	case modeGBK:
		return decodeWith(raw, simplifiedchinese.GBK)
	}
	return s.decode2022(raw, classify(vr))
}

// isPlain reports whether raw is pure ASCII that every set reads as itself,
// the common case, which then needs no work. In ISO 2022 mode ESC is not
// plain: it starts an escape sequence.
func isPlain(raw []byte, m mode) bool {
	for _, b := range raw {
		if b >= 0x80 || (b == esc && m == modeISO2022) {
			return false
		}
	}
	return true
}

func decodeLatin1(raw []byte) string {
	var sb strings.Builder
	sb.Grow(len(raw) + len(raw)/2)
	for _, b := range raw {
		sb.WriteRune(rune(b))
	}
	return sb.String()
}

// decodeGR reads a byte 0x80-0xFF through a single-byte G1 set. C1 bytes are
// the C1 controls whatever the charmap says, because the ISO 8859 / ISO 2022
// structure puts no graphic characters there (this matters for Windows-874,
// which we use for TIS-620 and which puts the euro sign at 0x80).
func decodeGR(b byte, id elemID) rune {
	if b < 0xa0 {
		return rune(b)
	}
	switch {
	case elements[id].cm != nil:
		return elements[id].cm.DecodeByte(b) // U+FFFD where undefined
	case id == elKatakana:
		if b >= kanaFirstByte && b <= kanaLastByte {
			return rune(b-kanaFirstByte) + kanaFirstRune
		}
	case id == elNone:
		return rune(b) // Latin-1 fallback, see Decode
	}
	return utf8.RuneError
}

func decodeSingle(raw []byte, id elemID) string {
	var sb strings.Builder
	sb.Grow(len(raw) * 2)
	for _, b := range raw {
		if b < 0x80 {
			sb.WriteByte(b)
		} else {
			sb.WriteRune(decodeGR(b, id))
		}
	}
	return sb.String()
}

// decodeJISX0201 reads ISO_IR 13: JIS X 0201 Romaji/Katakana, plus Shift_JIS
// double-byte characters (see Decode for why).
func decodeJISX0201(raw []byte) string {
	var sb strings.Builder
	sb.Grow(len(raw) * 2)
	var c codecs
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		switch {
		case b < 0x80:
			sb.WriteByte(b)
		case b >= kanaFirstByte && b <= kanaLastByte:
			sb.WriteRune(decodeGR(b, elKatakana))
		case isSJISLead(b) && i+1 < len(raw) && isSJISTrail(raw[i+1]):
			r := oneRune(lazyDec(&c.sjisDec, japanese.ShiftJIS), raw[i:i+2])
			if r == utf8.RuneError {
				sb.WriteRune(utf8.RuneError)
				continue // the second byte may start something valid
			}
			sb.WriteRune(r)
			i++
		default:
			sb.WriteRune(utf8.RuneError)
		}
	}
	return sb.String()
}

func isSJISLead(b byte) bool  { return (b >= 0x81 && b <= 0x9f) || (b >= 0xe0 && b <= 0xfc) }
func isSJISTrail(b byte) bool { return b >= 0x40 && b <= 0xfc && b != 0x7f }

// decodeUTF8 replaces each invalid byte by U+FFFD (one per byte, so lengths
// stay predictable).
func decodeUTF8(raw []byte) string {
	if utf8.Valid(raw) {
		return string(raw)
	}
	var sb strings.Builder
	sb.Grow(len(raw) + 8)
	for len(raw) > 0 {
		r, size := utf8.DecodeRune(raw)
		sb.WriteRune(r) // RuneError for an invalid byte
		raw = raw[size:]
	}
	return sb.String()
}

// decodeWith runs a whole-value x/text decoder. The GB decoders already turn
// invalid input into U+FFFD; ToValidUTF8 is only a guard.
func decodeWith(raw []byte, enc encoding.Encoding) string {
	out, err := enc.NewDecoder().Bytes(raw)
	if err != nil {
		// Not expected for these decoders; fall back to a readable result
		// rather than failing.
		return decodeLatin1(raw)
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// decode2022 interprets ISO 2022 code extensions (PS3.5 6.1.2.5).
func (s *Set) decode2022(raw []byte, vc vrClass) string {
	var sb strings.Builder
	sb.Grow(len(raw) * 2)
	var c codecs
	st := s.init
	for i := 0; i < len(raw); {
		b := raw[i]
		switch {
		case b == esc:
			id, n := matchEscape(raw[i:])
			switch {
			case id != elNone:
				if elements[id].g1 {
					st.g1 = id
				} else {
					st.g0 = id
				}
				i += n
			case n > 0: // well-formed but unknown: drop it as one unit
				sb.WriteRune(utf8.RuneError)
				i += n
			default:
				sb.WriteRune(utf8.RuneError)
				i++
			}

		case b < 0x20 || b == 0x7f:
			if isControlReset(b) {
				st = s.init
			}
			sb.WriteByte(b)
			i++

		case b == 0x20:
			// SPACE is outside every 94-character set, so it is a space
			// even while a two-byte set is in G0.
			sb.WriteByte(b)
			i++

		case b < 0x7f: // GL
			if elements[st.g0].width == 2 {
				if i+1 < len(raw) && isGL94(raw[i+1]) {
					sb.WriteRune(c.decodePair(st.g0, b, raw[i+1]))
					i += 2
				} else {
					sb.WriteRune(utf8.RuneError)
					i++
				}
				continue
			}
			if vc.isDelimiter(b, false) {
				st = s.init
			}
			sb.WriteByte(b) // ASCII, or JIS X 0201 Romaji read as ASCII
			i++

		case b < 0xa0: // C1
			sb.WriteRune(rune(b))
			i++

		default: // GR
			if elements[st.g1].width == 2 {
				if isGR94(b) && i+1 < len(raw) && isGR94(raw[i+1]) {
					sb.WriteRune(c.decodePair(st.g1, b, raw[i+1]))
					i += 2
				} else {
					sb.WriteRune(utf8.RuneError)
					i++
				}
				continue
			}
			sb.WriteRune(decodeGR(b, st.g1))
			i++
		}
	}
	return sb.String()
}
