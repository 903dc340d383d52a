package deid

import (
	"strings"
	"time"
	"unicode"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
)

// needle is an identifying string looked for in free text (lower case).
type needle struct {
	runes []rune
	bound bound
}

// bound is what may not surround a match of a needle. The rules are those
// of the verifier (verify.bounded), which checks every written output:
// text it would find must not be left in.
type bound uint8

const (
	// boundNone: anywhere (long needles, CJK text, which has no spaces
	// between words).
	boundNone bound = iota
	// boundWord: short tokens would otherwise hit inside ordinary words;
	// no ASCII letter or digit may touch a match.
	boundWord
	// boundNumber: dates, UIDs and digit strings stand alone as numbers;
	// no digit, nor a '.' and a digit, may touch a match (letters may:
	// "DOB19450321").
	boundNumber
)

const minNeedle = 3

// Words that are parts of names but identify nobody.
var nameNoise = map[string]bool{"dr": true, "dr.": true, "mr": true, "mrs": true, "ms": true, "md": true, "phd": true, "prof": true, "jr": true, "sr": true, "von": true, "van": true, "der": true, "den": true, "del": true, "de": true, "la": true, "le": true}

// collect gathers the values the profile does not keep (names, IDs,
// addresses, dates...) at every depth, so that free text kept under a
// Clean option can be stripped of them.
func (j *Job) collect(els []*dicomraw.Element, sc scope) {
	if sc.depth > 0 {
		j.setCharset(&sc, els)
	}
	crs := creators(els)
	if j.needleSeen == nil { // one set for the whole walk, every depth
		j.needleSeen = map[string]bool{}
	}
	seen := j.needleSeen
	// add records a needle; numeric is true for dates and UIDs.
	add := func(s string, numeric bool) {
		low := strings.ToLower(strings.TrimSpace(s))
		if seen[low] { // most candidates repeat (every slice names its patient)
			return
		}
		seen[low] = true
		j.hold(64 + 5*len(low)) // the map entry, the runes, the needle
		r := []rune(low)
		if needleWeight(r) < minNeedle || !hasAlnum(r) {
			return
		}
		b := boundNone
		switch {
		case numeric || allDigits(r):
			b = boundNumber
		case hasIdeographic(r):
			// CJK text has no spaces between words, so word boundaries
			// mean nothing there; two ideographs are already specific.
		case len(r) < 5:
			b = boundWord
		}
		j.needles = append(j.needles, needle{runes: r, bound: b})
	}
	for _, e := range els {
		if e.Tag.IsPrivateCreator() || e.Tag.Element() == 0 || e.Tag == tagSpecificCharacterSet {
			continue
		}
		if !e.Enc.Implicit && dicomraw.VRContradicts(e.Tag, e.VR) {
			// Removed uninterpreted (contradictoryVR). Whatever text its
			// bytes hold, and its value read with the dictionary's VR,
			// must not survive in cleaned text either: the verifier looks
			// for both.
			child := sc
			child.depth++
			for _, it := range e.Items {
				j.collect(it.Elements, child)
			}
			if e.Loaded && len(e.Value) > 0 {
				for _, r := range verify.TextRuns(e.Value) {
					add(r, false)
				}
				if vr := dicomraw.DictVR(e.Tag); vr == "UI" {
					j.collectUIDs(e, sc, add)
				} else {
					collectValue(j.decodeValue(e, sc, vr), vr, add)
				}
			}
			continue
		}
		d := j.decide(e, sc, crs)
		if d.vr == "SQ" {
			child := sc
			child.depth++
			for _, it := range e.Items {
				j.collect(it.Elements, child)
			}
			continue
		}
		if d.vr == "UI" {
			if !d.class { // a class UID stays as it is, in text too
				j.collectUIDs(e, sc, add)
			}
			continue
		}
		if d.private || !e.Loaded || len(e.Value) == 0 {
			continue
		}
		if d.action == rules.Keep || (d.action == rules.Clean && d.vr != "DA" && d.vr != "DT") {
			continue
		}
		text := j.decodeValue(e, sc, d.vr)
		if d.vr != "DA" && d.vr != "DT" && !verify.PatientData(e.Tag) {
			text = j.withoutProducts(text)
		}
		collectValue(text, d.vr, add)
	}
}

