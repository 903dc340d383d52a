package burnin

import (
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// What a line of recognised text is, for masking and for verification.
// OCR misreads: an O for a 0, an l for a 1, a dropped or doubled
// character. Identifiers are compared in a folded alphabet (letters and
// digits OCR confuses are one symbol) and with a small edit distance.

// Identifier is one identifying value of the file whose text is looked
// for in its pixels.
type Identifier struct {
	Text string
	// Date: the value is a date (DA, or a DT's date); it is looked for in
	// the notations people write dates in.
	Date bool
}

// identifiers is a file's identifiers prepared for matching: each folded,
// with the edit distance a match may have.
type identifiers struct {
	items []folded
	// own are patterns that count only when the values are the file's
	// own: the generic words of its institution alone ("Hopital" of
	// "Hopital Sainte-Eleonore", the rest of the banner over a dark
	// image), and parts made of them. On a screen they say which line
	// is the file's institution; among every original's values (an
	// audit without a pairing) they would match any vendor's logo.
	own []pattern
	// unsure: the values may not be the file's (own is not looked for).
	unsure bool
}

type folded struct {
	pattern
	// parts are the value's first and last six tenths, for a long value
	// read in part (the rest under an image, or beyond the reading's
	// edge); none that is only a generic word (see genericWord).
	parts []pattern
}

// pattern is folded text looked for, with the edits a match may have.
type pattern struct {
	s   []byte
	max int // errors allowed
}

// minFolded is the shortest identifier looked for: shorter values (a
// sex, an age's unit) would match ordinary annotations.
const minFolded = 4

func prepare(ids []Identifier) *identifiers {
	out := &identifiers{}
	seen := map[string]bool{}
	add := func(s string) {
		f, generic := foldWords(s)
		if len(f) < minFolded || seen[string(f)] {
			return
		}
		seen[string(f)] = true
		it := folded{pattern: pattern{s: f, max: len(f) / 6}}
		if n := len(f); n >= 9 {
			l := max(6, n*6/10)
			for _, at := range []int{0, n - l} {
				// A part the edits allowed could match with only a generic
				// word's letters names no one.
				distinct := 0
				for _, g := range generic[at : at+l] {
					if !g {
						distinct++
					}
				}
				p := pattern{s: f[at : at+l], max: l / 6}
				if distinct > l/6 {
					it.parts = append(it.parts, p)
				} else {
					out.own = append(out.own, p)
				}
			}
		}
		out.items = append(out.items, it)
	}
	for _, id := range ids {
		if id.Date {
			for _, s := range dateNotations(id.Text) {
				add(s)
			}
			continue
		}
		add(id.Text)
		// Names and multi-word values: each word long enough to identify
		// on its own (a family name alone on a banner).
		for _, w := range strings.FieldsFunc(id.Text, wordSep) {
			if len([]rune(w)) < 4 {
				continue
			}
			if !genericWord(w) {
				add(w)
			} else if f := fold(w); len(f) >= minFolded {
				out.own = append(out.own, pattern{s: f, max: len(f) / 6})
			}
		}
	}
	return out
}

// wordSep separates the words of a value: a name's components, an
// institution's words.
func wordSep(r rune) bool {
	return r == '^' || r == ' ' || r == ',' || r == '=' || r == '-' || r == '\\'
}

// foldWords is fold(s), and for each of its bytes whether it comes from
// a generic word.
func foldWords(s string) ([]byte, []bool) {
	var f []byte
	var generic []bool
	for _, w := range strings.FieldsFunc(s, wordSep) {
		fw := fold(w)
		f = append(f, fw...)
		g := genericWord(w)
		for range fw {
			generic = append(generic, g)
		}
	}
	return f, generic
}

// genericWord reports whether w, one word of a multi-word value, is a
// word of institutions' and vendors' names in general ("Philips
// Healthcare", "Klinikum Bad Ueberkingen"): alone on a screen it names no
// one (a vendor's logo says "Healthcare" too), so it is not looked for
// alone; the whole value and its other words still are.
func genericWord(w string) bool {
	switch strings.ToLower(w) {
	case "hospital", "hospitals", "hopital", "hôpital", "hospitalier", "ospedale", "krankenhaus", "ziekenhuis", "hospitales",
		"healthcare", "health", "medical", "medicine", "medizin", "medizinische", "medico", "médical",
		"center", "centre", "centro", "zentrum", "clinic", "clinics", "clinical", "clinique", "klinik", "kliniken", "klinikum", "clinica",
		"university", "universitat", "universität", "universite", "université", "universitaire", "universidad", "universita",
		"college", "institute", "institut", "instituto", "department", "general", "regional", "national", "memorial",
		"imaging", "radiology", "radiologie", "diagnostic", "diagnostics", "systems", "services", "foundation", "trust",
		"group", "children", "childrens", "saint", "care", "practice", "network", "gmbh", "corporation", "limited":
		return true
	}
	return false
}

// dateNotations spells a DA value (YYYYMMDD, or a DT's first 8
// characters) the ways a screen writes dates.
func dateNotations(v string) []string {
	v = strings.TrimSpace(v)
	if len(v) < 8 {
		return []string{v}
	}
	t, err := time.Parse("20060102", v[:8])
	if err != nil {
		return []string{v[:8]}
	}
	var out []string
	for _, layout := range []string{"20060102", "2006-01-02", "02.01.2006", "01/02/2006", "02/01/2006", "2006/01/02",
		"2006.01.02", "02-Jan-2006", "02 Jan 2006", "Jan 02 2006", "2 January 2006", "January 2 2006", "01-02-2006",
		"02-01-2006", "010206", "020106", "01/02/06", "02/01/06", "02.01.06"} {
		out = append(out, t.Format(layout))
	}
	return out
}

// fold maps text to the alphabet identifiers are compared in: lower
// case, letters and digits only, and the characters OCR confuses merged.
func fold(s string) []byte {
	var b []byte
	for _, r := range strings.ToLower(s) {
		switch r {
		case 'o', 'q', 'd', 'ø', 'ö', 'ó', 'ò':
			b = append(b, '0')
		case 'l', 'i', 'j', '|', '!', 'í', 'ì', 'ï':
			b = append(b, '1')
		case 's', '$':
			b = append(b, '5')
		case 'b':
			b = append(b, '8')
		case 'z':
			b = append(b, '2')
		case 'g':
			b = append(b, '9')
		case 'é', 'è', 'ê', 'ë':
			b = append(b, 'e')
		case 'á', 'à', 'â', 'ä', 'å', 'ą':
			b = append(b, 'a')
		case 'ü', 'ú', 'ù', 'û':
			b = append(b, 'u')
		case 'ç', 'ć', 'č':
			b = append(b, 'c')
		case 'ñ', 'ń':
			b = append(b, 'n')
		case 'ł':
			b = append(b, '1')
		case 'ś', 'š':
			b = append(b, '5')
		case 'ż', 'ź', 'ž':
			b = append(b, '2')
		default:
			if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				b = append(b, byte(r))
			}
		}
	}
	return b
}

