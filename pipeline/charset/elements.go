package charset

import (
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// elemID names an ISO 2022 code element (a graphic character set that an
// escape sequence can designate), PS3.3 Tables C.12-3 and C.12-4.
type elemID uint8

const (
	elNone     elemID = iota
	elASCII           // ISO-IR 6, G0
	elJISRoman        // ISO-IR 14 (JIS X 0201 Romaji), G0
	elLatin1          // ISO-IR 100, G1
	elLatin2          // ISO-IR 101, G1
	elLatin3          // ISO-IR 109, G1
	elLatin4          // ISO-IR 110, G1
	elCyrillic        // ISO-IR 144, G1
	elArabic          // ISO-IR 127, G1
	elGreek           // ISO-IR 126, G1
	elHebrew          // ISO-IR 138, G1
	elLatin5          // ISO-IR 148, G1
	elLatin9          // ISO-IR 203, G1
	elThai            // ISO-IR 166, G1
	elKatakana        // ISO-IR 13 (JIS X 0201 Katakana), G1
	elJIS0208         // ISO-IR 87 (JIS X 0208), G0, two bytes
	elJIS0212         // ISO-IR 159 (JIS X 0212), G0, two bytes
	elKSX1001         // ISO-IR 149 (KS X 1001), G1, two bytes
	elGB2312          // ISO-IR 58 (GB 2312), G1, two bytes
	numElems
)

// element is the static description of a code element.
type element struct {
	name  string // for messages
	esc   string // escape sequence that designates it
	g1    bool   // designated into G1 (used through GR bytes), else G0 (GL)
	width int    // bytes per character
	// cm maps the GR half (0xA0-0xFF) of the 96-character sets. The C1 half
	// is never taken from it: see decodeGR.
	cm *charmap.Charmap
}

// elements is indexed by elemID. It is read-only.
var elements = [numElems]element{
	elNone:     {name: "none"},
	elASCII:    {name: "ISO-IR 6", esc: "\x1b(B", width: 1},
	elJISRoman: {name: "ISO-IR 14", esc: "\x1b(J", width: 1},
	elLatin1:   {name: "ISO-IR 100", esc: "\x1b-A", g1: true, width: 1, cm: charmap.ISO8859_1},
	elLatin2:   {name: "ISO-IR 101", esc: "\x1b-B", g1: true, width: 1, cm: charmap.ISO8859_2},
	elLatin3:   {name: "ISO-IR 109", esc: "\x1b-C", g1: true, width: 1, cm: charmap.ISO8859_3},
	elLatin4:   {name: "ISO-IR 110", esc: "\x1b-D", g1: true, width: 1, cm: charmap.ISO8859_4},
	elCyrillic: {name: "ISO-IR 144", esc: "\x1b-L", g1: true, width: 1, cm: charmap.ISO8859_5},
	elArabic:   {name: "ISO-IR 127", esc: "\x1b-G", g1: true, width: 1, cm: charmap.ISO8859_6},
	elGreek:    {name: "ISO-IR 126", esc: "\x1b-F", g1: true, width: 1, cm: charmap.ISO8859_7},
	elHebrew:   {name: "ISO-IR 138", esc: "\x1b-H", g1: true, width: 1, cm: charmap.ISO8859_8},
	elLatin5:   {name: "ISO-IR 148", esc: "\x1b-M", g1: true, width: 1, cm: charmap.ISO8859_9},
	elLatin9:   {name: "ISO-IR 203", esc: "\x1b-b", g1: true, width: 1, cm: charmap.ISO8859_15},
	// TIS-620 is not in x/text. Windows-874 has the same Thai letters at
	// 0xA1-0xFB; it differs only in 0x80-0x9F (which we never take from the
	// charmap) and in mapping 0xA0 to NO-BREAK SPACE, as ISO 8859-11 does.
	elThai:     {name: "ISO-IR 166", esc: "\x1b-T", g1: true, width: 1, cm: charmap.Windows874},
	elKatakana: {name: "ISO-IR 13", esc: "\x1b)I", g1: true, width: 1},
	elJIS0208:  {name: "ISO-IR 87", esc: "\x1b$B", width: 2},
	elJIS0212:  {name: "ISO-IR 159", esc: "\x1b$(D", width: 2},
	elKSX1001:  {name: "ISO-IR 149", esc: "\x1b$)C", g1: true, width: 2},
	elGB2312:   {name: "ISO-IR 58", esc: "\x1b$)A", g1: true, width: 2},
}

// matchEscape recognises an escape sequence at the start of b (b[0] is ESC).
// It returns the designated element and the sequence length; for a
// syntactically complete but unknown sequence (ESC, intermediates 0x20-0x2F,
// a final byte 0x30-0x7E) it returns elNone and its length, so the caller
// can skip it as one unit; n == 0 means b does not hold a complete sequence.
func matchEscape(b []byte) (id elemID, n int) {
	for id := elASCII; id < numElems; id++ {
		e := elements[id].esc
		if len(b) >= len(e) && string(b[:len(e)]) == e {
			return id, len(e)
		}
	}
	i := 1
	for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f {
		i++
	}
	if i > 1 && i < len(b) && b[i] >= 0x30 && b[i] <= 0x7e {
		return elNone, i + 1
	}
	return elNone, 0
}

// Katakana of JIS X 0201 sit at 0xA1-0xDF and map to the half-width forms.
const (
	kanaFirstByte = 0xa1
	kanaLastByte  = 0xdf
	kanaFirstRune = 0xff61
	kanaLastRune  = 0xff9f
)

// codecs holds the x/text transformers one Decode or Encode call needs.
// x/text does not promise that Decoders and Encoders are safe for concurrent
// use, so they are made per call (lazily: most values never need them)
// rather than stored in the shared, immutable Set.
type codecs struct {
	eucJPDec, eucKRDec, gbkDec, sjisDec transform.Transformer
	eucJPEnc, eucKREnc, gbkEnc          transform.Transformer
}

func lazyDec(t *transform.Transformer, enc encoding.Encoding) transform.Transformer {
	if *t == nil {
		*t = enc.NewDecoder()
	}
	return *t
}

func lazyEnc(t *transform.Transformer, enc encoding.Encoding) transform.Transformer {
	if *t == nil {
		*t = enc.NewEncoder()
	}
	return *t
}

// oneRune runs a decoder over exactly the bytes of one character and returns
// that character, or U+FFFD when they do not form exactly one valid one.
func oneRune(t transform.Transformer, src []byte) rune {
	var dst [16]byte
	t.Reset()
	n, nSrc, err := t.Transform(dst[:], src, true)
	if err != nil || nSrc != len(src) {
		return utf8.RuneError
	}
	r, size := utf8.DecodeRune(dst[:n])
	if size != n {
		return utf8.RuneError
	}
	return r
}

// runeBytes runs an encoder over one character. ok is false if the encoding
// cannot represent it.
func runeBytes(t transform.Transformer, r rune, dst *[8]byte) (n int, ok bool) {
	var src [utf8.UTFMax]byte
	sn := utf8.EncodeRune(src[:], r)
	t.Reset()
	n, nSrc, err := t.Transform(dst[:], src[:sn], true)
	return n, err == nil && nSrc == sn
}

// decodePair decodes the two bytes of a character of a 94x94 set. For the
// G0 sets (JIS) the bytes are GL (0x21-0x7E), for the G1 sets GR (0xA1-0xFE).
// The sets are reached through the EUC form of a superset codec: EUC-JP
// holds JIS X 0208 and, behind 0x8F, JIS X 0212; x/text's EUC-KR is CP949,
// whose 0xA1-0xFE square is KS X 1001; GBK's 0xA1-0xFE square is GB 2312.
func (c *codecs) decodePair(id elemID, b1, b2 byte) rune {
	switch id {
	case elJIS0208:
		return oneRune(lazyDec(&c.eucJPDec, japanese.EUCJP), []byte{b1 | 0x80, b2 | 0x80})
	case elJIS0212:
		return oneRune(lazyDec(&c.eucJPDec, japanese.EUCJP), []byte{0x8f, b1 | 0x80, b2 | 0x80})
	case elKSX1001:
		return oneRune(lazyDec(&c.eucKRDec, korean.EUCKR), []byte{b1, b2})
	case elGB2312:
		return oneRune(lazyDec(&c.gbkDec, simplifiedchinese.GBK), []byte{b1, b2})
	}
	return utf8.RuneError
}

// jis0208Compat lists characters that other JIS X 0208 mappings (the Unicode
// consortium's JIS0208.TXT, used by Python's iso2022_jp and so by pydicom)
// assign differently from x/text's WHATWG table. Encode accepts both so that
// text typed on such systems (e.g. WAVE DASH) can still be written; Decode
// yields the WHATWG character.
var jis0208Compat = map[rune][2]byte{
	0x301c: {0x21, 0x41}, // WAVE DASH (WHATWG: FULLWIDTH TILDE)
	0x2016: {0x21, 0x42}, // DOUBLE VERTICAL LINE (WHATWG: PARALLEL TO)
	0x2212: {0x21, 0x5d}, // MINUS SIGN (WHATWG: FULLWIDTH HYPHEN-MINUS)
	0x00a2: {0x21, 0x71}, // CENT SIGN (WHATWG: FULLWIDTH CENT SIGN)
	0x00a3: {0x21, 0x72}, // POUND SIGN (WHATWG: FULLWIDTH POUND SIGN)
	0x00ac: {0x22, 0x4c}, // NOT SIGN (WHATWG: FULLWIDTH NOT SIGN)
	0x2014: {0x21, 0x3d}, // EM DASH (WHATWG: HORIZONTAL BAR)
}

// encodeIn returns the bytes of r in code element id (GL bytes for G0 sets,
// GR bytes for G1 sets), or ok == false. Only characters at or above U+00A0
// are asked for: ASCII and C1 are handled by the caller.
func (c *codecs) encodeIn(id elemID, r rune, out *[8]byte) (n int, ok bool) {
	e := &elements[id]
	switch {
	case e.cm != nil:
		b, ok := e.cm.EncodeRune(r)
		if !ok || b < 0xa0 {
			return 0, false
		}
		out[0] = b
		return 1, true
	case id == elKatakana:
		if r < kanaFirstRune || r > kanaLastRune {
			return 0, false
		}
		out[0] = byte(r - kanaFirstRune + kanaFirstByte)
		return 1, true
	case id == elJIS0208 || id == elJIS0212:
		var buf [8]byte
		n, ok := runeBytes(lazyEnc(&c.eucJPEnc, japanese.EUCJP), r, &buf)
		if ok && id == elJIS0208 && n == 2 && buf[0] >= 0xa1 && buf[1] >= 0xa1 {
			out[0], out[1] = buf[0]&0x7f, buf[1]&0x7f
			return 2, true
		}
		if ok && id == elJIS0212 && n == 3 && buf[0] == 0x8f {
			out[0], out[1] = buf[1]&0x7f, buf[2]&0x7f
			return 2, true
		}
		if p, found := jis0208Compat[r]; found && id == elJIS0208 {
			out[0], out[1] = p[0], p[1]
			return 2, true
		}
		return 0, false
	case id == elKSX1001 || id == elGB2312:
		var buf [8]byte
		var t transform.Transformer
		if id == elKSX1001 {
			t = lazyEnc(&c.eucKREnc, korean.EUCKR)
		} else {
			t = lazyEnc(&c.gbkEnc, simplifiedchinese.GBK)
		}
		n, ok := runeBytes(t, r, &buf)
		// The codecs are supersets (CP949, GBK); only their 0xA1-0xFE
		// square belongs to the 94x94 set.
		if !ok || n != 2 || !isGR94(buf[0]) || !isGR94(buf[1]) {
			return 0, false
		}
		out[0], out[1] = buf[0], buf[1]
		return 2, true
	}
	return 0, false
}

func isGR94(b byte) bool { return b >= 0xa1 && b <= 0xfe }
func isGL94(b byte) bool { return b >= 0x21 && b <= 0x7e }
