package dicomraw

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Limits bound what a file may make the parser do. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	MaxFileSize      int64 // bytes of the source
	MaxDepth         int   // sequence nesting
	MaxElements      int   // elements and items in the whole file
	MaxValueInMemory int64 // larger values are streamed, never loaded
	MaxInflated      int64 // bytes a deflated dataset may inflate to
	// MaxInflateRatio bounds how many times the deflated bytes read so far
	// a deflated dataset may inflate to; it is checked as the dataset
	// inflates, once past RatioFloor bytes, so a bomb is refused after a
	// few megabytes. Negative: not checked (a file this process wrote).
	MaxInflateRatio int
	// MaxValueLength is the largest defined value, item or fragment length
	// accepted (the default admits every defined length).
	MaxValueLength int64
	// MaxDuration bounds the wall-clock time of one Parse; it is checked
	// every few thousand elements and items and while inflating.
	MaxDuration time.Duration
	// Budget, when set, is charged for the memory the parse holds (see
	// Budget); a charge refused fails the parse with kind limit.
	Budget Budget
	// Scratch creates the file a deflated dataset is inflated into, which
	// the File's Body then reads (nil: a file in the default temporary
	// directory, removed from it at once). The dataset is never inflated
	// into memory.
	Scratch func() (Scratch, error)
}

// Budget is charged for what a parse holds in memory: elements, items,
// fragments and values read (see the costs below). Charge fails when the
// file may hold no more.
type Budget interface {
	Charge(n int64) error
}

// Scratch is a temporary file: written once, then read back.
type Scratch interface {
	io.Writer
	io.ReaderAt
	io.Closer
}

// What a parse holds per element, item and fragment, as charged to
// Limits.Budget: the structure (216, 80 and 16 bytes on 64-bit), its slot
// in its parent's list with that list's growth and, for an element, the
// engine's plan of it. Measured on an enhanced multi-frame with 380,000
// elements and items: the parsed tree holds 151 bytes per element or
// item, planned 191.
const (
	elementCost  = 256
	itemCost     = 128
	fragmentCost = 32
	// chargeStep: charges are made in steps of this many bytes, so an
	// element costs an addition, not a call.
	chargeStep = 64 << 10
)

// RatioFloor is the inflated size from which Limits.MaxInflateRatio is
// checked: a small dataset of zeros may compress as well as it likes.
const RatioFloor = 8 << 20

// DefaultLimits are generous for real data and small enough that a hostile
// file cannot exhaust a worker.
func DefaultLimits() Limits {
	return Limits{
		MaxFileSize:      8 << 30,
		MaxDepth:         32,
		MaxElements:      2_000_000,
		MaxValueInMemory: 16 << 20,
		MaxInflated:      1 << 30,
		MaxInflateRatio:  200,
		MaxValueLength:   0xFFFFFFFE, // every defined length (0xFFFFFFFF is "undefined")
		MaxDuration:      60 * time.Second,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = d.MaxElements
	}
	if l.MaxValueInMemory <= 0 {
		l.MaxValueInMemory = d.MaxValueInMemory
	}
	if l.MaxInflated <= 0 {
		l.MaxInflated = d.MaxInflated
	}
	if l.MaxInflateRatio == 0 {
		l.MaxInflateRatio = d.MaxInflateRatio
	}
	if l.MaxValueLength <= 0 {
		l.MaxValueLength = d.MaxValueLength
	}
	if l.MaxDuration <= 0 {
		l.MaxDuration = d.MaxDuration
	}
	return l
}

// Error is a parse failure. Its text names offsets, tags and limits, never
// a value, so it can be logged and reported.
type Error struct {
	Offset int64
	Tag    Tag // 0 when not inside an element
	Kind   ErrorKind
	Msg    string
	// Err is the budget's refusal behind a limit (Limits.Budget), for
	// callers that tell its kinds apart; Msg has its text.
	Err error
}

// Unwrap returns the budget's refusal, if that is the cause.
func (e *Error) Unwrap() error { return e.Err }

// ScratchError is a failure to create, or to write, the scratch file a
// deflated dataset inflates into: the system's, not the file's (a full
// disk), so worth another try. Its text has no path.
type ScratchError struct{ Msg string }

func (e *ScratchError) Error() string { return e.Msg }

// ErrorKind classifies parse failures for reports and metrics.
type ErrorKind string