// withoutProducts drops the values of a multi-valued text that are one of
// the file's product names whole (verify.ProductNames: a Content
// Creator's Name that is the vendor of an AI result): they name a
// product, not a person, and are not cut out of other text. The verifier
// follows the same rule; the patient's own attributes never do.
func (j *Job) withoutProducts(text string) string {
	if j.products == nil {
		j.products = verify.ProductNames(j.f.Elements)
		if j.products == nil {
			j.products = map[string]bool{}
		}
	}
	if len(j.products) == 0 {
		return text
	}
	vals := strings.Split(text, `\`)
	kept := vals[:0]
	for _, v := range vals {
		if !j.products[verify.NormalizeName(v)] {
			kept = append(kept, v)
		}
	}
	return strings.Join(kept, `\`)
}

// decodeValue is an element's value as text, read as vr in the scope's
// character set (raw bytes when it has none).
func (j *Job) decodeValue(e *dicomraw.Element, sc scope, vr string) string {
	if sc.cs != nil {
		return sc.cs.Decode(trimValue(e.Value), vr)
	}
	return string(trimValue(e.Value))
}

// collectValue adds the needles of one value of VR vr: a person name's
// spellings and parts, a date as written and as people write it, a text
// value's values. add's second argument is true for dates.
func collectValue(text, vr string, add func(string, bool)) {
	switch vr {
	case "PN":
		for _, v := range strings.Split(text, `\`) {
			add(nameSpaces(v), false)
			// Names are written family-first or given-first, with or
			// without a space (王小东, 山田 太郎, Jadwiga Strzelecka).
			for _, g := range strings.Split(v, "=") {
				c := strings.Split(g, "^")
				if len(c) >= 2 && c[0] != "" && c[1] != "" {
					add(c[0]+c[1], false)
					add(c[0]+" "+c[1], false)
					add(c[1]+" "+c[0], false)
					add(c[1]+c[0], false)
				}
			}
			for _, tok := range strings.FieldsFunc(v, func(r rune) bool { return r == '^' || r == '=' || r == ' ' || r == ',' }) {
				if !nameNoise[strings.ToLower(tok)] {
					add(tok, false)
				}
			}
		}
	case "DA", "DT":
		for _, v := range strings.Split(text, `\`) {
			// The date part as written, whether or not it reads as a
			// date (one that cannot be read could still be the real
			// one), and the ways people write it when it does.
			v = strings.TrimSpace(v)
			if len(v) >= 8 {
				add(v[:8], true)
			} else {
				add(v, true)
			}
			for _, s := range dateForms(v) {
				add(s, true)
			}
		}
	case "LO", "SH", "ST", "LT", "UT", "UC", "AE":
		for _, v := range strings.Split(text, `\`) {
			add(v, false)
		}
	}
}

func trimValue(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

// needleWeight is a needle's length for the minimum: an ideograph or a
// syllable of a CJK script counts twice, as names there are one to three
// characters long.
func needleWeight(r []rune) int {
	n := 0
	for _, c := range r {
		n++
		if isIdeographic(c) {
			n++
		}
	}
	return n
}

func isIdeographic(c rune) bool {
	// Hangul Jamo (U+1100) is the first of these scripts: text below it
	// skips the table lookups, which are most of the cost otherwise.
	return c >= 0x1100 && unicode.In(c, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

func hasIdeographic(r []rune) bool {
	for _, c := range r {
		if isIdeographic(c) {
			return true
		}
	}
	return false
}

func hasAlnum(r []rune) bool {
	for _, c := range r {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			return true
		}
	}
	return false
}

// dateForms spells a DA (or the date of a DT) the ways people write dates.
func dateForms(v string) []string {
	if len(v) < 8 {
		return nil
	}
	t, err := time.Parse("20060102", v[:8])
	if err != nil {
		return nil
	}
	return []string{t.Format("20060102"), t.Format("2006-01-02"), t.Format("02.01.2006"),
		t.Format("01/02/2006"), t.Format("02/01/2006"), t.Format("2006/01/02"), t.Format("2006.01.02")}
}

// redact replaces every occurrence of a needle in text (case-insensitive)
// with "***" and returns the number of replacements. It repeats until
// nothing is found: taking one value out can free the bounds of another
// ("000000m$&" loses "000000", and "m$&" no longer touches a digit).
// Every replacement takes away a letter or digit and adds none, so this
// ends.
func redact(text string, needles []needle) (string, int) {
	total := 0
	for {
		out, n := redactOnce(text, needles)
		if n == 0 {
			return text, total
		}
		text, total = out, total+n
	}
}

func redactOnce(text string, needles []needle) (string, int) {
	if len(needles) == 0 || text == "" {
		return text, 0
	}
	src := []rune(text)
	low := make([]rune, len(src))
	for i, r := range src {
		low[i] = unicode.ToLower(r)
	}
	hit := make([]bool, len(src))
	n := 0
	for _, nd := range needles {
		m := len(nd.runes)
		for i := 0; i+m <= len(low); i++ {
			if !equalRunes(low[i:i+m], nd.runes) {
				continue
			}
			if !nd.bounded(src, i, i+m) {
				continue
			}
			for k := i; k < i+m; k++ {
				hit[k] = true
			}
			n++
			i += m - 1
		}
	}
	if n == 0 {
		return text, 0
	}
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		if !hit[i] {
			b.WriteRune(src[i])
			continue
		}
		b.WriteString("***")
		for i+1 < len(src) && hit[i+1] {
			i++
		}
	}
	return b.String(), n
}

func equalRunes(a, b []rune) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// bounded checks what surrounds a match at src[start:end] (the runes as
// written: lower-casing can turn a non-ASCII letter into an ASCII one).
func (nd needle) bounded(src []rune, start, end int) bool {
	at := func(i int) rune {
		if i < 0 || i >= len(src) {
			return 0
		}
		return src[i]
	}
	digit := func(i int) bool { c := at(i); return c >= '0' && c <= '9' }
	switch nd.bound {
	case boundWord:
		return !asciiWord(at(start-1)) && !asciiWord(at(end))
	case boundNumber:
		return !digit(start-1) && !digit(end) &&
			!(at(start-1) == '.' && digit(start-2)) && !(at(end) == '.' && digit(end+1))
	}
	return true
}

func asciiWord(c rune) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func allDigits(r []rune) bool {
	for _, c := range r {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(r) > 0
}

// nameSpaces writes a person name's component and group separators as
// spaces ("Doe^John" -> "Doe John").
func nameSpaces(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '^' || r == '=' {
			return ' '
		}
		return r
	}, v)
}