// match reports whether text holds one of the identifiers, within its
// edit distance (Sellers' approximate substring match).
func (ids *identifiers) match(text string) bool {
	return ids.matchOf(text, !ids.unsure)
}

// identifies is match without the own patterns. A generic word of the
// file's institution says which line to mask; misread from a toolbar
// within an edit of one ("Centle" for Centre) it names no one, so the
// check counts it only read with confidence (ownWordConf).
func (ids *identifiers) identifies(text string) bool {
	return ids.matchOf(text, false)
}

func (ids *identifiers) matchOf(text string, own bool) bool {
	if ids == nil || len(ids.items) == 0 {
		return false
	}
	t := fold(text)
	for _, id := range ids.items {
		if approxContains(t, id.s, ids.edits(id.pattern)) {
			return true
		}
		for _, p := range id.parts {
			if approxContains(t, p.s, ids.edits(p)) {
				return true
			}
		}
	}
	if own {
		for _, p := range ids.own {
			if approxContains(t, p.s, p.max) {
				return true
			}
		}
	}
	return false
}

// unsureExactLen is the length under which a value that may not be the
// file's must be read exactly: among every original's values (an audit
// without a pairing), a six-letter one within an edit is in any line of
// text ("Sc HealthCare", a vendor's logo misread, holds "Schema" but
// for one letter).
const unsureExactLen = 8

// minPartLen is the fewest letters a remnant beside a mask must have to
// count as part of an identifier (partOf): "R" or "en" is in every name.
const minPartLen = 3

// edits is how many edits a match of p may have.
func (ids *identifiers) edits(p pattern) int {
	if ids.unsure && len(p.s) < unsureExactLen {
		return 0
	}
	return p.max
}

// partOf reports whether folded text f is part of one of the
// identifiers, within its share of edits (one in four letters): the end
// of a value that a mask hides the rest of. Fewer than minPartLen
// letters are part of any value and tell nothing of one.
func (ids *identifiers) partOf(f []byte) bool {
	if ids == nil || len(f) < minPartLen {
		return false
	}
	for _, id := range ids.items {
		if approxContains(id.s, f, len(f)/4) {
			return true
		}
	}
	return false
}

// approxContains reports whether some substring of t is within k edits
// of p.
func approxContains(t, p []byte, k int) bool {
	if len(p) == 0 {
		return true
	}
	if len(t) < len(p)-k {
		return false
	}
	prev := make([]int, len(p)+1)
	cur := make([]int, len(p)+1)
	for i := range prev {
		prev[i] = i
	}
	if prev[len(p)] <= k {
		return true
	}
	for _, c := range t {
		cur[0] = 0 // a match may start anywhere
		for i := 1; i <= len(p); i++ {
			cost := 1
			if p[i-1] == c {
				cost = 0
			}
			cur[i] = min(prev[i-1]+cost, prev[i]+1, cur[i-1]+1)
		}
		if cur[len(p)] <= k {
			return true
		}
		prev, cur = cur, prev
	}
	return false
}