// Kinds of parse failure.
const (
	ErrNotDICOM    ErrorKind = "not-dicom"
	ErrTruncated   ErrorKind = "truncated"
	ErrMalformed   ErrorKind = "malformed"
	ErrLimit       ErrorKind = "limit"
	ErrUnsupported ErrorKind = "unsupported"
)

func (e *Error) Error() string {
	if e.Tag != 0 {
		return fmt.Sprintf("%s at offset %d in %s: %s", e.Kind, e.Offset, e.Tag, e.Msg)
	}
	return fmt.Sprintf("%s at offset %d: %s", e.Kind, e.Offset, e.Msg)
}

// IsNotDICOM reports whether err says the input is not a DICOM file at all.
func IsNotDICOM(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Kind == ErrNotDICOM
}

// File is a parsed DICOM file.
type File struct {
	// HasPreamble is true for a Part 10 file (128-byte preamble and "DICM").
	HasPreamble bool
	// Meta holds the File Meta Information elements (group 0002).
	Meta []*Element
	// MetaSrc is what Meta offsets refer to.
	MetaSrc io.ReaderAt
	// Syntax is the transfer syntax of the dataset.
	Syntax Syntax
	// SyntaxInferred is true when the file did not state its syntax.
	SyntaxInferred bool
	// Body is what dataset offsets refer to: the source itself, or the
	// inflated dataset of a deflated file.
	Body io.ReaderAt
	// BodyStart and BodyEnd bound the dataset within Body.
	BodyStart, BodyEnd int64
	// Elements is the top-level dataset.
	Elements []*Element
	// Insert holds new top-level elements to write, merged in tag order.
	Insert []*Element
	// Count is the number of elements and items parsed.
	Count int

	scratch Scratch // the inflated dataset, when Body is one
}

// Close releases the file's scratch file, if its dataset was inflated
// into one; Body cannot be read after. Close can be called more than once.
func (f *File) Close() error {
	if f == nil || f.scratch == nil {
		return nil
	}
	err := f.scratch.Close()
	f.scratch = nil
	return err
}

