// Package verify proves, file by file, that a de-identified output holds
// none of the identifying values of its input. It is independent of the
// engine: it reads the input itself, decides from PS3.15 Table E.1-1 and
// the value representations what identifies, and scans the output's bytes
// for those values in every encoding they could take. The engine's own
// decisions are not consulted, so a bug there is caught here.
package verify

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dicomdeid/dicomdeid/pipeline/charset"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/uidreg"
)

// PrivateKey names a private attribute independently of its block.
type PrivateKey struct {
	Group   uint16
	Creator string // normalised: upper case, trimmed
	Element uint8
}

// Policy is what the active profile keeps on purpose. Values of attributes
// it keeps are not looked for, and the report lists them as exempt.
type Policy struct {
	Options     [ps315.NumOptions]bool
	KeepTags    map[uint32]bool     // explicit keep rules on public tags
	KeepPrivate map[PrivateKey]bool // explicit keep rules on private attributes
	// ToolValues are values the de-identifier writes itself (dummies,
	// markers); an input value equal to one of them proves nothing.
	ToolValues []string
}

// Kind is the category of an identifying value.
type Kind string

// Kinds of identifying values.
const (
	KindName    Kind = "name"
	KindID      Kind = "id"      // IDs, numbers, addresses, other short text
	KindText    Kind = "text"    // free text
	KindDate    Kind = "date"    // birth date
	KindUID     Kind = "uid"     // instance UIDs not registered in PS3.6
	KindPrivate Kind = "private" // text found in a private or UN value
)

// needle is one identifying value looked for in outputs.
type needle struct {
	text   string   // as decoded, lower case
	forms  []string // the other spellings seen (original case)
	source string   // attribute path in the input
	kind   Kind
	// patient: the value is (also) the patient's own data (Patient and
	// Visit attributes, groups 0010 and 0038), never excused as a
	// vendor's product name.
	patient bool
}

// Exemption is an identifying attribute the profile keeps on purpose.
type Exemption struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Set is the identifying values of one or more inputs.
type Set struct {
	policy  Policy
	needles []needle
	seen    map[string]int // text -> index in needles
	exempt  map[string]string
	// allowed: lower-cased raw values (one per value of a multi-valued
	// attribute) of short non-identifying attributes of the inputs (LO, SH,
	// CS: codes, manufacturers, code meanings). A hit inside an output
	// value that is one of them is a coincidence (Institution Name TOSHIBA,
	// Manufacturer TOSHIBA_MEC), not a leak.
	allowed map[string]attrPath
	// retained: the same for identifying attributes kept on purpose; only
	// text copied into private values is excused by them.
	retained map[string]attrPath
	charsets map[string]*charset.Set
	tool     map[string]bool
	// products: the product names of the input being added (ProductNames).
	products map[string]bool
	// lower and lowerBuf: the value add is looking at, lower-cased (see
	// seenLower).
	lower    string
	lowerBuf []byte
	// budget, when set, is charged for what the set and its compiled
	// patterns hold (held: not charged yet); err is its refusal, after
	// which the set is incomplete and must not be used to pass a file.
	budget dicomraw.Budget
	held   int64
	err    error
}

// What the set holds per needle, per recorded value and per compiled
// pattern beyond their bytes (the structures, map entries and slots),
// as charged to its budget. Measured: a file of 180,000 distinct
// identifying values held 1.1 KB per value once compiled.
const (
	needleCost  = 160
	valueCost   = 80
	patternCost = 112
	chargeStep  = 64 << 10
)

// SetBudget makes the set charge b for what it holds (see Err).
func (s *Set) SetBudget(b dicomraw.Budget) { s.budget = b }

// Err is the budget's refusal: the set stopped collecting (or its
// matcher compiling) and is incomplete.
func (s *Set) Err() error { return s.err }

