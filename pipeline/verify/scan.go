package verify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Finding is one residual identifier: where it is in the output and which
// input attribute it came from. It never carries the value.
type Finding struct {
	Path   string `json:"path"`   // attribute path in the output
	Source string `json:"source"` // attribute path in the input
	Kind   Kind   `json:"kind"`
}

func (f Finding) String() string {
	return fmt.Sprintf("residual identifier in %s (%s value from %s)", f.Path, f.Kind, f.Source)
}

// Matcher is a Set compiled for scanning outputs. It is safe for
// concurrent use.
type Matcher struct {
	set    *Set
	parts  []*matcherPart
	maxLen int
}

// matcherPart is an index of patterns for some of the set's needles;
// needles maps the part's needle numbers to the set's.
type matcherPart struct {
	compiled *compiled
	needles  []int
}

// compiled is what a needle list compiles to. It depends only on the
// needles' texts, kinds and spellings and on the character sets, so it
// can serve another file with the same ones (Cache).
type compiled struct {
	index  *patternIndex
	pats   []pattern
	maxLen int
	size   int // bytes it holds, about (what the cache counts)
}

type pattern struct {
	needle int
	unit   int  // 1, or 2 for UTF-16
	bound  byte // 0: none; 'w': no letter or digit around; 'n': no digit or '.' around
	// g0Text: the form is text of a two-byte G0 set (JIS X 0208/0212)
	// with its escape sequences cut, bytes that spell the value only
	// where such a set is in G0 (see inSingleByteG0).
	g0Text bool
}

// Compile builds the matcher: every needle in every encoding it could take
// in an output (the inputs' character sets, UTF-8, Latin-1, UTF-16LE),
// upper and lower case; ASCII letters match in any case.
func (s *Set) Compile() *Matcher { return s.CompileCached(nil) }

// CompileCached is Compile with a cache of what other files' needles
// compiled to. The slices of a series name the same patient, study and
// dates: only their instance UIDs differ, and those compile in no time.
// With a nil cache it compiles everything.
func (s *Set) CompileCached(c *Cache) *Matcher {
	m := &Matcher{set: s}
	var uids, other []int
	for i, n := range s.needles {
		if n.kind == KindUID {
			uids = append(uids, i)
		} else {
			other = append(other, i)
		}
	}
	if c != nil && len(other) > 0 {
		// The key is the needles' hashes in a canonical order (that of the
		// hashes: positions in a compiled list name needles, so equal keys
		// must list equal needles in the same order). The hashes are
		// seeded per cache: nobody can make two lists collide on purpose.
		hs := make([]needleHash, len(other))
		for k, i := range other {
			hs[k] = needleHash{h: c.hash(s.needles[i]), i: i}
		}
		sort.Slice(hs, func(a, b int) bool {
			if hs[a].h != hs[b].h {
				return hs[a].h < hs[b].h
			}
			return needleKey(s.needles[hs[a].i]) < needleKey(s.needles[hs[b].i])
		})
		key := make([]byte, 0, 8*len(hs)+32)
		for _, cs := range s.charsetKeys() {
			key = append(key, cs...)
			key = append(key, 1)
		}
		key = append(key, 2)
		for k, h := range hs {
			key = binary.LittleEndian.AppendUint64(key, h.h)
			other[k] = h.i
		}
		cp := c.get(string(key), func() (*compiled, bool) {
			cp := s.compile(other)
			return cp, s.err == nil // an incomplete list is never kept
		})
		m.parts = append(m.parts, &matcherPart{compiled: cp, needles: other})
		other = nil
	}
	for _, idx := range [][]int{other, uids} {
		if len(idx) > 0 {
			m.parts = append(m.parts, &matcherPart{compiled: s.compile(idx), needles: idx})
		}
	}
	for _, p := range m.parts {
		m.maxLen = max(m.maxLen, p.compiled.maxLen)
	}
	return m
}

type needleHash struct {
	h uint64
	i int
}

// hash is a seeded hash of what a needle compiles from (needleKey).
func (c *Cache) hash(n needle) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(string(n.kind))
	h.WriteByte(0)
	h.WriteString(n.text)
	for _, f := range n.forms {
		h.WriteByte(0)
		h.WriteString(f)
	}
	return h.Sum64()
}