// Parse reads a DICOM file: a Part 10 file (with or without preamble), or a
// bare dataset whose encoding is inferred. It fails on anything it cannot
// read completely, so a file that parses has been understood to its end.
func Parse(src io.ReaderAt, size int64, lim Limits) (*File, error) {
	f, err := parse(src, size, lim)
	if err != nil && f != nil {
		f.Close()
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

func parse(src io.ReaderAt, size int64, lim Limits) (*File, error) {
	lim = lim.withDefaults()
	if size > lim.MaxFileSize {
		return nil, &Error{Kind: ErrLimit, Msg: fmt.Sprintf("file size %d exceeds the limit of %d bytes", size, lim.MaxFileSize)}
	}
	if size < 0 {
		return nil, &Error{Kind: ErrMalformed, Msg: "negative file size"}
	}
	f := &File{MetaSrc: src, Body: src}
	p := &parser{lim: lim, f: f, deadline: time.Now().Add(lim.MaxDuration), padding: -1}
	head := make([]byte, 132)
	n, _ := src.ReadAt(head, 0)
	head = head[:n]
	pos := int64(0)
	if n >= 132 && string(head[128:132]) == "DICM" {
		f.HasPreamble = true
		pos = 132
	} else if n >= 4 && string(head[0:4]) == "DICM" {
		pos = 4 // no preamble, prefix only (seen in the wild)
	}
	// File Meta: group 0002, always explicit VR little endian.
	first := make([]byte, 2)
	// The meta's reader goes on into the dataset when both are in src:
	// one buffer and one read for a typical header, not two.
	var mr *reader
	if m, _ := src.ReadAt(first, pos); m == 2 && binary.LittleEndian.Uint16(first) == 0x0002 {
		r := newReader(src, pos, size)
		mr = r
		enc := Encoding{}
		if !isVR(peekVR(src, pos+4)) {
			enc.Implicit = true // malformed but seen: implicit meta
		}
		for {
			b, err := r.peek(2)
			if err != nil || binary.LittleEndian.Uint16(b) != 0x0002 {
				break
			}
			e, err := p.element(r, enc, size, 0)
			if err != nil {
				return f, err
			}
			f.Meta = append(f.Meta, e)
		}
		pos = r.pos
	} else if pos != 0 && !f.HasPreamble {
		// "DICM" at offset 0 with a dataset after it: neither pydicom nor
		// dcmtk reads that, and nor do we.
		return nil, &Error{Offset: pos, Kind: ErrMalformed, Msg: "no File Meta Information after the DICM prefix"}
	}
	// A preamble and "DICM" followed directly by the dataset, without a
	// File Meta group, is read as a bare dataset whose encoding is
	// inferred (pydicom and dcmtk read such files to the end).
	ts := ""
	for _, e := range f.Meta {
		if e.Tag == TagTransferSyntaxUID {
			ts = trimUID(e.Value)
		}
	}
	if ts == "" {
		enc, ok := inferEncoding(src, pos, size)
		if !ok {
			if f.Meta == nil && f.HasPreamble {
				return nil, &Error{Offset: pos, Kind: ErrMalformed, Msg: "no File Meta Information after the DICM prefix, and no recognisable dataset"}
			}
			if f.Meta == nil {
				return nil, &Error{Offset: pos, Kind: ErrNotDICOM, Msg: "no DICM prefix and no recognisable dataset"}
			}
			return nil, &Error{Offset: pos, Kind: ErrMalformed, Msg: "no transfer syntax and the dataset encoding cannot be recognised"}
		}
		f.SyntaxInferred = true
		switch {
		case enc.Implicit:
			ts = ImplicitVRLittleEndian
		case enc.BigEndian:
			ts = ExplicitVRBigEndian
		default:
			ts = ExplicitVRLittleEndian
		}
	}
	syn, ok := LookupSyntax(ts)
	if !ok {
		return nil, &Error{Offset: pos, Kind: ErrUnsupported, Msg: fmt.Sprintf("unknown transfer syntax %q", safeUID(ts))}
	}
	f.Syntax = syn
	f.BodyStart, f.BodyEnd = pos, size
	if syn.Deflated {
		if err := p.inflate(src, pos, size); err != nil {
			return f, err
		}
	}
	enc := Encoding{Implicit: syn.Implicit, BigEndian: syn.BigEndian}
	r := mr
	if r == nil || syn.Deflated {
		r = newReader(f.Body, f.BodyStart, f.BodyEnd)
	}
	els, err := p.elements(r, enc, f.BodyEnd, 0)
	if err != nil {
		return f, syntaxMismatch(err, f, src, pos)
	}
	if err := p.settle(f.BodyEnd); err != nil {
		return f, err
	}
	f.Elements = els
	if p.padding >= 0 {
		f.BodyEnd = p.padding // the dataset ends where its NUL padding starts
	}
	f.Count = p.count
	if len(f.Meta) == 0 && len(f.Elements) == 0 {
		return f, &Error{Kind: ErrNotDICOM, Msg: "empty dataset"}
	}
	return f, nil
}

// inflate inflates the deflated dataset at pos into a scratch file, which
// becomes the File's Body (a *ScratchError when that file fails). It stops, with kind limit, as soon as the
// dataset inflates past MaxInflated bytes, or (past RatioFloor bytes) to
// more than MaxInflateRatio times the deflated bytes read so far: a 4 MB
// bomb that would inflate to 4 GiB is refused after 8 MiB.
func (p *parser) inflate(src io.ReaderAt, pos, size int64) error {
	sc, err := p.lim.newScratch()
	if err != nil {
		return &ScratchError{Msg: "no scratch file to inflate the dataset into: " + errText(err)}
	}
	p.f.scratch = sc
	in := &countingReader{r: bufio.NewReaderSize(io.NewSectionReader(src, pos, size-pos), 32<<10)}
	fr := flate.NewReader(in)
	defer fr.Close()
	buf := make([]byte, 64<<10)
	max, ratio := p.lim.MaxInflated, int64(p.lim.MaxInflateRatio)
	var n int64
	for {
		if err := p.checkTime(pos); err != nil {
			return err
		}
		// Not io.ReadFull: it would pass flate's io.ErrUnexpectedEOF (a
		// stream cut short) off as the end.
		k, rerr := fr.Read(buf)
		n += int64(k)
		if n > max {
			return &Error{Offset: pos, Kind: ErrLimit, Msg: fmt.Sprintf("deflated dataset inflates beyond %d bytes", max)}
		}
		if ratio > 0 && n > RatioFloor && n > ratio*in.n {
			return &Error{Offset: pos, Kind: ErrLimit, Msg: fmt.Sprintf("deflated dataset inflates to more than %d times its deflated size", ratio)}
		}
		if k > 0 {
			if _, err := sc.Write(buf[:k]); err != nil {
				return &ScratchError{Msg: "cannot write the inflated dataset to its scratch file: " + errText(err)}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			// flate's errors name an offset in the stream, never its content.
			return &Error{Offset: pos, Kind: ErrMalformed, Msg: "deflated dataset cannot be inflated: " + errText(rerr)}
		}
	}
	p.f.Body, p.f.BodyStart, p.f.BodyEnd = sc, 0, n
	return nil
}

// countingReader counts the deflated bytes the inflater has taken.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	k, err := c.r.Read(b)
	c.n += int64(k)
	return k, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// newScratch creates the scratch file of an inflated dataset.
func (l Limits) newScratch() (Scratch, error) {
	if l.Scratch != nil {
		return l.Scratch()
	}
	return TempScratch("")
}

// TempScratch is a Scratch in dir (the default temporary directory when
// empty), mode 0600. It is removed from the directory at once where the
// system allows (it then holds disk space only while open, and nothing is
// left behind by a crash), else when closed.
func TempScratch(dir string) (Scratch, error) {
	f, err := os.CreateTemp(dir, "dicomraw-inflated-*")
	if err != nil {
		return nil, err
	}
	if os.Remove(f.Name()) == nil {
		return f, nil
	}
	return &namedScratch{File: f}, nil
}

// namedScratch is a scratch file the system would not remove while open.
type namedScratch struct{ *os.File }

func (s *namedScratch) Close() error {
	err := s.File.Close()
	os.Remove(s.File.Name())
	return err
}

// inferEncoding guesses the encoding of a bare dataset from its first
// element, as DICOM readers do for files without File Meta.
func inferEncoding(src io.ReaderAt, pos, size int64) (Encoding, bool) {
	b := make([]byte, 8)
	if n, _ := src.ReadAt(b, pos); n < 8 {
		return Encoding{}, false
	}
	gLE := binary.LittleEndian.Uint16(b)
	gBE := binary.BigEndian.Uint16(b)
	vr := string(b[4:6])
	// Datasets start with a low group (0008 in practice); anything else is
	// far more likely to be some other kind of file.
	plausible := func(g uint16) bool { return g >= 0x0001 && g <= 0x00FF }
	switch {
	case plausible(gLE) && isVR(vr):
		return Encoding{}, true
	case plausible(gLE):
		return Encoding{Implicit: true}, true
	case plausible(gBE) && isVR(vr):
		return Encoding{BigEndian: true}, true
	}
	return Encoding{}, false
}

func peekVR(src io.ReaderAt, off int64) string {
	b := make([]byte, 2)
	if n, _ := src.ReadAt(b, off); n < 2 {
		return ""
	}
	return string(b)
}

// trimUID strips the NUL/space padding of a UI value.
func trimUID(b []byte) string { return strings.TrimRight(string(b), "\x00 ") }

// safeUID returns a UID for an error message only when it looks like a
// registered (1.2.840.10008) UID; anything else could be an identifier.
func safeUID(s string) string {
	if strings.HasPrefix(s, "1.2.840.10008.") && len(s) <= 64 {
		return s
	}
	return "<non-standard UID>"
}

var longVRs = map[string]bool{"OB": true, "OD": true, "OF": true, "OL": true, "OV": true, "OW": true,
	"SQ": true, "UC": true, "UN": true, "UR": true, "UT": true, "SV": true, "UV": true}

// vrString returns the VR b spells, as a constant string (no allocation
// per element), or "" when b is not a VR.
func vrString(b []byte) string {
	switch string(b) {
	case "AE":
		return "AE"
	case "AS":
		return "AS"
	case "AT":
		return "AT"
	case "CS":
		return "CS"
	case "DA":
		return "DA"
	case "DS":
		return "DS"
	case "DT":
		return "DT"
	case "FD":
		return "FD"
	case "FL":
		return "FL"
	case "IS":
		return "IS"
	case "LO":
		return "LO"
	case "LT":
		return "LT"
	case "OB":
		return "OB"
	case "OD":
		return "OD"
	case "OF":
		return "OF"
	case "OL":
		return "OL"
	case "OV":
		return "OV"
	case "OW":
		return "OW"
	case "PN":
		return "PN"
	case "SH":
		return "SH"
	case "SL":
		return "SL"
	case "SQ":
		return "SQ"
	case "SS":
		return "SS"
	case "ST":
		return "ST"
	case "SV":
		return "SV"
	case "TM":
		return "TM"
	case "UC":
		return "UC"
	case "UI":
		return "UI"
	case "UL":
		return "UL"
	case "UN":
		return "UN"
	case "UR":
		return "UR"
	case "US":
		return "US"
	case "UT":
		return "UT"
	case "UV":
		return "UV"
	}
	return ""
}

func isVR(s string) bool { return vrString([]byte(s)) != "" }

// LongHeader reports whether an explicit-VR element with this VR has the
// 12-byte header (2 reserved bytes and a 4-byte length).
func LongHeader(vr string) bool { return longVRs[vr] }

type parser struct {
	lim      Limits
	f        *File
	count    int
	ticks    int // elements and items visited, including abandoned attempts
	deadline time.Time
	// slab and arena: elements and small values are carved out of larger
	// allocations, a few per file instead of one or two per element.
	slab  []Element
	arena []byte
	// padding is where NUL padding after the top-level dataset starts
	// (zeroPadding), or -1.
	padding int64
	// mem is what the parse holds, charged: what Limits.Budget has been
	// told of it (in steps of chargeStep).
	mem, charged int64
}

// hold adds n bytes to what the parse holds and charges the budget once
// a step's worth is uncharged.
func (p *parser) hold(off, n int64) error {
	p.mem += n
	if p.mem-p.charged < chargeStep {
		return nil // the common case, inlined
	}
	return p.settle(off)
}

// settle charges what is held and not charged yet.
func (p *parser) settle(off int64) error {
	n := p.mem - p.charged
	p.charged = p.mem
	if p.lim.Budget == nil || n == 0 {
		return nil
	}
	if err := p.lim.Budget.Charge(n); err != nil {
		return &Error{Offset: off, Kind: ErrLimit, Msg: err.Error(), Err: err}
	}
	return nil
}

// newElement returns a zeroed element from the slab.
func (p *parser) newElement() *Element {
	if len(p.slab) == cap(p.slab) {
		p.slab = make([]Element, 0, 64)
	}
	p.slab = p.slab[:len(p.slab)+1]
	return &p.slab[len(p.slab)-1]
}

// copyValue copies a value out of the reader's buffer. Small values share
// an arena; each is capped at its length, so appending to one copies it
// rather than running into its neighbour. A large one was charged by
// value (valueCost); an arena is charged when it is made.
func (p *parser) copyValue(b []byte) []byte {
	const arenaSize, arenaMax = 8 << 10, 512
	if len(b) > arenaMax {
		return append([]byte(nil), b...)
	}
	if len(p.arena)+len(b) > cap(p.arena) {
		p.mem += arenaSize
		p.arena = make([]byte, 0, arenaSize)
	}
	start := len(p.arena)
	p.arena = append(p.arena, b...)
	return p.arena[start:len(p.arena):len(p.arena)]
}

// timeCheckEvery is how many elements and items are read between two
// looks at the clock.
const timeCheckEvery = 1024

func (p *parser) bump(off, cost int64) error {
	if err := p.hold(off, cost); err != nil {
		return err
	}
	p.count++
	if p.count > p.lim.MaxElements {
		return &Error{Offset: off, Kind: ErrLimit, Msg: fmt.Sprintf("more than %d elements and items", p.lim.MaxElements)}
	}
	// count is rolled back when a value is found not to be a sequence
	// after all; ticks is not, so the clock is read however the work goes.
	p.ticks++
	if p.ticks%timeCheckEvery == 0 {
		return p.checkTime(off)
	}
	return nil
}

func (p *parser) checkTime(off int64) error {
	if time.Now().After(p.deadline) {
		return &Error{Offset: off, Kind: ErrLimit, Msg: fmt.Sprintf("parsing took longer than the limit of %s", p.lim.MaxDuration)}
	}
	return nil
}

// checkLength applies MaxValueLength to a defined length.
func (p *parser) checkLength(off int64, t Tag, what string, l uint32) error {
	if l != Undefined && int64(l) > p.lim.MaxValueLength {
		return &Error{Offset: off, Tag: t, Kind: ErrLimit, Msg: fmt.Sprintf("%s length %d exceeds the limit of %d bytes", what, l, p.lim.MaxValueLength)}
	}
	return nil
}

// elements reads elements until end (a defined length) is reached.
func (p *parser) elements(r *reader, enc Encoding, end int64, depth int) ([]*Element, error) {
	var out []*Element
	for r.pos < end {
		if depth == 0 && p.zeroPadding(r, end) {
			break // trailing NUL padding after the dataset: not part of it
		}
		e, err := p.element(r, enc, end, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if r.pos != end {
		return nil, &Error{Offset: r.pos, Kind: ErrMalformed, Msg: "element overruns its container"}
	}
	return out, nil
}

// zeroPadding reports whether the rest of the top-level dataset, from
// r's position to end, is NUL bytes in whole 8-byte steps: what some
// writers pad a file with. Read as elements, each step is an empty
// (0000,0000), which pydicom and dcmtk both pass over; in any other
// length they disagree (dcmtk stops), and so the bytes are parsed, and
// refused, as elements. Only the first 8 bytes are looked at unless they
// are NULs, so a dataset costs nothing more.
func (p *parser) zeroPadding(r *reader, end int64) bool {
	left := end - r.pos
	if left < 8 || left%8 != 0 {
		return false
	}
	b, err := r.peek(8)
	if err != nil || !allZero(b) {
		return false
	}
	save := r.pos
	p.padding = save
	for r.pos < end {
		n := min(end-r.pos, int64(readerBuf))
		b, err := r.read(int(n))
		if err != nil || !allZero(b) || p.checkTime(r.pos) != nil {
			r.pos, r.bufLen, p.padding = save, 0, -1
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// syntaxMismatch explains a dataset that does not parse in the transfer
// syntax its File Meta names but starts as the other VR encoding would
// (explicit where the meta says implicit, or the reverse): readers
// disagree on such files (pydicom switches, dcmtk fails), so it is
// refused, with that reason rather than a bare VR or length error.
func syntaxMismatch(err error, f *File, src io.ReaderAt, pos int64) error {
	var pe *Error
	if f.SyntaxInferred || f.Syntax.Deflated || f.Syntax.BigEndian || !errors.As(err, &pe) || pe.Kind == ErrLimit {
		return err
	}
	enc, ok := inferEncoding(src, pos, f.BodyEnd)
	if !ok || enc.BigEndian || enc.Implicit == f.Syntax.Implicit {
		return err
	}
	want, got := "explicit", "implicit"
	if f.Syntax.Implicit {
		want, got = "implicit", "explicit"
	}
	return &Error{Offset: pos, Kind: ErrMalformed, Msg: fmt.Sprintf("the File Meta's transfer syntax says %s VR but the dataset is written in %s VR (%s)", want, got, pe.Error())}
}

func (p *parser) readTag(r *reader, enc Encoding) (Tag, error) {
	b, err := r.read(4)
	if err != nil {
		return 0, err
	}
	if enc.BigEndian {
		return NewTag(binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])), nil
	}
	return NewTag(binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])), nil
}

func u32(b []byte, be bool) uint32 {
	if be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func u16(b []byte, be bool) uint16 {
	if be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

// element reads one data element (header and value) that must end by end.
func (p *parser) element(r *reader, enc Encoding, end int64, depth int) (*Element, error) {
	start := r.pos
	if err := p.bump(start, elementCost); err != nil {
		return nil, err
	}
	if end-start < 8 {
		return nil, &Error{Offset: start, Kind: ErrTruncated, Msg: "element header cut short"}
	}
	t, err := p.readTag(r, enc)
	if err != nil {
		return nil, truncated(start, 0, err)
	}
	if t.Group() == 0xFFFE {
		return nil, &Error{Offset: start, Tag: t, Kind: ErrMalformed, Msg: "item or delimiter where a data element was expected"}
	}
	e := p.newElement()
	e.Tag, e.Enc, e.Offset = t, enc, start
	if enc.Implicit {
		b, err := r.read(4)
		if err != nil {
			return nil, truncated(start, t, err)
		}
		e.Length = u32(b, enc.BigEndian)
		e.VR = DictVR(t)
		if e.VR == "" {
			e.VR = "UN"
		}
	} else {
		b, err := r.read(4)
		if err != nil {
			return nil, truncated(start, t, err)
		}
		vr := vrString(b[:2])
		if vr == "" {
			return nil, &Error{Offset: start, Tag: t, Kind: ErrMalformed, Msg: fmt.Sprintf("invalid VR bytes %q", sanitizeVR(b[:2]))}
		}
		e.VR = vr
		if longVRs[vr] {
			b, err := r.read(4)
			if err != nil {
				return nil, truncated(start, t, err)
			}
			e.Length = u32(b, enc.BigEndian)
		} else {
			e.Length = uint32(u16(b[2:], enc.BigEndian))
		}
	}
	e.ValueOffset = r.pos
	if e.Length != Undefined && int64(e.Length) > end-e.ValueOffset {
		return nil, &Error{Offset: start, Tag: t, Kind: ErrTruncated, Msg: fmt.Sprintf("value length %d exceeds the %d bytes left", e.Length, end-e.ValueOffset)}
	}
	if err := p.checkLength(start, t, "value", e.Length); err != nil {
		return nil, err
	}
	switch {
	case e.VR == "SQ":
		err = p.sequence(r, e, enc, end, depth)
	case e.Length == Undefined && (e.VR == "UN" || (enc.Implicit && e.VR != "OB" && e.VR != "OW")) && t != TagPixelData:
		// CP-246: a UN (or unknown implicit) value of undefined length is a
		// sequence encoded in implicit VR little endian.
		err = p.sequence(r, e, Encoding{Implicit: true}, end, depth)
	case e.Length == Undefined:
		if e.VR != "OB" && e.VR != "OW" && e.VR != "UN" {
			return nil, &Error{Offset: start, Tag: t, Kind: ErrMalformed, Msg: "undefined length on VR " + e.VR}
		}
		err = p.fragments(r, e, end)
	default:
		err = p.value(r, e, depth)
	}
	if err != nil {
		return nil, err
	}
	e.End = r.pos
	return e, nil
}

func sanitizeVR(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7E {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

func truncated(off int64, t Tag, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Offset: off, Tag: t, Kind: ErrTruncated, Msg: "file ends inside the element"}
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return &Error{Offset: off, Tag: t, Kind: ErrMalformed, Msg: "read error: " + errText(err)}
}

// errText is an error's text without the file path an *fs.PathError
// carries (a path can name the patient).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// value reads (or skips) a defined-length non-sequence value. A private or
// UN value that holds an item tag may be a sequence whose VR was lost
// (implicit VR files, or VR UN): it is parsed as one when it parses
// completely, so nothing inside can hide from the rules.
func (p *parser) value(r *reader, e *Element, depth int) error {
	n := int64(e.Length)
	if e.Tag != TagPixelData && n >= 8 && (e.VR == "UN" || (e.Tag.IsPrivate() && !e.Tag.IsPrivateCreator() && (e.VR == "OB" || e.VR == "UN"))) {
		if b, err := r.peek(4); err == nil {
			it := NewTag(binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]))
			if it == TagItem {
				save := *r
				saveCount := p.count
				err := p.sequence(r, e, Encoding{Implicit: true}, e.ValueOffset+n, depth)
				if err == nil && r.pos == e.ValueOffset+n {
					return nil
				}
				var pe *Error
				if errors.As(err, &pe) && pe.Kind == ErrLimit {
					return err // a limit hit inside is final, not a reason to look again
				}
				// Not a sequence after all: the value is opaque bytes.
				*r = save
				r.bufLen = 0 // the shared buffer may hold other bytes now
				p.count = saveCount
				e.Items = nil
			}
		}
	}
	if n <= p.lim.MaxValueInMemory && e.Tag != TagPixelData {
		// A large value is charged before it is read: the reader's buffer
		// grows to hold it, and it is copied out.
		if cost := valueCost(n, len(r.buf)); cost > 0 {
			if err := p.hold(e.Offset, cost); err != nil {
				return err
			}
			if err := p.settle(e.Offset); err != nil {
				return err
			}
		}
		b, err := r.read(int(n))
		if err != nil {
			return truncated(e.Offset, e.Tag, err)
		}
		e.Value = p.copyValue(b)
		e.Loaded = true
		return nil
	}
	if err := r.skip(n); err != nil {
		return truncated(e.Offset, e.Tag, err)
	}
	return nil
}

// valueCost is what reading a value of n bytes adds beyond the arena: a
// copy of its own when it is too large to share one, and the reader's
// buffer growing to hold it.
func valueCost(n int64, buf int) int64 {
	var c int64
	if n > 512 {
		c += n
	}
	if n > int64(buf) {
		c += n
	}
	return c
}

// sequence reads the items of e; inside encoding is ienc.
func (p *parser) sequence(r *reader, e *Element, ienc Encoding, end int64, depth int) error {
	if depth+1 > p.lim.MaxDepth {
		return &Error{Offset: e.Offset, Tag: e.Tag, Kind: ErrLimit, Msg: fmt.Sprintf("sequences nested deeper than %d", p.lim.MaxDepth)}
	}
	e.ItemsEnc = ienc
	e.Items = []*Item{}
	seqEnd := end
	if e.Length != Undefined {
		seqEnd = e.ValueOffset + int64(e.Length)
	}
	for {
		if e.Length != Undefined && r.pos == seqEnd {
			return nil
		}
		at := r.pos
		if seqEnd-at < 8 {
			return &Error{Offset: at, Tag: e.Tag, Kind: ErrTruncated, Msg: "sequence ends inside an item header"}
		}
		if err := p.bump(at, itemCost); err != nil {
			return err
		}
		t, err := p.readTag(r, ienc)
		if err != nil {
			return truncated(at, e.Tag, err)
		}
		b, err := r.read(4)
		if err != nil {
			return truncated(at, e.Tag, err)
		}
		l := u32(b, ienc.BigEndian)
		switch t {
		case TagSequenceDelimiter:
			if e.Length != Undefined {
				return &Error{Offset: at, Tag: e.Tag, Kind: ErrMalformed, Msg: "sequence delimiter in a defined-length sequence"}
			}
			return nil
		case TagItem:
		default:
			return &Error{Offset: at, Tag: e.Tag, Kind: ErrMalformed, Msg: fmt.Sprintf("%s where an item was expected", t)}
		}
		it := &Item{Offset: at, Length: l}
		if l == Undefined {
			for {
				if seqEnd-r.pos < 8 {
					return &Error{Offset: r.pos, Tag: e.Tag, Kind: ErrTruncated, Msg: "item not delimited before its container ends"}
				}
				b, err := r.peek(4)
				if err != nil {
					return truncated(r.pos, e.Tag, err)
				}
				var nt Tag
				if ienc.BigEndian {
					nt = NewTag(binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]))
				} else {
					nt = NewTag(binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:]))
				}
				if nt == TagItemDelimitation {
					r.skip(8) //nolint:errcheck // peeked
					break
				}
				el, err := p.element(r, ienc, seqEnd, depth+1)
				if err != nil {
					return err
				}
				it.Elements = append(it.Elements, el)
			}
		} else {
			if int64(l) > seqEnd-r.pos {
				return &Error{Offset: at, Tag: e.Tag, Kind: ErrTruncated, Msg: fmt.Sprintf("item length %d exceeds the %d bytes left", l, seqEnd-r.pos)}
			}
			if err := p.checkLength(at, e.Tag, "item", l); err != nil {
				return err
			}
			els, err := p.elements(r, ienc, r.pos+int64(l), depth+1)
			if err != nil {
				return err
			}
			it.Elements = els
		}
		it.End = r.pos
		e.Items = append(e.Items, it)
	}
}

// fragments walks the item headers of an encapsulated value.
func (p *parser) fragments(r *reader, e *Element, end int64) error {
	e.Fragments = []Fragment{}
	for {
		at := r.pos
		if end-at < 8 {
			return &Error{Offset: at, Tag: e.Tag, Kind: ErrTruncated, Msg: "encapsulated value not delimited before the file ends"}
		}
		if err := p.bump(at, fragmentCost); err != nil {
			return err
		}
		t, err := p.readTag(r, e.Enc)
		if err != nil {
			return truncated(at, e.Tag, err)
		}
		b, err := r.read(4)
		if err != nil {
			return truncated(at, e.Tag, err)
		}
		l := u32(b, e.Enc.BigEndian)
		switch t {
		case TagSequenceDelimiter:
			return nil
		case TagItem:
		default:
			return &Error{Offset: at, Tag: e.Tag, Kind: ErrMalformed, Msg: fmt.Sprintf("%s inside an encapsulated value", t)}
		}
		if l == Undefined || int64(l) > end-r.pos {
			return &Error{Offset: at, Tag: e.Tag, Kind: ErrTruncated, Msg: "fragment runs past the end of the file"}
		}
		if err := p.checkLength(at, e.Tag, "fragment", l); err != nil {
			return err
		}
		e.Fragments = append(e.Fragments, Fragment{Offset: at, Length: l})
		if err := r.skip(int64(l)); err != nil {
			return truncated(at, e.Tag, err)
		}
	}
}