var (
	months    = `(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*`
	dateShape = regexp.MustCompile(`(?i)(\d{1,4}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?\d{2,4})|(\d{1,2}[\s\-.]?` + months + `[\s\-.,]*\d{2,4})|(` + months + `[\s\-.]?\d{1,2}[\s\-.,]+\d{2,4})|((19|20)\d{2}[01]\d[0-3]\d)`)
	timeShape = regexp.MustCompile(`\d{1,2}\s?[:h]\s?\d{2}(\s?:\s?\d{2})?`)
	// An ID: a run of at least 5 digits (separators inside allowed), or a
	// token mixing at least 4 digits with letters.
	idShape   = regexp.MustCompile(`\d[\d\-/ ]{3,}\d|(?i)\b[a-z]*\d{4,}[a-z\d]*\b`)
	nameShape = regexp.MustCompile(`[A-Za-z]{2,}\^[A-Za-z]{2,}|\b[A-Z][A-Za-z'\-]{2,}\s*,\s*[A-Z][A-Za-z'\-]+`)
	// Words that introduce identifying values on screens.
	labelShape = regexp.MustCompile(`(?i)\b(name|patient|pat|pt|dob|d\.o\.b|born|birth|mrn|pid|id|acc|accession|hospital|clinic|institution|physician|dr)\b`)
)

// labelCased reports whether text has a label word (labelShape) that
// begins with a capital, as screens write them.
func labelCased(text string) bool {
	for _, m := range labelShape.FindAllStringIndex(text, -1) {
		if r, _ := utf8.DecodeRuneInString(text[m[0]:]); unicode.IsUpper(r) {
			return true
		}
	}
	return false
}

// Shape names what an identifying-looking text is shaped like, or "".
func Shape(text string) string {
	digits := 0
	for _, r := range text {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	switch {
	case digits >= 4 && dateShape.MatchString(text):
		return "date"
	case digits >= 3 && timeShape.MatchString(text):
		return "time"
	case digits >= 5 && idShape.MatchString(text):
		return "id"
	case nameShape.MatchString(text):
		return "name"
	case labelShape.MatchString(text):
		return "label"
	}
	return ""
}

// Allow is a device-annotation allow-list: a text line made only of its
// words (case ignored), short numbers and punctuation is an annotation
// of the device (L, R, 5 cm, Gain 52, TIS 0.4), not the patient's data.
type Allow struct {
	words map[string]bool
}

// NewAllow builds an allow-list from its words.
func NewAllow(words []string) *Allow {
	a := &Allow{words: map[string]bool{}}
	for _, w := range words {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
			a.words[w] = true
		}
	}
	return a
}

// probeShape: transducer names (C5-1, L12-5, S4-2, 2D, 3V2c).
var probeShape = regexp.MustCompile(`^[a-z]{1,2}\d{1,2}(-\d{1,2})?[a-z]?$|^\d[a-z]{1,2}\d?[a-z]?$`)

// Allowed reports whether every token of text is an allowed word, a
// short number or a probe name. An empty text is not allowed: a line
// the reader could not read may be anything.
func (a *Allow) Allowed(text string) bool {
	n := 0
	for _, raw := range strings.Fields(strings.ToLower(text)) {
		raw = strings.Trim(raw, `.,:;()[]{}'"`)
		if raw == "" {
			continue
		}
		if a.words[raw] || probeShape.MatchString(raw) {
			n++
			continue
		}
		for _, t := range tokens(raw) {
			switch {
			case isNumber(t):
				// A short number: a depth, a gain, an index. Four digits
				// and more may be a year or part of an ID.
				if digitCount(t) > 3 {
					return false
				}
			case isPunct(t):
			case a != nil && a.words[t]:
			default:
				return false
			}
			n++
		}
	}
	return n > 0
}

// tokens splits a word where letters meet digits ("TIS0.4" -> TIS, 0.4;
// "28Hz" -> 28, hz) and at punctuation, which is kept as its own token.
func tokens(w string) []string {
	var out []string
	var cur []rune
	kind := 0 // 1 letter, 2 number
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(w)
	for i, r := range rs {
		k := 0
		switch {
		case unicode.IsLetter(r):
			k = 1
		case unicode.IsDigit(r) || (r == '.' || r == ',') && kind == 2 && i+1 < len(rs) && unicode.IsDigit(rs[i+1]):
			k = 2
		case unicode.IsSpace(r):
			flush()
			kind = 0
			continue
		default:
			flush()
			out = append(out, string(r))
			kind = 0
			continue
		}
		if k != kind {
			flush()
		}
		kind = k
		cur = append(cur, r)
	}
	flush()
	return out
}

func isNumber(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if !unicode.IsDigit(r) && r != '.' && r != ',' {
			return false
		}
	}
	return unicode.IsDigit([]rune(t)[0])
}

func digitCount(t string) int {
	n := 0
	for _, r := range t {
		if unicode.IsDigit(r) {
			n++
		}
	}
	return n
}

func isPunct(t string) bool {
	for _, r := range t {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	return true
}