// hold charges n bytes, a step at a time.
func (s *Set) hold(n int) {
	if s.budget == nil || s.err != nil {
		return
	}
	s.held += int64(n)
	if s.held < chargeStep {
		return
	}
	s.err = s.budget.Charge(s.held)
	s.held = 0
}

// NewSet returns an empty set for a policy; Add inputs to it.
func NewSet(p Policy) *Set {
	s := &Set{policy: p, seen: map[string]int{}, exempt: map[string]string{},
		allowed: map[string]attrPath{}, retained: map[string]attrPath{}, charsets: map[string]*charset.Set{}, tool: map[string]bool{}}
	for _, v := range p.ToolValues {
		s.tool[strings.ToLower(strings.TrimSpace(v))] = true
	}
	def, _ := charset.Parse(nil)
	s.charsets[""] = def
	return s
}

// Collect returns the identifying values of one input.
func Collect(in *dicomraw.File, p Policy) *Set {
	s := NewSet(p)
	s.Add(in)
	return s
}

// Add collects the identifying values of one more input.
func (s *Set) Add(in *dicomraw.File) {
	s.products = ProductNames(in.Elements)
	s.dataset(in.Elements, "", s.charsets[""], false)
	s.products = nil
	if s.err == nil && s.budget != nil && s.held > 0 {
		s.err = s.budget.Charge(s.held)
		s.held = 0
	}
}