// needleKey is what a needle compiles from.
func needleKey(n needle) string {
	return string(n.kind) + "\x00" + n.text + "\x00" + strings.Join(n.forms, "\x00")
}

// charsetKeys names the character sets the needles are encoded in.
func (s *Set) charsetKeys() []string {
	keys := make([]string, 0, len(s.charsets))
	for k, cs := range s.charsets {
		if cs != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// compile builds the patterns of some of the needles; pattern.needle is
// a position in idx.
func (s *Set) compile(idx []int) *compiled {
	m := &compiled{}
	// Patterns are not deduplicated: a pattern met twice only reports its
	// matches twice into a set, and a map of them costs more than that.
	var raw [][]byte
	addPat := func(b []byte, p pattern) {
		if len(b) == 0 {
			return
		}
		m.size += patternCost + 2*len(b)
		s.hold(patternCost + 2*len(b))
		raw = append(raw, b)
		m.pats = append(m.pats, p)
		if len(b) > m.maxLen {
			m.maxLen = len(b)
		}
	}
	charsets := s.charsetKeys()
	for i, ni := range idx {
		if s.err != nil {
			break // refused by the budget: the set is incomplete anyway
		}
		n := s.needles[ni]
		bound := byte(0)
		switch {
		case n.kind == KindUID || n.kind == KindDate || isDigits(n.text):
			bound = 'n'
		case len([]rune(n.text)) < 5 && !hasIdeographic(n.text):
			bound = 'w'
		}
		if asciiOnly(n.text) && !slices.ContainsFunc(n.forms, func(f string) bool { return !asciiOnly(f) }) {
			// Plain ASCII is the same bytes in every character set a file
			// can declare, and its case variants (the spellings met
			// included) are one pattern to a matcher that folds ASCII
			// letters: the text and its UTF-16LE form are all there is.
			addPat([]byte(n.text), pattern{needle: i, unit: 1, bound: bound})
			addPat(toUTF16LE(n.text), pattern{needle: i, unit: 2, bound: bound})
			continue
		}
		for _, v := range caseVariants(n.text, n.forms) {
			addPat([]byte(v), pattern{needle: i, unit: 1, bound: bound})
			if l1, ok := toLatin1(v); ok {
				addPat(l1, pattern{needle: i, unit: 1, bound: bound})
			}
			addPat(toUTF16LE(v), pattern{needle: i, unit: 2, bound: bound})
			for _, k := range charsets {
				cs := s.charsets[k]
				b, err := cs.Encode(v, "LO")
				if err != nil {
					continue
				}
				for _, form := range escapeForms(b, cs.UsesCodeExtensions()) {
					addPat(form, pattern{needle: i, unit: 1, bound: bound, g0Text: bareG0Text(b, form)})
				}
			}
		}
	}
	m.index = newPatternIndex(raw)
	if s.err == nil && s.budget != nil && s.held > 0 {
		s.err = s.budget.Charge(s.held)
		s.held = 0
	}
	return m
}

// Cache keeps what needle lists compiled to, for the files that follow
// (bounded in entries and in bytes: the oldest entries go first). What
// it keeps outlives the files' memory budgets, so it keeps only lists of
// a series' usual size, never a hostile file's thousands. Safe for
// concurrent use.
type Cache struct {
	seed     maphash.Seed
	mu       sync.Mutex
	m        map[string]*compiled
	order    []string
	max      int
	bytes    int // held by the entries
	maxBytes int
}

// CacheBytes is the most a Cache holds; a list larger than a sixteenth of
// it (1 MiB) is not kept. An MR slice with a Siemens CSA header compiles
// to 0.6 MB, which its series shares; a CT slice's to 5 KB.
const CacheBytes = 16 << 20

// NewCache returns a cache of at most max compiled needle lists.
func NewCache(max int) *Cache {
	return &Cache{seed: maphash.MakeSeed(), m: map[string]*compiled{}, max: max, maxBytes: CacheBytes}
}

// get returns the list compiled under key, or builds it; build's bool
// says whether what it built may be kept.
func (c *Cache) get(key string, build func() (*compiled, bool)) *compiled {
	c.mu.Lock()
	if cp, ok := c.m[key]; ok {
		c.mu.Unlock()
		return cp
	}
	c.mu.Unlock()
	cp, keep := build() // outside the lock: two workers may build the same one
	if !keep || cp.size > c.maxBytes/16 {
		return cp
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		c.m[key] = cp
		c.bytes += cp.size
		c.order = append(c.order, key)
		for len(c.order) > c.max || c.bytes > c.maxBytes {
			c.bytes -= c.m[c.order[0]].size
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
	}
	return c.m[key]
}

// Scan looks for the set's values in every element of out except the
// File Meta (rebuilt by the writer), Pixel Data (the Clean Pixel Data
// option's concern) and the de-identifier's own statement (0012,0062-0064,
// 0028,0303). Values not loaded by the parser are read from out.Body in
// chunks, so memory stays bounded.
func (m *Matcher) Scan(out *dicomraw.File) ([]Finding, []Exemption, error) {
	st := &scanState{m: m, found: map[Finding]bool{}, exempt: map[string]string{}}
	if len(m.parts) > 0 {
		if err := st.dataset(out.Body, out.Elements, "", true); err != nil {
			return nil, nil, err
		}
	}
	var fs []Finding
	for f := range st.found {
		fs = append(fs, f)
	}
	// A total order: the same output gives the same report (and the same
	// quarantine reason, which names the first finding) on every worker.
	sort.Slice(fs, func(a, b int) bool {
		if fs[a].Path != fs[b].Path {
			return fs[a].Path < fs[b].Path
		}
		if fs[a].Source != fs[b].Source {
			return fs[a].Source < fs[b].Source
		}
		return fs[a].Kind < fs[b].Kind
	})
	ex := m.set.Exemptions()
	for p, r := range st.exempt {
		ex = append(ex, Exemption{Path: p, Reason: r})
	}
	sortExemptions(ex)
	return fs, ex, nil
}

// Flags reports whether value, written as the value of e (a top-level
// or item element of the output), holds one of the set's values as Scan
// would find it there. The engine asks it of a text it has cleaned: a text
// the verifier would still refuse (a name's bytes inside another
// character set's two-byte run, say) is emptied rather than failing the
// whole file.
func (m *Matcher) Flags(e *dicomraw.Element, value []byte) bool {
	if len(m.parts) == 0 || len(value) == 0 {
		return false
	}
	st := &scanState{m: m, found: map[Finding]bool{}, exempt: map[string]string{}}
	st.element(e)
	st.scan(value, "", true)
	return len(st.found) > 0
}

// Hit is one match Scan would report inside a value: its byte range and
// the kind of the identifying value.
type Hit struct {
	Start, End int
	Kind       Kind
}

// Checker finds, value by value, what Scan would report in an output, so
// that the engine can cut an identifying value out of a value it keeps
// (or empty it) before anything is written. Not safe for concurrent use.
type Checker struct {
	st   scanState
	hits []Hit
}

// Checker returns a Checker of m.
func (m *Matcher) Checker() *Checker {
	c := &Checker{st: scanState{m: m, found: map[Finding]bool{}, exempt: map[string]string{}}}
	c.st.onHit = func(start, end int, kind Kind) { c.hits = append(c.hits, Hit{start, end, kind}) }
	return c
}

// Empty reports a matcher with nothing to look for.
func (m *Matcher) Empty() bool { return len(m.parts) == 0 }

// Hits returns the matches Scan would report in value, written as the
// value of e (a top-level or item element of the output); nil when there
// are none. The slice is reused by the next call.
func (c *Checker) Hits(e *dicomraw.Element, value []byte) []Hit {
	c.hits = c.hits[:0]
	if len(c.st.m.parts) == 0 || len(value) == 0 {
		return nil
	}
	c.st.element(e)
	c.st.scan(value, "", true)
	clear(c.st.exempt)
	if len(c.hits) == 0 {
		return nil
	}
	return c.hits
}

type scanState struct {
	m      *Matcher
	binary bool // scanning numbers or opaque bytes: short matches are chance
	// codeString: scanning a CS value (defined terms).
	codeString bool
	// vendorCreator: scanning a private creator that names a block the
	// profile may keep (Table E.3.10-1's or a keep rule's): a vendor's
	// name for its block, whatever text of the file it happens to contain.
	vendorCreator bool
	// vendorAttr: scanning Manufacturer or Manufacturer's Model Name,
	// where the vendor names itself: a word of the file that is also its
	// product's name survives there unless it is the patient's data.
	vendorAttr bool
	found      map[Finding]bool
	exempt     map[string]string
	buf        []byte
	// onHit, when set, receives each match Scan would report instead of
	// recording it (Checker).
	onHit func(start, end int, kind Kind)
}

func (st *scanState) dataset(src io.ReaderAt, els []*dicomraw.Element, path string, top bool) error {
	creators := map[uint32]string{}
	for _, e := range els {
		if e.Tag.IsPrivateCreator() && e.Loaded {
			creators[uint32(e.Tag.Group())<<8|uint32(e.Tag.Element())] = strings.ToUpper(strings.TrimSpace(strings.TrimRight(string(e.Value), " \x00")))
		}
	}
	for _, e := range els {
		t := e.Tag
		if t.Group() == 0x7FE0 || t.Group() == 0x0002 || t.Group() == 0xFFFE {
			continue
		}
		if top && (t == 0x00120062 || t == 0x00120063 || t == 0x00120064 || t == 0x00280303) {
			continue
		}
		p := path + attrName(t, creators)
		if len(e.Items) > 0 {
			for i, it := range e.Items {
				if err := st.dataset(src, it.Elements, p+"["+strconv.Itoa(i+1)+"]/", false); err != nil {
					return err
				}
			}
			continue
		}
		st.element(e)
		if e.Loaded {
			st.scan(e.Value, p, true)
			continue
		}
		if err := st.stream(src, e, p); err != nil {
			return err
		}
	}
	return nil
}

// element sets how the values of e are read: numbers and opaque bytes
// need longer matches, code strings may hold kept defined terms, a kept
// vendor's block name holds no leak.
func (st *scanState) element(e *dicomraw.Element) {
	st.binary = isBinary(e) && e.Tag != 0x00420011 // Encapsulated Document is text to us
	st.codeString = e.VR == "CS" || e.VR == "" && dicomraw.DictVR(e.Tag) == "CS"
	st.vendorCreator = e.Tag.IsPrivateCreator() && e.Loaded && st.m.set.keptCreator(e.Tag.Group(), e.Value)
	st.vendorAttr = vendorAttribute(e.Tag)
}

// stream scans a value that was not loaded, in overlapping chunks.
func (st *scanState) stream(src io.ReaderAt, e *dicomraw.Element, path string) error {
	const chunk = 1 << 20
	end := e.End
	if e.Length != dicomraw.Undefined {
		end = e.ValueOffset + int64(e.Length)
	}
	// The buffer is sized by the value (most values not loaded are small:
	// items of undefined length), up to a chunk and its overlap.
	if want := int(min(end-e.ValueOffset, chunk)) + st.m.maxLen; len(st.buf) < want {
		st.buf = make([]byte, want)
	}
	for off := e.ValueOffset; off < end; off += chunk {
		n := min(int64(len(st.buf)), end-off)
		if _, err := src.ReadAt(st.buf[:n], off); err != nil && err != io.EOF {
			return fmt.Errorf("verify: read %s: %w", path, err)
		}
		st.scan(st.buf[:n], path, false)
	}
	return nil
}

func (st *scanState) scan(v []byte, path string, whole bool) {
	for _, part := range st.m.parts {
		cp := part.compiled
		cp.index.each(v, func(pi, start, end int) {
			p := cp.pats[pi]
			if !bounded(v, start, end, p) || st.binary && end-start < minBinaryMatch {
				return
			}
			if p.g0Text && whole && inSingleByteG0(v, start) {
				return // ASCII there, not the value's two-byte text
			}
			n := st.m.set.needles[part.needles[p.needle]]
			if st.vendorCreator {
				st.exempt[path] = "private creator of a block the profile keeps (a vendor's name for it)"
				return
			}
			if st.vendorAttr && !n.patient && n.kind != KindUID && n.kind != KindDate {
				st.exempt[path] = "the vendor's name for its product (not the patient's data)"
				return
			}
			// A name is excused by a kept value only inside a code string (CS:
			// ImageType PERFUSION, ValueType TEXT), which holds defined terms;
			// "patient Kowalski" in a kept code meaning is still a leak.
			if whole && (n.kind != KindName || st.codeString) {
				if where, ok := st.m.set.excused(v, start, n.kind); ok {
					st.exempt[path] = "holds the value of " + where + " (kept, not identifying)"
					return
				}
			}
			if st.onHit != nil {
				st.onHit(start, end, n.kind)
				return
			}
			st.found[Finding{Path: path, Source: n.source, Kind: n.kind}] = true
		})
	}
}

// excused reports whether the value of v that contains offset at is one
// of the inputs' non-identifying short values (or, for text copied into
// private values, one the profile retains on purpose).
func (s *Set) excused(v []byte, at int, kind Kind) (string, bool) {
	start := bytes.LastIndexByte(v[:at], '\\') + 1
	end := bytes.IndexByte(v[at:], '\\')
	if end < 0 {
		end = len(v)
	} else {
		end += at
	}
	k := string(bytes.ToLower(bytes.Trim(v[start:end], " \x00")))
	if where, ok := s.allowed[k]; ok {
		return where.String(), true
	}
	if s.tool[k] {
		// A value the de-identifier itself writes, whole (its method,
		// a dummy, the standard's name of a compression method): a
		// short value of another file inside it ("iso" in ISO_10918_1)
		// is chance.
		return "a value the de-identifier writes", true
	}
	if kind == KindPrivate {
		if where, ok := s.retained[k]; ok {
			return where.String(), true
		}
	}
	return "", false
}

// minBinaryMatch is the shortest match that counts inside binary values
// (lookup tables, ICC profiles, waveform samples): a few bytes that happen
// to spell a short name there are chance, eight are not.
const minBinaryMatch = 8

func isBinary(e *dicomraw.Element) bool {
	vr := e.VR
	if vr == "" {
		vr = dicomraw.DictVR(e.Tag)
	}
	switch vr {
	case "OB", "OW", "OF", "OD", "OL", "OV", "UN", "US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV", "":
		return true
	}
	return false
}

// bounded checks what surrounds a match of a short or numeric needle: a
// short word must stand alone; a number, date or UID must not continue
// with more digits (a '.' followed by a digit continues it too, a '.'
// ending a sentence does not).
func bounded(v []byte, start, end int, p pattern) bool {
	if p.bound == 0 {
		return true
	}
	digit := func(i int) bool { return i >= 0 && i < len(v) && v[i] >= '0' && v[i] <= '9' }
	if p.bound == 'n' {
		u := p.unit
		b, a := start-u, end // the neighbouring code units (low byte)
		if digit(b) || digit(a) {
			return false
		}
		if b >= 0 && v[b] == '.' && digit(b-u) {
			return false
		}
		if a < len(v) && v[a] == '.' && digit(a+u) {
			return false
		}
		return true
	}
	word := func(i int) bool {
		if i < 0 || i >= len(v) {
			return false
		}
		c := v[i]
		return (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z')
	}
	return !word(start-p.unit) && !word(end)
}

// caseVariants are the spellings to look for: lower and upper case, each
// form met in the inputs, and each word capitalised; ASCII letters match
// in any case anyway, so only non-ASCII letters make variants differ.
func caseVariants(s string, forms []string) []string {
	out := []string{s}
	add := func(v string) {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	add(strings.ToUpper(s))
	for _, f := range forms {
		add(f)
	}
	words := strings.Fields(s)
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	add(strings.Join(words, " "))
	return out
}

func toLatin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	wide := false
	for _, r := range s {
		if r > 0xFF {
			return nil, false
		}
		if r >= 0x80 {
			wide = true
		}
		b = append(b, byte(r))
	}
	return b, wide
}

func toUTF16LE(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			b = append(b, byte(r1), byte(r1>>8), byte(r2), byte(r2>>8))
			continue
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// escapeForms gives the forms an ISO 2022 encoded value can take inside a
// longer text: as encoded, without the final return to ASCII (the text
// goes on in the same set), and, when long enough to be specific, without
// any escape sequence (the text was already in that set).
//
// Only an encoding with code extensions (iso2022) has escape sequences:
// its encoder refuses a literal ESC, so every ESC it writes designates a
// set, and a final return follows an earlier designation. In any other
// set an ESC is a byte of the value (one decoded without a known character
// set) and cutting there would leave a shorter pattern than the value, as
// short as two digits, with none of the value's specificity.
func escapeForms(b []byte, iso2022 bool) [][]byte {
	if !iso2022 || bytes.IndexByte(b, 0x1B) < 0 {
		return [][]byte{b}
	}
	out := [][]byte{b}
	trimmed := b
	// Only a return (it follows a designation, which the trimmed form
	// keeps) is cut: a designation near the end is the start of the text.
	if i := bytes.LastIndexByte(b, 0x1B); i > 0 && i >= len(b)-4 && bytes.IndexByte(b[:i], 0x1B) >= 0 {
		trimmed = b[:i]
		out = append(out, trimmed)
	}
	var core []byte
	for i := 0; i < len(trimmed); i++ {
		if trimmed[i] == 0x1B {
			// ESC, then intermediate bytes 0x20-0x2F, then a final byte.
			i++
			for i < len(trimmed) && trimmed[i] >= 0x20 && trimmed[i] <= 0x2F {
				i++
			}
			continue
		}
		core = append(core, trimmed[i])
	}
	if len(core) >= 6 {
		out = append(out, core)
	}
	return out
}

// bareG0Text reports whether form is the encoded value b with its escape
// sequences cut and only bytes below 0x80 left: the value's text in a
// two-byte G0 set (JIS X 0208 "$?$m$&" for たろう), which spells the value
// only where that set is in G0, and plain ASCII anywhere else.
func bareG0Text(b, form []byte) bool {
	if bytes.IndexByte(b, 0x1B) < 0 || bytes.IndexByte(form, 0x1B) >= 0 {
		return false
	}
	for _, c := range form {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// inSingleByteG0 reports whether a whole value v, read from its start, is
// certainly in a single-byte G0 set at offset at, so that bytes below 0x80
// there are ASCII (or JIS X 0201 Romaji) characters. Every value starts in
// a single-byte G0 (PS3.3 C.12.1.1.2 allows no two-byte set as value 1 of
// Specific Character Set); only an escape sequence can change that. It
// errs towards false: a two-byte G0 designation, a designation it cannot
// read and a shift (SO, SS2, SS3, ESC without intermediates) all leave
// the answer false until a single-byte G0 designation (ESC ( F, ESC , F)
// follows. The resets that PS3.5 6.1.2.5.3 asks of writers (CR, LF,
// '\'...) are not counted: a writer that left a two-byte set active there
// is read the cautious way.
func inSingleByteG0(v []byte, at int) bool {
	single := true
	for i := 0; i < at && i < len(v); i++ {
		switch v[i] {
		case 0x0E, 0x8E, 0x8F: // SO (G1 into GL), SS2, SS3
			single = false
		case 0x1B:
			j := i + 1
			for j < len(v) && v[j] >= 0x20 && v[j] <= 0x2F {
				j++
			}
			mid := v[i+1 : j]
			switch {
			case j >= len(v) || v[j] < 0x30 || v[j] > 0x7E || len(mid) == 0:
				single = false // cut short, malformed, or a shift function
			case len(mid) == 1 && (mid[0] == '(' || mid[0] == ','):
				single = true // a single-byte set designated to G0
			case mid[0] == ')' || mid[0] == '*' || mid[0] == '+' || mid[0] == '-' || mid[0] == '.' || mid[0] == '/',
				mid[0] == '$' && len(mid) == 2 && mid[1] >= ')' && mid[1] != ',':
				// a designation to G1, G2 or G3: G0 unchanged
			default:
				single = false // a two-byte set to G0 (ESC $ B, ESC $ ( D), or unknown
			}
			i = j
		}
	}
	return single
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func hasIdeographic(s string) bool {
	for _, c := range s {
		if isIdeographic(c) {
			return true
		}
	}
	return false
}

func sortExemptions(ex []Exemption) {
	sort.Slice(ex, func(a, b int) bool {
		if ex[a].Path != ex[b].Path {
			return ex[a].Path < ex[b].Path
		}
		return ex[a].Reason < ex[b].Reason
	})
}