// ProductNames are the names a file gives its equipment and its private
// blocks: the values of Manufacturer and Manufacturer's Model Name and the
// private creators that Table E.3.10-1 names, at any depth, normalised
// (NormalizeName). A value of
// another attribute that is one of them whole (a Content Creator's Name
// that is the vendor of an AI result, an Institution Name that is the
// manufacturer's) names a product, not a person or a place of the
// patient's: it is not an identifying value of the file, unless it is
// the patient's own data (groups 0010 and 0038). The engine cleans by
// the same rule.
func ProductNames(els []*dicomraw.Element) map[string]bool {
	var m map[string]bool
	var walk func([]*dicomraw.Element)
	walk = func(els []*dicomraw.Element) {
		for _, e := range els {
			for _, it := range e.Items {
				walk(it.Elements)
			}
			if !e.Loaded || len(e.Value) == 0 {
				continue
			}
			// A private creator counts when it is a published vendor's
			// (Table E.3.10-1): an unknown one is removed with its block,
			// and could name anyone.
			if !vendorAttribute(e.Tag) && !(e.Tag.IsPrivateCreator() && ps315.IsKnownCreator(e.Tag.Group(), ps315.NormalizeCreator(string(e.Value)))) {
				continue
			}
			for _, v := range strings.Split(string(e.Value), `\`) {
				if n := NormalizeName(v); n != "" {
					if m == nil {
						m = map[string]bool{}
					}
					m[n] = true
				}
			}
		}
	}
	walk(els)
	return m
}

// vendorAttribute: Manufacturer and Manufacturer's Model Name, where a
// vendor names itself and its product.
func vendorAttribute(t dicomraw.Tag) bool { return t == 0x00080070 || t == 0x00081090 }

// PatientData reports an attribute of the patient's own (the Patient,
// Patient Demographic and Visit attributes: groups 0010 and 0038).
func PatientData(t dicomraw.Tag) bool { g := t.Group(); return g == 0x0010 || g == 0x0038 }

// NormalizeName is how product names are compared: lower case, person
// name separators and runs of spaces as one space, padding trimmed.
func NormalizeName(v string) string {
	v = strings.Map(func(r rune) rune {
		if r == '^' || r == '=' || r == 0 {
			return ' '
		}
		return unicode.ToLower(r)
	}, v)
	return strings.Join(strings.Fields(v), " ")
}

// product reports whether v, a value of the attribute t, is one of the
// input's product names (see ProductNames).
func (s *Set) product(t dicomraw.Tag, v string) bool {
	return len(s.products) > 0 && !PatientData(t) && s.products[NormalizeName(v)]
}

// Value is one identifying value of a set, as decoded (lower case).
type Value struct {
	Text string
	Kind Kind
}

// Values lists the set's identifying values (for looking for them where
// the matcher cannot: in the text OCR reads in pixels).
func (s *Set) Values() []Value {
	out := make([]Value, 0, len(s.needles))
	for _, n := range s.needles {
		out = append(out, Value{Text: n.text, Kind: n.kind})
	}
	return out
}

// Len is the number of distinct identifying values.
func (s *Set) Len() int { return len(s.needles) }

// Exemptions lists the attribute paths kept on purpose, sorted.
func (s *Set) Exemptions() []Exemption {
	out := make([]Exemption, 0, len(s.exempt))
	for p, r := range s.exempt {
		out = append(out, Exemption{Path: p, Reason: r})
	}
	sortExemptions(out)
	return out
}

// dataset collects from one dataset. inside is true within a sequence that
// Table E.1-1 lists as identifying (Person Identification Code Sequence,
// Request Attributes Sequence...): every text value in it identifies,
// whether or not its own tag is listed.
func (s *Set) dataset(els []*dicomraw.Element, path string, cs *charset.Set, inside bool) {
	if s.err != nil {
		return
	}
	for _, e := range els {
		if e.Tag == dicomraw.TagSpecificCharSet && e.Loaded {
			terms := strings.Split(strings.TrimRight(string(e.Value), " \x00"), `\`)
			for i := range terms {
				terms[i] = strings.TrimSpace(terms[i])
			}
			key := strings.Join(terms, `\`)
			if c, ok := s.charsets[key]; ok {
				cs = c
			} else if c, err := charset.Parse(terms); err == nil {
				s.charsets[key] = c
				cs = c
			} else {
				cs = nil // undecodable: raw bytes only
			}
		}
	}
	creators := map[uint32]string{}
	for _, e := range els {
		if e.Tag.IsPrivateCreator() && e.Loaded {
			creators[uint32(e.Tag.Group())<<8|uint32(e.Tag.Element())] = strings.ToUpper(strings.TrimSpace(strings.TrimRight(string(e.Value), " \x00")))
		}
	}
	for _, e := range els {
		t := e.Tag
		if t.Element() == 0 || t.IsPrivateCreator() || t.Group() == 0x0002 || t.Group() == 0xFFFE {
			continue
		}
		p := attrPath{parent: path, t: t, creators: creators}
		if len(e.Items) > 0 {
			child := inside || s.identifyingSequence(uint32(t))
			ps := p.String()
			for i, it := range e.Items {
				s.dataset(it.Elements, ps+"["+strconv.Itoa(i+1)+"]/", cs, child)
			}
			continue
		}
		if !e.Loaded || len(e.Value) == 0 || e.Tag.Group() == 0x7FE0 {
			continue
		}
		if t.IsPrivate() {
			s.private(e, p, creators, cs)
			continue
		}
		s.public(e, p, cs, inside)
	}
}

// public collects from a standard attribute.
func (s *Set) public(e *dicomraw.Element, path attrPath, cs *charset.Set, inside bool) {
	t := uint32(e.Tag)
	vr := e.VR
	contradicted := dicomraw.VRContradicts(e.Tag, vr)
	if vr == "UN" || vr == "" || contradicted {
		// What identifies is decided by the tag's meaning, not by a VR
		// the file may have wrong.
		vr = dicomraw.DictVR(e.Tag)
	}
	if contradicted {
		// The bytes may be anything: the text in them counts too.
		for _, r := range TextRuns(e.Value) {
			s.add(r, path, KindPrivate)
		}
	}
	raw := trim(e.Value)
	row, inTable := ps315.Lookup(t)
	onPurpose, why := s.keptOnPurpose(t, row, inTable, vr)
	identifying := false
	kind := KindID
	switch {
	case vr == "UI":
		// A class UID (SOP class, transfer syntax, coding scheme...) names
		// a kind of object, whoever the patient: kept by de-identification,
		// registered or not, so not looked for. The same value written in
		// an instance attribute of the input is looked for from there.
		if !s.policy.Options[ps315.RetainUIDs] && !uidreg.ClassAttribute(t) {
			for _, u := range strings.Split(string(raw), `\`) {
				u = strings.Trim(u, " \x00")
				if len(u) >= 8 && !uidreg.IsRegistered(u) && !uidreg.IsDICOMRoot(u) {
					s.add(u, path, KindUID)
				}
			}
		}
		return
	case vr == "PN":
		identifying, kind = true, KindName
	case (vr == "DA" || vr == "DT") && (inside || inTable && row.Basic != ps315.CodeK):
		identifying, kind = true, KindDate
	case isText(vr) && (inTable && row.Basic != ps315.CodeK || inside && !codeStructure[t]):
		identifying = true
		if vr == "ST" || vr == "LT" || vr == "UT" || vr == "UC" {
			kind = KindText
		}
	}
	if e.VR == "UN" && vr == "UN" { // a tag nobody knows: its raw text
		for _, r := range TextRuns(e.Value) {
			s.add(r, path, KindPrivate)
		}
		return
	}
	if !identifying {
		// Overlay and curve text (labels, descriptions) is about the image
		// and may name the patient: it never excuses a match.
		if g := e.Tag.Group(); (vr == "LO" || vr == "SH" || vr == "CS") && !(g >= 0x5000 && g <= 0x60FF) {
			s.addValues(s.allowed, raw, path)
		}
		return
	}
	if onPurpose {
		s.exemptAt(path, why)
		s.addValues(s.retained, raw, path)
		return
	}
	text := decode(cs, raw, vr)
	for _, v := range strings.Split(text, `\`) {
		v = strings.TrimSpace(v)
		if v == "" || kind != KindDate && s.product(e.Tag, v) {
			continue
		}
		if kind == KindName {
			s.name(v, path)
			continue
		}
		if kind == KindDate && len(v) >= 8 {
			s.add(v[:8], path, KindDate)
			continue
		}
		s.add(v, path, kind)
	}
}

// exemptAt records an attribute kept on purpose.
func (s *Set) exemptAt(path attrPath, why string) {
	ps := path.String()
	if _, ok := s.exempt[ps]; !ok {
		s.hold(valueCost + len(ps))
	}
	s.exempt[ps] = why
}

// addValues records each value of a multi-valued raw value, lower case.
func (s *Set) addValues(m map[string]attrPath, raw []byte, path attrPath) {
	for _, v := range bytes.Split(raw, []byte{'\\'}) {
		k := string(bytes.ToLower(bytes.Trim(v, " \x00")))
		if _, ok := m[k]; !ok && k != "" {
			m[k] = path
			s.hold(valueCost + len(k))
		}
	}
}

// identifyingSequence reports a sequence whose whole content identifies:
// listed in Table E.1-1 with an action that does not keep it, not kept on
// purpose, and not one that only carries references (X/Z/U*, U) or the
// SR content tree (whose codes are vocabulary; its names and text are
// caught through the attributes they repeat).
func (s *Set) identifyingSequence(t uint32) bool {
	row, ok := ps315.Lookup(t)
	if !ok || t == 0x0040A730 {
		return false
	}
	switch row.Basic {
	case ps315.CodeK, ps315.CodeU, ps315.CodeXZUStar, ps315.CodeC:
		return false
	}
	onPurpose, _ := s.keptOnPurpose(t, row, true, "SQ")
	return !onPurpose
}

// codeStructure are the parts of a code that name its vocabulary, not
// the concept: "DCM", "99LOCAL", "20020904000000" identify nobody.
var codeStructure = map[uint32]bool{
	0x00080102: true, 0x00080103: true, 0x00080105: true, 0x00080106: true, 0x00080107: true,
	0x0008010B: true, 0x0008010D: true, 0x0008010F: true, 0x00080117: true,
}

// name adds a person name, its groups and its components.
func (s *Set) name(v string, path attrPath) {
	s.add(nameSpaces(v), path, KindName)
	for _, g := range strings.Split(v, "=") {
		c := strings.Split(g, "^")
		for _, part := range c {
			for _, w := range strings.Fields(part) {
				if !nameNoise[strings.ToLower(strings.Trim(w, ".,"))] {
					s.add(w, path, KindName)
				}
			}
		}
		if len(c) >= 2 && c[0] != "" && c[1] != "" {
			s.add(c[0]+c[1], path, KindName)
			s.add(c[1]+" "+c[0], path, KindName)
			s.add(c[1]+c[0], path, KindName)
		}
	}
}

// private collects the text of a private value not kept on purpose.
func (s *Set) private(e *dicomraw.Element, path attrPath, creators map[uint32]string, cs *charset.Set) {
	creator := ""
	if e.Tag.Element() >= 0x1000 {
		creator = creators[uint32(e.Tag.Group())<<8|uint32(e.Tag.Element()>>8)]
	}
	k := PrivateKey{e.Tag.Group(), creator, uint8(e.Tag.Element())}
	if creator != "" && s.policy.KeepPrivate[k] {
		s.exemptAt(path, "kept by a profile rule")
		s.addValues(s.retained, trim(e.Value), path)
		return
	}
	if creator != "" && s.policy.Options[ps315.RetainSafePrivate] {
		// Written with another VR than the list's, it is not the
		// attribute the list calls safe: its text counts.
		if sp, ok := ps315.LookupSafePrivate(k.Group, creator, k.Element); ok && (len(sp.VR) != 2 || e.VR == "UN" || e.VR == sp.VR) {
			s.exemptAt(path, "safe private attribute (Table E.3.10-1), Retain Safe Private")
			s.addValues(s.retained, trim(e.Value), path)
			return
		}
	}
	for _, r := range TextRuns(e.Value) {
		s.add(r, path, KindPrivate)
	}
	if isText(e.VR) || e.VR == "PN" {
		text := decode(cs, trim(e.Value), e.VR)
		for _, v := range strings.Split(text, `\`) {
			s.add(strings.TrimSpace(v), path, KindPrivate)
		}
	}
}

// keptCreator reports whether v, a private creator of group, names a block
// the profile can keep: one Table E.3.10-1 lists, or one a keep rule names.
// Such a value is a vendor's published name, not the file's data.
func (s *Set) keptCreator(group uint16, v []byte) bool {
	c := ps315.NormalizeCreator(string(v))
	if ps315.IsKnownCreator(group, c) {
		return true
	}
	for k := range s.policy.KeepPrivate {
		if k.Group == group && ps315.NormalizeCreator(k.Creator) == c {
			return true
		}
	}
	return false
}

// keptOnPurpose reports whether the profile retains an attribute by an
// option (K or C in its column) or an explicit keep rule.
func (s *Set) keptOnPurpose(t uint32, row ps315.Row, inTable bool, vr string) (bool, string) {
	if s.policy.KeepTags[t] {
		return true, "kept by a profile rule"
	}
	if !inTable {
		return false, ""
	}
	for o := ps315.Option(0); o < ps315.NumOptions; o++ {
		if !s.policy.Options[o] {
			continue
		}
		switch row.Option[o] {
		case ps315.CodeK:
			return true, "retained by " + o.Key()
		case ps315.CodeC:
			// Cleaned text keeps its non-identifying words; the names and
			// IDs inside are needles of their own. Cleaned dates move, so
			// the original date is still looked for.
			if isText(vr) || vr == "SQ" {
				return true, "cleaned by " + o.Key() + " (names and IDs inside are still looked for)"
			}
		}
	}
	return false, ""
}

// add records one identifying value if it is specific enough to look for.
func (s *Set) add(v string, source attrPath, kind Kind) {
	orig := strings.TrimSpace(v)
	patient := PatientData(source.t)
	if i, seen, changed := s.seenLower(orig); seen {
		if patient {
			s.needles[i].patient = true
		}
		// Seen before (the same name in several attributes, a surname
		// that is also a word of another value). Non-ASCII letters only
		// match in the cases looked for: keep every spelling met
		// ("Éléonore" is neither "éléonore" nor "ÉLÉONORE").
		if changed && !slices.Contains(s.needles[i].forms, orig) {
			s.needles[i].forms = append(s.needles[i].forms, orig)
			s.hold(16 + len(orig))
		}
		return
	}
	v = s.lower
	if !specific(v, kind) || s.tool[v] {
		return
	}
	s.seen[v] = len(s.needles)
	n := needle{text: v, source: source.String(), kind: kind, patient: patient}
	s.hold(needleCost + 2*len(v) + len(n.source))
	if orig != v {
		n.forms = []string{orig}
	}
	s.needles = append(s.needles, n)
}

// seenLower looks v up lower-cased: the needle's index if it is one
// already, and whether lower-casing changed it. ASCII, the common case,
// is lowered in a reused buffer and looked up without allocating; the
// lower-cased string (s.lower) is only made when v is not a needle yet.
func (s *Set) seenLower(v string) (i int, seen, changed bool) {
	b := s.lowerBuf[:0]
	for k := 0; k < len(v); k++ {
		c := v[k]
		if c >= 0x80 {
			s.lower = strings.ToLower(v)
			i, seen = s.seen[s.lower]
			return i, seen, s.lower != v
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			changed = true
		}
		b = append(b, c)
	}
	s.lowerBuf = b
	if i, seen = s.seen[string(b)]; seen {
		return i, true, changed
	}
	s.lower = v
	if changed {
		s.lower = string(b)
	}
	return 0, false, changed
}

// specific rejects values too short or too common to identify anyone.
func specific(v string, kind Kind) bool {
	if v == "" {
		return false
	}
	w, letters, digits, ascii := countASCII(v)
	if !ascii {
		if !utf8.ValidString(v) {
			return false
		}
		w, letters, digits = 0, 0, 0
		for _, r := range v {
			w++
			switch {
			case isIdeographic(r):
				w++
				letters++
			case unicode.IsLetter(r):
				letters++
			case unicode.IsDigit(r):
				digits++
			}
		}
	}
	switch {
	case kind == KindUID:
		return true
	case letters == 0 && digits == 0:
		return false
	case kind == KindPrivate:
		// Numbers in private values are measurements; an ID hidden there
		// is caught through the public attribute it copies.
		return w >= 5 && letters >= 3
	case letters == 0:
		return digits >= 5 // an ID made of digits: shorter ones are everywhere
	}
	return w >= 3 && !commonWords[v]
}

// countASCII counts the characters, letters and digits of v when it is
// ASCII (ascii false otherwise): what specific counts, without decoding
// runes or consulting Unicode tables.
func countASCII(v string) (w, letters, digits int, ascii bool) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 0x80:
			return 0, 0, 0, false
		case 'a' <= c|0x20 && c|0x20 <= 'z':
			letters++
		case '0' <= c && c <= '9':
			digits++
		}
	}
	return len(v), letters, digits, true
}

// Words that appear as values of identifying attributes without
// identifying anyone; they are everywhere in outputs too.
var commonWords = map[string]bool{
	"anonymous": true, "anonymized": true, "anonymised": true, "unknown": true, "none": true,
	"removed": true, "n/a": true, "test": true, "yes": true, "no": true,
	// Placeholders written into name fields ("Last Name^First Name",
	// "Test^Patient", "Doctor^Who").
	"name": true, "first": true, "last": true, "patient": true, "doctor": true, "physician": true,
	"first name": true, "last name": true, "phantom": true, "text": true, "enter": true, "enter text": true,
}

// Words that are parts of names but identify nobody.
var nameNoise = map[string]bool{"dr": true, "mr": true, "mrs": true, "ms": true, "md": true,
	"phd": true, "prof": true, "jr": true, "sr": true, "von": true, "van": true, "der": true,
	"den": true, "del": true, "de": true, "la": true, "le": true}

func isText(vr string) bool {
	switch vr {
	case "LO", "SH", "ST", "LT", "UT", "UC", "AE", "PN":
		return true
	}
	return false
}

func isIdeographic(c rune) bool {
	// Hangul Jamo (U+1100) is the first of these scripts: text below it
	// skips the table lookups, which are most of the cost otherwise.
	return c >= 0x1100 && unicode.In(c, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

func decode(cs *charset.Set, raw []byte, vr string) string {
	if cs == nil {
		return string(raw)
	}
	return cs.Decode(raw, vr)
}

// TextRuns finds text inside an opaque value: runs of printable ASCII or
// Latin-1 of five or more characters, and the same in UTF-16LE. The
// verifier looks for them wherever a value cannot be read as what it
// should be; the engine strips them from the text it cleans.
func TextRuns(b []byte) []string {
	var out []string
	start := -1
	flush := func(end int) {
		if start >= 0 && end-start >= 5 && wordy(b[start:end]) {
			out = append(out, string(latin1(b[start:end])))
		}
		start = -1
	}
	for i, c := range b {
		if printable(c) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(b))
	// UTF-16LE: printable, 0x00, printable, 0x00 ...
	for par := 0; par < 2; par++ {
		var run []rune
		for i := par; i+1 < len(b); i += 2 {
			if b[i+1] == 0 && printable(b[i]) {
				run = append(run, rune(b[i]))
				continue
			}
			if len(run) >= 5 && wordy([]byte(string(run))) {
				out = append(out, string(run))
			}
			run = run[:0]
		}
		if len(run) >= 5 && wordy([]byte(string(run))) {
			out = append(out, string(run))
		}
	}
	return out
}

// wordy tells text from bytes that happen to be printable (lookup table
// entries 0x4141...): at least three different letters.
func wordy(b []byte) bool {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if (c|0x20 >= 'a' && c|0x20 <= 'z' || c >= 0xC0) && !seen[c|0x20] {
			seen[c|0x20] = true
			n++
		}
	}
	return n >= 3
}

func printable(c byte) bool { return (c >= 0x20 && c < 0x7F) || c >= 0xC0 }

func latin1(b []byte) []rune {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return r
}

// attrPath names an attribute of the input. It is spelt out only when a
// value of the attribute is recorded: most attributes identify nobody, and
// building every path cost more than the rest of the collection.
type attrPath struct {
	parent   string
	t        dicomraw.Tag
	creators map[uint32]string
}

func (a attrPath) String() string { return a.parent + attrName(a.t, a.creators) }

// attrName is an attribute's name in a path: its keyword, or its tag. A
// private attribute is named by group, creator and element when the
// creator is a published one (Table E.3.10-1), else as (gggg,xxee): a
// creator string from the file could hold anything, and paths end up in
// messages.
func attrName(t dicomraw.Tag, creators map[uint32]string) string {
	if t.IsPrivate() {
		c := ""
		if t.Element() >= 0x1000 {
			c = creators[uint32(t.Group())<<8|uint32(t.Element()>>8)]
		}
		if c == "" || !ps315.IsKnownCreator(t.Group(), c) {
			return "(" + dicomraw.Hex(uint64(t.Group()), 4) + ",xx" + dicomraw.Hex(uint64(uint8(t.Element())), 2) + ")"
		}
		// Named as the table spells it: the file's spelling matched it
		// only once normalised, and may carry a NUL or other padding.
		c = ps315.NormalizeCreator(c)
		return "(" + dicomraw.Hex(uint64(t.Group()), 4) + ",\"" + c + "\"," + dicomraw.Hex(uint64(uint8(t.Element())), 2) + ")"
	}
	if info, ok := dicomraw.Lookup(t); ok && info.Keyword != "" {
		return info.Keyword
	}
	return t.String()
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
