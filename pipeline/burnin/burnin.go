// Package burnin finds text burned into an image's pixels, decides what
// of it to mask, and reads the masked image again before it may be
// released. Names, IDs and dates on ultrasound banners, screen captures
// and angiography screens are out of reach of any header rule.
//
// Detection is in two steps: a fast stroke detector (textfind) proposes
// text lines, and OCR (Tesseract, package ocr) reads each. What a line
// says decides its fate under the profile's mode: an identifier of the
// file (compared with OCR's misreadings in mind), text shaped like a
// date, time, ID or name, and, by default, every line that is not made
// only of words of the device-annotation allow-list, is masked. Lines
// are masked whole, with a margin: the box, not the glyphs.
//
// Verification reads the masked frame differently from the first time:
// the whole frame, inverted and scaled, by OCR's own layout analysis
// (which does not depend on the stroke detector's recall), and the
// detector's lines again at another scale. Any identifier of the file, or
// date-, time-, ID- or name-shaped text outside the allow-list, is a
// finding, and the caller holds the image back.
package burnin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"slices"
	"strings"
	"unicode"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/ocr"
	"github.com/dicomdeid/dicomdeid/pipeline/textfind"
)

// Mode is what a profile masks of the text it finds.
type Mode string

// Modes.
const (
	// ModeIdentifying masks text that matches an identifier of the file or
	// is shaped like a date, time, ID or name.
	ModeIdentifying Mode = "identifying"
	// ModeAllButAllowed masks, in addition, every other text line except
	// one made only of allow-listed annotation words. The default.
	ModeAllButAllowed Mode = "all-but-allowed"
	// ModeAll masks every text line found.
	ModeAll Mode = "all"
	// ModeOff examines nothing: the profile opted out (explicitly).
	ModeOff Mode = "off"
)

// ParseMode reads a mode's name.
func ParseMode(s string) (Mode, bool) {
	switch m := Mode(s); m {
	case ModeIdentifying, ModeAllButAllowed, ModeAll, ModeOff:
		return m, true
	}
	return "", false
}

// Reader reads text in an image (ocr.Pool).
type Reader interface {
	Read(ctx context.Context, img *image.Gray, psm ocr.PSM) ([]ocr.Line, error)
}

// ErrNoOCR is returned when text must be read and there is no reader.
var ErrNoOCR = errors.New("burnin: no OCR in this build or on this machine")

// Config configures a Cleaner.
type Config struct {
	Mode   Mode
	Allow  *Allow // nil: none (every text line is masked but in mode identifying)
	Reader Reader // nil: no OCR (images that need reading fail with ErrNoOCR)
}

// Cleaner examines images. It is safe for concurrent use.
type Cleaner struct {
	mode   Mode
	allow  *Allow
	reader Reader
	find   textfind.Options
	// unreadHeight: candidate lines taller than this that OCR does not
	// read as text are not masked (see Analyze).
	unreadHeight int
}

// New returns a Cleaner.
func New(cfg Config) *Cleaner {
	c := &Cleaner{mode: cfg.Mode, allow: cfg.Allow, reader: cfg.Reader, unreadHeight: 0}
	if c.mode == "" {
		c.mode = ModeAllButAllowed
	}
	if c.allow == nil {
		c.allow = NewAllow(nil)
	}
	return c
}

// Mode is the cleaner's mode.
func (c *Cleaner) Mode() Mode { return c.mode }

// CanRead reports whether the cleaner has OCR.
func (c *Cleaner) CanRead() bool { return c.reader != nil }

// Screen is the cheap test for images of classes that rarely carry text
// (CT, MR slices): whether the frame may hold any.
func (c *Cleaner) Screen(g *image.Gray) bool { return textfind.Screen(g, c.find) }

// ScreenFrame is Screen of a decoded frame's Luminance, without making
// all of it when it has one 16-bit grey sample a pixel (CT, MR): the
// range is found in one pass (sixteen samples at a time with the vector
// kernels), and only the rows the screen looks at are mapped to grey,
// and of them (with the kernels) only the stretches that are not flat.
// The answer is Screen(Luminance(frame)). fs keeps the buffers from one
// frame to the next (nil: none).
func (c *Cleaner) ScreenFrame(frame []byte, im codec.Image, pal *Palette, fs *FrameScreen) (bool, error) {
	if !gray16Frame(im) || len(frame) < im.FrameBytes() || im.Rows <= 0 || im.Columns <= 0 {
		g, err := Luminance(frame, im, pal)
		if err != nil {
			return false, err
		}
		return c.Screen(g), nil
	}
	if fs == nil {
		fs = &FrameScreen{}
	}
	if fs.table == nil {
		fs.table = new(screenTable)
	}
	t := newScreenGray16(frame, im, im.Photometric == "MONOCHROME1", fs.table)
	w := im.Columns
	if simdRows() && !fs.wholeRows {
		return fs.rows.ScreenSparse(w, im.Rows, c.find, &frameRows{t: &t, frame: frame, w: w}), nil
	}
	return fs.rows.Screen(w, im.Rows, c.find, func(y int, dst []uint8) { t.row(frame, y, w, dst) }), nil
}

// FrameScreen keeps ScreenFrame's buffers from one frame to the next (the
// slices of a series, the frames of a multi-frame CT: thousands of them).
// It is not safe for concurrent use.
type FrameScreen struct {
	rows  textfind.RowScreen
	table *screenTable
	// wholeRows maps whole rows even where the vector kernels would
	// spare it (the tests' reference).
	wholeRows bool
}

// Image is the examination of one image (all its frames): the file's
// identifiers, and the lines already read (a cine loop's banner is the
// same in most frames).
type Image struct {
	c       *Cleaner
	ids     *identifiers
	strict  bool
	read    map[uint64]lineText
	context map[uint64][]contextWord
	Stats   Stats
	idConf  float64 // see ownIDConf
}

// Stats counts what an examination did.
type Stats struct {
	Frames   int            `json:"frames"`    // frames examined
	Lines    int            `json:"lines"`     // candidate text lines
	Read     int            `json:"ocr_reads"` // OCR calls
	Masked   int            `json:"masked"`    // lines masked
	Allowed  int            `json:"allowed"`   // lines kept as device annotations
	Ignored  int            `json:"ignored"`   // candidates not read as text (images of text-free classes)
	Checked  int            `json:"checked"`   // frames read again after masking
	Findings int            `json:"findings"`  // text still legible after masking
	ByReason map[string]int `json:"by_reason,omitempty"`
	// Regions are the rectangles masked (padded), with why: places and
	// kinds, never text.
	Regions []Region `json:"regions,omitempty"`
}

// Region is one masked rectangle and why it was masked ("identifier",
// "date", "time", "id", "name", "label", "not allowed", "all"); Source is
// the reading that found it ("line", "context", "frame").
type Region struct {
	X      int    `json:"x"`
	Y      int    `json:"y"`
	W      int    `json:"w"`
	H      int    `json:"h"`
	Why    string `json:"why"`
	Source string `json:"source"`
}

type lineText struct {
	text string
	conf float64
	ink  image.Rectangle // where OCR read it, in the frame (line reads)
	// words are the boxes of its words that read as text, in the frame.
	words []image.Rectangle
	// parts are its words as read, boxes in the frame (readings of
	// sparse text: around a line, a whole frame).
	parts []ocr.Word
}

// Image starts the examination of one image. strict is for the classes
// that carry text (ultrasound, captures, angiography, images that declare
// burned-in annotation): every candidate line is masked unless it reads
// as allowed; otherwise only candidates that read as text count.
func (c *Cleaner) Image(ids []Identifier, strict bool) *Image {
	return &Image{c: c, ids: prepare(ids), strict: strict, read: map[uint64]lineText{}, context: map[uint64][]contextWord{},
		Stats: Stats{ByReason: map[string]int{}}, idConf: ownIDConf}
}

// Confidence an identifier reading needs to be a finding of Check: the
// file's own values count read faintly (ownIDConf); values that may not
// be the file's (an audit against every original's, a page of speckle)
// need unsureIDConf, or OCR's letters in anatomy match one of thousands.
const (
	ownIDConf    = 10
	unsureIDConf = 40
	// ownWordConf is the confidence a reading of only a generic word of
	// the file's institution needs to be a finding: the word legible
	// after masking, not speckle of a toolbar within an edit of it.
	ownWordConf = 60
)

// alnumCount is the number of letters and digits in s.
func alnumCount(s string) int {
	n := 0
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			n++
		}
	}
	return n
}

// Unsure makes the examination's identifiers values that may not be the
// image's own (deid verify without a pairing: every original's): Check
// counts a reading of one only with some confidence, and of six letters
// or digits at least (thousands of values match a few misread letters).
func (im *Image) Unsure() {
	im.idConf = unsureIDConf
	im.ids.unsure = true
}

// maxRegions bounds the regions a report lists per image.
const maxRegions = 200

// maxLineHeight is the tallest box taken for one line of screen text
// without reading as text (glyphs of 24-point type and their descenders).
const maxLineHeight = 34

// labelValueHeights is how far past a masked label its value is masked,
// in line heights: an ID or a date of ten to fifteen characters.
const labelValueHeights = 10

// allowedPad is the margin around a line masked only because it is not
// allowed (device text, or text that did not read): beyond the
// detector's box, whose strokes' anti-aliased edges lie within a pixel
// or two of it. A line that identifies has pad's wider margin; this
// one's patch is mostly device text the image keeps elsewhere.
func allowedPad(h int) int { return max(2, h/8) }

// pad is the margin around a masked line: beyond its glyphs' anti-aliased
// edges, so that no outline of them is left.
func pad(h int) int { return max(4, h/4) }

// Analyze returns the rectangles to mask in one frame: the stroke
// detector's lines, each read on its own and around, and (full: the
// first, last and every tenth frame of a cine loop, whose banner is the
// same in most frames) what OCR's own layout analysis reads in the whole
// frame seen as local contrast (text on a
// background that changes under it, from a light margin onto a dark
// image, is lost to a global threshold and kept by this view).
func (im *Image) Analyze(ctx context.Context, g *image.Gray, full bool) ([]image.Rectangle, error) {
	im.Stats.Frames++
	lines := textfind.Lines(g, im.c.find)
	im.Stats.Lines += len(lines)
	var out []image.Rectangle
	source := "line"
	finish := func() []image.Rectangle {
		if im.strict {
			for i := range out {
				out[i] = extendInk(g, out[i])
			}
			out = bridge(out)
		}
		return out
	}
	// rows are the lines read in a strict image, and whether each was
	// masked as identifying, for the readings around them.
	type row struct {
		box        image.Rectangle
		identifies bool
	}
	var rows []row
	// maskPad masks box, p pixels around it.
	maskPad := func(box image.Rectangle, p int, why string) {
		im.Stats.Masked++
		im.Stats.ByReason[why]++
		if why == "label" && box.Dy() <= maxLineHeight {
			// A label (MRN, DOB, Name) is followed on its row by its
			// value, which OCR may not have read where the row runs
			// onto another background: what follows is masked with it,
			// as far as a value's length (ten line heights).
			box.Max.X += labelValueHeights * box.Dy()
		}
		r := image.Rect(box.Min.X-p, box.Min.Y-p, box.Max.X+p, box.Max.Y+p).Intersect(g.Rect)
		out = append(out, r)
		if len(im.Stats.Regions) < maxRegions {
			im.Stats.Regions = append(im.Stats.Regions, Region{X: r.Min.X, Y: r.Min.Y, W: r.Dx(), H: r.Dy(), Why: why, Source: source})
		}
	}
	mask := func(box image.Rectangle, why string) { maskPad(box, pad(box.Dy()), why) }
	maskLine := func(box image.Rectangle, lt lineText, why string) {
		r, p := lineMask(box, lt)
		if why == "not allowed" {
			p = min(p, allowedPad(r.Dy()))
		}
		maskPad(r, p, why)
	}
	for _, box := range lines {
		if im.c.mode == ModeAll {
			mask(box, "all")
			continue
		}
		lt, err := im.readLine(ctx, g, box, 0)
		if err != nil {
			return nil, err
		}
		ignored := false
		if im.strict && !textLike(lt) && box.Dy() > im.c.unreadHeight {
			// Not read as text: the edge of an image, a blob of anatomy,
			// or text on a background that defeats the crop's threshold.
			// The crop's local contrast is read too, and the line's
			// surroundings below; what reads as text in none of them is
			// not masked (the check reads the frame again).
			alt, err := im.readContrast(ctx, g, box)
			if err != nil {
				return nil, err
			}
			switch {
			case textLike(alt):
				lt = alt
			case (partlyRead(lt) || partlyRead(alt)) && box.Dy() <= maxLineHeight:
				// Digits read with little confidence in a line's height
				// are text read in part (an ID on a background that
				// defeats both crops): masked as text that is not
				// allowed. A taller candidate is an image's edge.
				if partlyRead(alt) && !partlyRead(lt) {
					lt = alt
				}
			default:
				im.Stats.Ignored++
				ignored = true
			}
		}
		source = "line"
		identifies := false
		if !ignored {
			masked, why := im.decide(lt, box, im.strict)
			if masked && why == "not allowed" && box.Dy() > maxLineHeight && !wordRead(lt) {
				// Taller than a line and read as a few letters ("as",
				// "| SS"): an image's edge or corner, not a line of
				// text (the check reads the frame again).
				masked = false
				im.Stats.Ignored++
			}
			if masked {
				maskLine(box, lt, why)
				identifies = why != "not allowed"
			}
		}
		if im.strict {
			rows = append(rows, row{box, identifies})
		}
	}
	// Each line's surroundings, read as sparse text in several views: a
	// line the detector found only in part (its end runs from a margin
	// onto a dark image) is read whole there. After every line is
	// masked: what a reading joins to a line (the next line on its row)
	// is then known to be hidden already.
	source = "context"
	for _, r := range rows {
		words, err := im.readContext(ctx, g, r.box)
		if err != nil {
			return nil, err
		}
		seed := image.Rectangle{}
		if r.identifies {
			seed = r.box // the line identifies: its row is extended
		}
		im.extendRow(words, seed, &out, maskLine)
	}
	if im.c.reader == nil || !full {
		return finish(), nil
	}
	source = "frame"
	var found []image.Rectangle
	for _, view := range append([]func(*image.Gray) (*image.Gray, int){contrastPage, shadowPage}, inkPages(g, pageScale)...) {
		page, scale := view(g)
		im.Stats.Read++
		read, err := im.c.reader.Read(ctx, page, ocr.PSMSparse)
		if err != nil {
			return nil, fmt.Errorf("burnin: read a frame: %w", err)
		}
		for _, l := range splitLines(read) {
			box := unscale(l.Box, scale, g.Rect)
			if box.Empty() || covered(box, out) {
				continue
			}
			lt := lineText{text: l.Text, conf: l.Conf, parts: scaledWords(l.Words, scale, g.Rect)}
			if im.c.mode == ModeAll && textLike(lt) {
				mask(box, "all")
				continue
			}
			// Whole-frame readings include anatomy read as letters: only
			// what reads as text counts here, whatever the image's class.
			if masked, why := im.decide(lt, box, false); masked {
				if why == "label" && !labelCased(lt.text) {
					// A label word in lower case ("id", "pt", "pat")
					// is anatomy read as letters: screens write their
					// labels in capitals (ID, MRN, DOB, Acc#, Name), and
					// a label's reach masks ten line heights of the
					// image after it.
					why = "not allowed"
				}
				if why == "not allowed" && !wordRead(lt) {
					// Speckle and anatomy read as a few letters: what
					// identifies was matched above, and a word of
					// fewer than four letters or digits names no one.
					im.Stats.Ignored++
					continue
				}
				if why == "not allowed" {
					mask(box, why)
					continue
				}
				parts := im.unhidden(lt, box, out)
				if len(parts) == 0 {
					im.Stats.Ignored++ // hidden already
				}
				for _, r := range parts {
					mask(r, why)
					found = append(found, r)
				}
			}
		}
	}
	// Text found by the whole-frame reading that the detector missed is
	// read around too: what is next to it on its line.
	if im.strict && im.c.mode != ModeAll {
		source = "context"
		for _, box := range found {
			words, err := im.readContext(ctx, g, box)
			if err != nil {
				return nil, err
			}
			im.extendRow(words, box, &out, maskLine)
		}
	}
	return finish(), nil
}

// splitLines splits OCR's lines where their words are far apart (a gap of
// more than two and a half word heights): page segmentation joins the
// texts of one row of a screen (a date at the left, an institution at the
// right) into one line, whose box spans the image between them. Each
// part is read, decided and masked on its own.
func splitLines(ls []ocr.Line) []ocr.Line {
	var out []ocr.Line
	for _, l := range ls {
		if len(l.Words) < 2 {
			out = append(out, l)
			continue
		}
		hs := make([]int, len(l.Words))
		for i, w := range l.Words {
			hs[i] = w.Box.Dy()
		}
		slices.Sort(hs)
		gap := 5 * max(hs[len(hs)/2], 1) / 2
		start := 0
		for i := 1; i <= len(l.Words); i++ {
			if i < len(l.Words) && l.Words[i].Box.Min.X-l.Words[i-1].Box.Max.X <= gap {
				continue
			}
			out = append(out, lineOf(l.Words[start:i]))
			start = i
		}
	}
	return out
}

// lineOf is a line made of words: their text joined, their boxes' union,
// their mean confidence.
func lineOf(ws []ocr.Word) ocr.Line {
	l := ocr.Line{Words: ws}
	var parts []string
	for _, w := range ws {
		parts = append(parts, w.Text)
		l.Box = l.Box.Union(w.Box)
		l.Conf += w.Conf
	}
	l.Text = strings.Join(parts, " ")
	l.Conf /= float64(len(ws))
	return l
}

// inkOf is where OCR read line l in crop r (scaled by scale) of a frame:
// the union of its words' boxes, tighter than the line's (which a
// single-line reading stretches over the whole crop).
func inkOf(l ocr.Line, r image.Rectangle, scale int) image.Rectangle {
	var b image.Rectangle
	for _, w := range l.Words {
		if textLike(lineText{text: w.Text, conf: 100}) {
			b = b.Union(w.Box)
		}
	}
	if b.Empty() {
		b = l.Box
	}
	return fromCrop(b, r, scale)
}

// wordBoxes are the boxes of line l's words that read as text, in the
// frame (l was read in crop r scaled by scale).
func wordBoxes(l ocr.Line, r image.Rectangle, scale int) []image.Rectangle {
	var out []image.Rectangle
	for _, w := range l.Words {
		if textLike(lineText{text: w.Text, conf: 100}) {
			out = append(out, fromCrop(w.Box, r, scale))
		}
	}
	return out
}

// fromCrop maps a box read in crop r of a frame, scaled by scale, back
// to the frame.
func fromCrop(b, r image.Rectangle, scale int) image.Rectangle {
	return image.Rect(r.Min.X+b.Min.X/scale, r.Min.Y+b.Min.Y/scale,
		r.Min.X+(b.Max.X+scale-1)/scale, r.Min.Y+(b.Max.Y+scale-1)/scale).Intersect(r)
}

// lineMask is what to mask of a candidate line, and how far around it:
// the candidate, padded (pad), but for one taller than a line of text
// (the detector joined text to the image beside it), where OCR read a
// line's height of text in it: there, and two line heights either side
// of it along its row, within the candidate, with a margin already
// (trimPad more): padding the trimmed box by its own height would add a
// band as tall as the text above and below it, over the image.
func lineMask(box image.Rectangle, lt lineText) (image.Rectangle, int) {
	ink := lt.ink.Intersect(box)
	if box.Dy() <= maxLineHeight || ink.Empty() {
		return box, pad(box.Dy())
	}
	if ink.Dy() > maxLineHeight {
		// A word read over the image beside the text stretches the ink:
		// the row is the band of the lowest word read as text (half its
		// height above and below), along all of the ink.
		var ref image.Rectangle
		for _, w := range lt.words {
			if w = w.Intersect(box); w.Dy() >= 5 && (ref.Empty() || w.Dy() < ref.Dy()) {
				ref = w
			}
		}
		if ref.Empty() || ref.Dy() > maxLineHeight {
			return box, pad(box.Dy())
		}
		h := ref.Dy()
		return image.Rect(ink.Min.X-2*h, ref.Min.Y-h/2, ink.Max.X+2*h, ref.Max.Y+h/2).Intersect(box), trimPad
	}
	h := ink.Dy()
	return image.Rect(ink.Min.X-2*h, ink.Min.Y-h/4, ink.Max.X+2*h, ink.Max.Y+h/4).Intersect(box), max(trimPad, pad(h)-h/4)
}

// trimPad is the margin around a trimmed line mask (see lineMask),
// beyond the glyphs' anti-aliased edges.
const trimPad = 2

// extendInk widens a masked rectangle over the ink that continues it on a
// flat background: a line masked in part (its last words missed by the
// detector and by OCR) would leave them legible. Only on a flat
// background: over an image, every column has "ink" and nothing tells
// text from anatomy.
func extendInk(g *image.Gray, r image.Rectangle) image.Rectangle {
	h := r.Dy()
	if h < 6 {
		return r
	}
	bg := int(borderMedian(g, r.Inset(-1).Intersect(g.Rect)))
	// The ring must be flat: most of it within a few levels of its median.
	ring, flat := 0, 0
	ringAt := func(x, y int) {
		if !image.Pt(x, y).In(g.Rect) {
			return
		}
		ring++
		if d := int(g.Pix[y*g.Stride+x]) - bg; d >= -6 && d <= 6 {
			flat++
		}
	}
	for x := r.Min.X - 1; x <= r.Max.X; x++ {
		ringAt(x, r.Min.Y-1)
		ringAt(x, r.Max.Y)
	}
	y0, y1 := r.Min.Y+h/5, r.Max.Y-h/5
	var ink func(x int) bool
	// Above and below a line of text on a flat background lies that
	// background; where the rows beside the band are not flat, the band
	// has run into an image, and nothing there is taken as its ink.
	besideFlat := func(x int) bool {
		for _, y := range [2]int{r.Min.Y - 1, r.Max.Y} {
			if y < g.Rect.Min.Y || y >= g.Rect.Max.Y {
				continue
			}
			if d := int(g.Pix[y*g.Stride+x]) - bg; d > 10 || d < -10 {
				return false
			}
		}
		return true
	}
	if ring > 0 && flat*10 >= ring*7 {
		// Ink is as far from the background as half the masked text's
		// own: the noise of a dark image next to white text is not ink.
		deep := 0
		for y := y0; y < y1; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				deep = max(deep, abs(int(g.Pix[y*g.Stride+x])-bg))
			}
		}
		thr := max(10, deep/2)
		ink = func(x int) bool {
			if !besideFlat(x) {
				return false
			}
			for y := y0; y < y1; y++ {
				if d := int(g.Pix[y*g.Stride+x]) - bg; d > thr || d < -thr {
					return true
				}
			}
			return false
		}
	} else {
		return r
	}
	maxGap, maxRun := max(4, h/2), 30*h
	grow := func(from, step, limit int) int {
		edge, gap := from, 0
		for x := from; x != limit && abs(x-from) < maxRun; x += step {
			if ink(x) {
				edge, gap = x, 0
				continue
			}
			if gap++; gap > maxGap {
				break
			}
		}
		return edge
	}
	right := grow(r.Max.X, 1, g.Rect.Max.X)
	left := grow(r.Min.X-1, -1, g.Rect.Min.X-1)
	p := pad(h) / 2
	return image.Rect(min(r.Min.X, left-p), r.Min.Y, max(r.Max.X, right+1+p), r.Max.Y).Intersect(g.Rect)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// unscale maps a box read in a page scaled by scale back to the frame
// (bounded by it), rounding outward.
func unscale(b image.Rectangle, scale int, frame image.Rectangle) image.Rectangle {
	return image.Rect(b.Min.X/scale, b.Min.Y/scale, (b.Max.X+scale-1)/scale, (b.Max.Y+scale-1)/scale).Intersect(frame)
}

// scaledWords are words read in a page scaled by scale, in the frame.
func scaledWords(ws []ocr.Word, scale int, frame image.Rectangle) []ocr.Word {
	return mapWords(ws, func(b image.Rectangle) image.Rectangle { return unscale(b, scale, frame) })
}

// mapWords is ws with every box (words' and glyphs') mapped by to.
func mapWords(ws []ocr.Word, to func(image.Rectangle) image.Rectangle) []ocr.Word {
	out := make([]ocr.Word, 0, len(ws))
	for _, w := range ws {
		w.Box = to(w.Box)
		if w.Glyphs != nil {
			gs := make([]ocr.Glyph, len(w.Glyphs))
			for i, g := range w.Glyphs {
				gs[i] = ocr.Glyph{Text: g.Text, Box: to(g.Box)}
			}
			w.Glyphs = gs
		}
		out = append(out, w)
	}
	return out
}

// spanUnit is a glyph (or, where glyphs are not known, a word) of a
// reading: its text, where it is, and which word it belongs to.
type spanUnit struct {
	text string
	box  image.Rectangle
	word int
}

// readingUnits are the units of a reading's words: each word's glyphs
// where the reader tells them, else the word. A word's glyphs need not
// spell it: texture read as punctuation ("=====—\"\"—\"‘Klinikum") gives
// symbols that the word's text joins otherwise, and such a word's box
// spans the image before the text it ends in; its glyphs tell which
// part of it the masks hide.
func readingUnits(ws []ocr.Word) []spanUnit {
	var units []spanUnit
	for i, w := range ws {
		n := len(units)
		for _, g := range w.Glyphs {
			if !g.Box.Empty() {
				units = append(units, spanUnit{g.Text, g.Box, i})
			}
		}
		if len(units) == n {
			units = append(units, spanUnit{w.Text, w.Box, i})
		}
	}
	return units
}

// unhidden is what to mask of a sparse reading that identifies (box):
// what it shows outside the masks rs that identifies or may be part of
// what does. Its glyphs (or words) whose centres the masks hide are
// taken out, and of the runs left either side of them, those that
// continue an identifier (the "eonore" of an institution whose line's
// mask ends in it, a date's last digits) are masked, each where its
// glyphs were read. A reading around a masked line, or of the whole
// frame, often joins that line to anatomy read as letters beside it
// ("1982 eeeeess Klinikum Bad Ueberkingen" along a body's lower edge):
// masking it again, whole, would cover the image between texts already
// hidden. A reading whose words are not known, or that the masks do not
// touch, is masked whole.
func (im *Image) unhidden(lt lineText, box image.Rectangle, rs []image.Rectangle) []image.Rectangle {
	units := readingUnits(lt.parts)
	if len(units) == 0 {
		return []image.Rectangle{box}
	}
	type run struct {
		text strings.Builder
		box  image.Rectangle
	}
	var runs []*run
	var cur *run
	prev, hid := -1, false
	for _, u := range units {
		c := image.Pt((u.box.Min.X+u.box.Max.X)/2, (u.box.Min.Y+u.box.Max.Y)/2)
		if slices.ContainsFunc(rs, c.In) {
			prev, hid, cur = -1, true, nil
			continue
		}
		if cur == nil {
			cur = &run{}
			runs = append(runs, cur)
		} else if u.word != prev {
			cur.text.WriteByte(' ')
		}
		cur.text.WriteString(u.text)
		cur.box = cur.box.Union(u.box.Intersect(box))
		prev = u.word
	}
	if !hid {
		return []image.Rectangle{box}
	}
	var out []image.Rectangle
	for _, r := range runs {
		if r.box.Empty() {
			continue
		}
		// A run read as fewer symbols than its width holds at the
		// reading's height was not read: a glyph's box that swallows
		// the text after it ("l" of "Hopital" spanning "Sainte-Eleonore"
		// over a dark image) hides what it spans from the reader, not
		// from the eye.
		span := image.Rect(r.box.Min.X, box.Min.Y, r.box.Max.X, box.Max.Y)
		if im.continues(r.text.String()) || !plausible(r.text.String(), span) {
			out = append(out, r.box)
		}
	}
	return out
}

// continues reports whether t, what a reading shows beside masks,
// identifies or may be part of what does: a file identifier's text (a
// name's, an institution's end) or digits (a date's, an ID's). A generic word of the institution alone
// ("Klinikum") names no one once the rest of its line is hidden.
func (im *Image) continues(t string) bool {
	if im.ids.identifies(t) || (Shape(t) != "" && !im.c.allow.Allowed(t)) {
		return true
	}
	f := fold(t)
	if len(f) == 0 {
		return false // punctuation: nothing to read
	}
	if digitCount(t) >= 2 {
		return true
	}
	return im.ids.partOf(f)
}

// extendRow masks, of the words read around a line, what identifies
// (the rest of a name or a date the detector found in part) and, when
// the line itself was masked (seed not empty), the words that continue
// its row: a line masked in part is a line left legible. Other text there
// is the detector's to find; anatomy read as words is not masked.
func (im *Image) extendRow(words []contextWord, seed image.Rectangle, out *[]image.Rectangle, mask func(image.Rectangle, lineText, string)) {
	row := seed
	done := make([]bool, len(words)) // masked: a word is masked once (its mask may be trimmed, not covering it)
	for changed := true; changed; {
		changed = false
		for i, w := range words {
			if done[i] || covered(w.box, *out) {
				continue
			}
			if why := im.identifying(w.lineText); why != "" {
				for _, r := range im.unhidden(w.lineText, w.box, *out) {
					mask(r, w.lineText, why)
				}
				done[i], changed = true, true
				continue
			}
			if row.Empty() || !sameRow(row, w.box) {
				continue
			}
			if textLike(w.lineText) && w.box.Dy() >= row.Dy()/2 && w.box.Dy() <= row.Dy()*2 {
				mask(w.box, w.lineText, "line continued")
				row = row.Union(w.box)
				done[i], changed = true, true
			}
		}
	}
}

// sameRow reports whether b continues row a: overlapping it vertically
// by half the smaller height, at most two line heights to its side.
func sameRow(a, b image.Rectangle) bool {
	h := min(a.Dy(), b.Dy())
	ov := min(a.Max.Y, b.Max.Y) - max(a.Min.Y, b.Min.Y)
	if ov*2 < h {
		return false
	}
	gap := max(b.Min.X-a.Max.X, a.Min.X-b.Max.X)
	return gap <= 2*max(a.Dy(), 8)
}

// covered reports whether box lies within the union of rs (each of its
// corners and its centre in one of them: enough for boxes of text).
func covered(box image.Rectangle, rs []image.Rectangle) bool {
	pts := []image.Point{box.Min, {box.Max.X - 1, box.Min.Y}, {box.Min.X, box.Max.Y - 1}, box.Max.Sub(image.Pt(1, 1)),
		{(box.Min.X + box.Max.X) / 2, (box.Min.Y + box.Max.Y) / 2}}
	for _, p := range pts {
		in := false
		for _, r := range rs {
			if p.In(r) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

// decide is a read line's fate: masked, and why, or kept.
func (im *Image) decide(lt lineText, box image.Rectangle, strict bool) (bool, string) {
	switch {
	case im.ids.match(lt.text):
		return true, "identifier"
	case Shape(lt.text) != "" && !im.c.allow.Allowed(lt.text):
		return true, Shape(lt.text)
	case im.c.mode == ModeIdentifying:
		return false, ""
	case im.c.allow.Allowed(lt.text) && lt.conf >= 50 && plausible(lt.text, box):
		im.Stats.Allowed++
		return false, ""
	case strict:
		return true, "not allowed"
	case textLike(lt):
		return true, "not allowed"
	}
	im.Stats.Ignored++
	return false, ""
}

// identifying is why a reading identifies (an identifier of the file,
// or date-, time-, ID- or name-shaped text that is not allowed), or "".
func (im *Image) identifying(lt lineText) string {
	if im.ids.match(lt.text) && lt.conf >= 20 {
		return "identifier"
	}
	if sh := Shape(lt.text); sh != "" && sh != "label" && !im.c.allow.Allowed(lt.text) && lt.conf >= 40 {
		return sh
	}
	return ""
}

// plausible reports whether a reading has about as many characters as
// the box can hold: a line read as "L" from a box twenty glyphs wide was
// not read.
func plausible(text string, box image.Rectangle) bool {
	n := 0
	for _, r := range text {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	expect := float64(box.Dx()) / (0.62 * float64(max(box.Dy(), 1)))
	return float64(n) >= 0.4*expect-1
}

// textLike: a reading that is text, not the shapes of anatomy: two
// letters or digits read with some confidence.
// wordRead reports a reading with a word of four letters or digits or
// more, read with some confidence: text, in a whole-frame reading, as
// opposed to texture read as letters.
func wordRead(lt lineText) bool {
	if lt.conf < 50 {
		return false
	}
	for _, w := range strings.Fields(lt.text) {
		if alnumCount(w) >= 4 {
			return true
		}
	}
	return false
}

// partlyRead reports a reading with a run of three digits or more, at
// low confidence: anatomy read as letters rarely reads as digits in a
// row, and every ID, date and accession number has them.
func partlyRead(lt lineText) bool {
	if lt.conf < 20 {
		return false
	}
	run := 0
	for _, r := range lt.text {
		if r >= '0' && r <= '9' {
			if run++; run >= 3 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// bridge joins masked rectangles of one row that a short gap separates
// (at most twice their height): two parts of a line masked with its
// middle left legible are one line. The joined rectangle spans both.
func bridge(rs []image.Rectangle) []image.Rectangle {
	n := len(rs)
	for i := 0; i < n; i++ {
		for k := i + 1; k < n; k++ {
			a, b := rs[i], rs[k]
			h := min(a.Dy(), b.Dy())
			overlap := min(a.Max.Y, b.Max.Y) - max(a.Min.Y, b.Min.Y)
			gap := max(a.Min.X, b.Min.X) - min(a.Max.X, b.Max.X)
			if h <= 0 || 3*overlap < 2*h || gap <= 0 || gap > 2*h {
				continue
			}
			// The bridge is as tall as the two rows share: it does not
			// grow the taller one over its neighbour's height.
			rs = append(rs, image.Rect(min(a.Max.X, b.Max.X), max(a.Min.Y, b.Min.Y), max(a.Min.X, b.Min.X), min(a.Max.Y, b.Max.Y)))
		}
	}
	return rs
}

func textLike(lt lineText) bool {
	return alnumCount(lt.text) >= 2 && lt.conf >= 40
}

// readLine reads one candidate line, from its crop scaled so that its
// glyphs are about 32 pixels high, dark on light. extra adds to the
// scale (verification reads at another one).
func (im *Image) readLine(ctx context.Context, g *image.Gray, box image.Rectangle, extra int) (lineText, error) {
	if im.c.reader == nil {
		return lineText{}, ErrNoOCR
	}
	p := pad(box.Dy()) + 2
	r := image.Rect(box.Min.X-p, box.Min.Y-p, box.Max.X+p, box.Max.Y+p).Intersect(g.Rect)
	scale := max(1, min(4, (32+box.Dy()-1)/max(box.Dy(), 1))) + extra
	key := cropKey(g, r, scale)
	if lt, ok := im.read[key]; ok {
		return lt, nil
	}
	crop := prepareCrop(g, r, scale)
	im.Stats.Read++
	lines, err := im.c.reader.Read(ctx, crop, ocr.PSMSingleLine)
	if err != nil {
		return lineText{}, fmt.Errorf("burnin: read a text line: %w", err)
	}
	var lt lineText
	var parts []string
	var conf float64
	for _, l := range lines {
		parts = append(parts, l.Text)
		conf += l.Conf
		lt.ink = lt.ink.Union(inkOf(l, r, scale))
		lt.words = append(lt.words, wordBoxes(l, r, scale)...)
	}
	lt.text = strings.Join(parts, " ")
	if len(lines) > 0 {
		lt.conf = conf / float64(len(lines))
	}
	im.read[key] = lt
	return lt, nil
}

// contextWord is a word read around a candidate line, in frame
// coordinates.
type contextWord struct {
	lineText
	box image.Rectangle
}

// readContext reads the region around a candidate line (twelve line
// heights to either side: a line found by its first glyph only, half of one above and below) as sparse text,
// stretched to its own range and with its darkest levels stretched.
func (im *Image) readContext(ctx context.Context, g *image.Gray, box image.Rectangle) ([]contextWord, error) {
	h := max(box.Dy(), 8)
	r := image.Rect(box.Min.X-12*h, box.Min.Y-h/2-2, box.Max.X+12*h, box.Max.Y+h/2+2).Intersect(g.Rect)
	scale := max(2, min(3, (32+h-1)/h))
	var out []contextWord
	for view := 0; view < 4; view++ {
		key := cropKey(g, r, 100+10*view+scale)
		ws, ok := im.context[key]
		if !ok {
			var crop *image.Gray
			switch view {
			case 0:
				crop = prepareCrop(g, r, scale)
			case 1:
				crop = prepareShadows(g, r, scale)
			case 2:
				crop = scaleGray(highlights(g, r), scale)
			default:
				crop = scaleGray(normalizedContrast(subImage(g, r), max(4, h/2)), scale)
			}
			im.Stats.Read++
			lines, err := im.c.reader.Read(ctx, crop, ocr.PSMSparse)
			if err != nil {
				return nil, fmt.Errorf("burnin: read around a text line: %w", err)
			}
			for _, l := range splitLines(lines) {
				ink := inkOf(l, r, scale)
				parts := mapWords(l.Words, func(b image.Rectangle) image.Rectangle { return fromCrop(b, r, scale) })
				ws = append(ws, contextWord{lineText{text: l.Text, conf: l.Conf, ink: ink, words: wordBoxes(l, r, scale), parts: parts}, ink})
			}
			im.context[key] = ws
		}
		out = append(out, ws...)
	}
	return out, nil
}

// prepareShadows cuts r out of g with its darkest levels stretched
// (0..48 above the crop's darkest to 0..255) and inverted: dark grey
// text over black.
func prepareShadows(g *image.Gray, r image.Rectangle, scale int) *image.Gray {
	lo := uint8(255)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for _, v := range g.Pix[y*g.Stride+r.Min.X : y*g.Stride+r.Max.X] {
			lo = min(lo, v)
		}
	}
	var lut [256]uint8
	for v := range lut {
		d := max(0, v-int(lo))
		lut[v] = uint8(255 - min(255, d*255/48))
	}
	return scaleGray(mapCrop(g, r, &lut), scale)
}

// readContrast reads a candidate line's crop as local contrast (dark
// strokes on white whatever the background under them).
func (im *Image) readContrast(ctx context.Context, g *image.Gray, box image.Rectangle) (lineText, error) {
	p := pad(box.Dy()) + 8
	r := image.Rect(box.Min.X-p, box.Min.Y-p, box.Max.X+p, box.Max.Y+p).Intersect(g.Rect)
	sub := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := 0; y < r.Dy(); y++ {
		copy(sub.Pix[y*sub.Stride:], g.Pix[(r.Min.Y+y)*g.Stride+r.Min.X:(r.Min.Y+y)*g.Stride+r.Max.X])
	}
	scale := max(1, min(4, (32+box.Dy()-1)/max(box.Dy(), 1)))
	key := cropKey(g, r, -scale)
	if lt, ok := im.read[key]; ok {
		return lt, nil
	}
	im.Stats.Read++
	lc := localContrast(sub, max(3, box.Dy()/2))
	lut := stretchLUT(lc, lc.Rect, false)
	for i, v := range lc.Pix {
		lc.Pix[i] = lut[v]
	}
	lines, err := im.c.reader.Read(ctx, scaleGray(lc, scale), ocr.PSMSingleLine)
	if err != nil {
		return lineText{}, fmt.Errorf("burnin: read a text line: %w", err)
	}
	var lt lineText
	var parts []string
	for _, l := range lines {
		parts = append(parts, l.Text)
		lt.conf += l.Conf
		lt.ink = lt.ink.Union(inkOf(l, r, scale))
		lt.words = append(lt.words, wordBoxes(l, r, scale)...)
	}
	lt.text = strings.Join(parts, " ")
	if len(lines) > 0 {
		lt.conf /= float64(len(lines))
	}
	im.read[key] = lt
	return lt, nil
}

// Finding is text still legible in a masked frame. It names a kind and a
// place, never the text.
type Finding struct {
	Kind string          // "identifier", "date", "time", "id", "name"
	Box  image.Rectangle // in the frame
}

func (f Finding) String() string {
	if f.Box.Empty() {
		return f.Kind // not a place: the whole of something (an overlay)
	}
	return fmt.Sprintf("%s-like text at (%d,%d)", f.Kind, f.Box.Min.X, f.Box.Min.Y)
}

// Check reads a masked frame again, differently from Analyze: the whole
// frame by OCR's layout analysis (scaled, in the other polarity), and
// the detector's lines at another scale. full=false skips the whole-frame
// pass (frames of a cine loop between those checked fully).
func (im *Image) Check(ctx context.Context, g *image.Gray, full bool) ([]Finding, error) {
	if im.c.reader == nil {
		return nil, ErrNoOCR
	}
	im.Stats.Checked++
	var fs []Finding
	minIDConf := im.idConf
	judge := func(text string, conf float64, box image.Rectangle) {
		if im.c.allow.Allowed(text) {
			return
		}
		id := im.ids.identifies(text) || conf >= ownWordConf && im.ids.match(text)
		if id && conf >= minIDConf && (im.idConf < unsureIDConf || alnumCount(text) >= 6) {
			fs = append(fs, Finding{Kind: "identifier", Box: box})
			return
		}
		if s := Shape(text); s != "" && s != "label" && conf >= 55 {
			fs = append(fs, Finding{Kind: s, Box: box})
		}
	}
	for _, box := range textfind.Lines(g, im.c.find) {
		lt, err := im.readLine(ctx, g, box, 1)
		if err != nil {
			return nil, err
		}
		judge(lt.text, lt.conf, box)
	}
	if full {
		// Two views the first reading did not use: the frame inverted and
		// scaled, and its local contrast at another scale.
		plain := 3 // the views before the ink pages
		for k, view := range append([]func(*image.Gray) (*image.Gray, int){preparePage, contrastPageCheck, shadowPageCheck}, inkPages(g, checkScale)...) {
			// An ink page of an image (a level anatomy happens to pile up
			// at) is speckle OCR reads letters in: an identifier read
			// there must be read with some confidence.
			minIDConf = im.idConf
			if k >= plain {
				minIDConf = max(im.idConf, unsureIDConf)
			}
			page, scale := view(g)
			lines, err := im.c.reader.Read(ctx, page, ocr.PSMSparse)
			if err != nil {
				return nil, fmt.Errorf("burnin: read a frame: %w", err)
			}
			// Each line whole and in its parts: a part is judged on its
			// own words, the whole in case a value spans a wide gap.
			for _, l := range append(lines, splitLines(lines)...) {
				b := image.Rect(l.Box.Min.X/scale, l.Box.Min.Y/scale, (l.Box.Max.X+scale-1)/scale, (l.Box.Max.Y+scale-1)/scale)
				judge(l.Text, l.Conf, b)
			}
		}
	}
	im.Stats.Findings += len(fs)
	return fs, nil
}

// cropKey identifies a crop by its pixels, for the cache of readings.
func cropKey(g *image.Gray, r image.Rectangle, scale int) uint64 {
	h := fnv.New64a()
	var hdr [12]byte
	for i, v := range []int{r.Dx(), r.Dy(), scale} {
		hdr[4*i], hdr[4*i+1], hdr[4*i+2], hdr[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	h.Write(hdr[:])
	for y := r.Min.Y; y < r.Max.Y; y++ {
		h.Write(g.Pix[y*g.Stride+r.Min.X : y*g.Stride+r.Max.X])
	}
	return h.Sum64()
}

// prepareCrop cuts r out of g, scales it by an integer factor (nearest
// neighbour keeps strokes sharp for OCR at these sizes) and makes it
// dark text on a light background, which is what Tesseract reads best:
// the crop's border is its background.
func prepareCrop(g *image.Gray, r image.Rectangle, scale int) *image.Gray {
	bg := borderMedian(g, r)
	invert := bg < 128
	// The crop's own range stretched to 0..255: dark grey text on black
	// (20 levels) reads as well as white on black.
	lut := stretchLUT(g, r, invert)
	return scaleGray(mapCrop(g, r, lut), scale)
}

// mapCrop cuts r out of g through a lookup table of grey levels.
func mapCrop(g *image.Gray, r image.Rectangle, lut *[256]uint8) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := 0; y < r.Dy(); y++ {
		src := g.Pix[(r.Min.Y+y)*g.Stride+r.Min.X:]
		row := out.Pix[y*out.Stride:]
		for x := 0; x < r.Dx(); x++ {
			row[x] = lut[src[x]]
		}
	}
	return out
}

// stretchLUT maps r's range of grey levels (its 1st to 99th percentile)
// to 0..255, inverted when asked.
func stretchLUT(g *image.Gray, r image.Rectangle, invert bool) *[256]uint8 {
	var hist [256]int
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for _, v := range g.Pix[y*g.Stride+r.Min.X : y*g.Stride+r.Max.X] {
			hist[v]++
			n++
		}
	}
	lo, hi, acc := 0, 255, 0
	for v := 0; v < 256; v++ {
		acc += hist[v]
		if acc*100 > n {
			lo = v
			break
		}
	}
	acc = 0
	for v := 255; v >= 0; v-- {
		acc += hist[v]
		if acc*100 > n {
			hi = v
			break
		}
	}
	if hi-lo < 8 { // flat: nothing to stretch
		lo, hi = 0, 255
	}
	var lut [256]uint8
	for v := range lut {
		x := (v - lo) * 255 / (hi - lo)
		x = max(0, min(255, x))
		if invert {
			x = 255 - x
		}
		lut[v] = uint8(x)
	}
	return &lut
}

// preparePage is the whole frame for the verification pass: scaled up
// when small (text of 10 pixels is below what OCR reads), and in the
// polarity opposite to the frame's dominant one.
func preparePage(g *image.Gray) (*image.Gray, int) {
	scale := 1
	if g.Rect.Dx() <= 1100 {
		scale = 2
	}
	var hist [256]int
	for _, v := range g.Pix {
		hist[v]++
	}
	n, acc, median := len(g.Pix), 0, 0
	for v, c := range hist {
		acc += c
		if acc >= n/2 {
			median = v
			break
		}
	}
	out := image.NewGray(image.Rect(0, 0, g.Rect.Dx(), g.Rect.Dy()))
	for y := 0; y < out.Rect.Dy(); y++ {
		src := g.Pix[y*g.Stride : y*g.Stride+out.Rect.Dx()]
		row := out.Pix[y*out.Stride:]
		for x, v := range src {
			if median < 128 {
				v = 255 - v
			}
			row[x] = v
		}
	}
	return scaleGray(out, scale), scale
}

// borderMedian is the median grey level of r's outermost pixels.
func borderMedian(g *image.Gray, r image.Rectangle) uint8 {
	var hist [256]int
	n := 0
	at := func(x, y int) {
		hist[g.Pix[y*g.Stride+x]]++
		n++
	}
	for x := r.Min.X; x < r.Max.X; x++ {
		at(x, r.Min.Y)
		at(x, r.Max.Y-1)
	}
	for y := r.Min.Y + 1; y < r.Max.Y-1; y++ {
		at(r.Min.X, y)
		at(r.Max.X-1, y)
	}
	acc := 0
	for v, c := range hist {
		acc += c
		if acc*2 >= n {
			return uint8(v)
		}
	}
	return 0
}

// contrastPage is the frame as local contrast, for the first reading:
// dark where a pixel differs from the mean of its neighbourhood (in
// either direction), white where the image is flat, scaled 2x when
// small.
func contrastPage(g *image.Gray) (*image.Gray, int) {
	scale := pageScale(g)
	return scaleGray(localContrast(g, 7), scale), scale
}

// contrastPageCheck is the same view at another window and scale, for
// the check.
func contrastPageCheck(g *image.Gray) (*image.Gray, int) {
	scale := 1
	if g.Rect.Dx() <= 700 {
		scale = 3
	} else if g.Rect.Dx() <= 1400 {
		scale = 2
	}
	return scaleGray(localContrast(g, 11), scale), scale
}

// localContrast maps each pixel to 255 - 3|p - mean|, the mean over the
// (2r+1)^2 window around it (an integral image: constant cost per pixel).
func localContrast(g *image.Gray, r int) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	sum := make([]int64, (w+1)*(h+1))
	for y := 0; y < h; y++ {
		var row int64
		for x := 0; x < w; x++ {
			row += int64(g.Pix[y*g.Stride+x])
			sum[(y+1)*(w+1)+x+1] = sum[y*(w+1)+x+1] + row
		}
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		y0, y1 := max(0, y-r), min(h, y+r+1)
		for x := 0; x < w; x++ {
			x0, x1 := max(0, x-r), min(w, x+r+1)
			n := int64((y1 - y0) * (x1 - x0))
			s := sum[y1*(w+1)+x1] - sum[y0*(w+1)+x1] - sum[y1*(w+1)+x0] + sum[y0*(w+1)+x0]
			d := int64(g.Pix[y*g.Stride+x])*n - s
			if d < 0 {
				d = -d
			}
			v := 255 - 3*d/n
			if v < 0 {
				v = 0
			}
			out.Pix[y*out.Stride+x] = uint8(v)
		}
	}
	return out
}

// scaleGray enlarges g by an integer factor, interpolating bilinearly:
// OCR reads smoothed strokes better than the blocks of a pixel font
// enlarged by repetition.
func scaleGray(g *image.Gray, scale int) *image.Gray {
	if scale == 1 {
		return g
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	out := image.NewGray(image.Rect(0, 0, w*scale, h*scale))
	for y := 0; y < h*scale; y++ {
		// Source coordinate of the output pixel's centre, in 1/256ths.
		sy := max(0, ((2*y+1)*128)/scale-128)
		y0 := min(sy>>8, h-1)
		y1 := min(y0+1, h-1)
		fy := sy & 255
		r0 := g.Pix[(g.Rect.Min.Y+y0)*g.Stride+g.Rect.Min.X:]
		r1 := g.Pix[(g.Rect.Min.Y+y1)*g.Stride+g.Rect.Min.X:]
		row := out.Pix[y*out.Stride:]
		for x := 0; x < w*scale; x++ {
			sx := max(0, ((2*x+1)*128)/scale-128)
			x0 := min(sx>>8, w-1)
			x1 := min(x0+1, w-1)
			fx := sx & 255
			top := int(r0[x0])*(256-fx) + int(r0[x1])*fx
			bot := int(r1[x0])*(256-fx) + int(r1[x1])*fx
			row[x] = uint8((top*(256-fy) + bot*fy) >> 16)
		}
	}
	return out
}

// shadowPage is the frame's darkest levels stretched (0..48 to 0..255,
// brighter saturated) and inverted: dark grey text drawn over a black
// region, twenty grey levels above it, is as plain as print on paper.
func shadowPage(g *image.Gray) (*image.Gray, int) {
	scale := pageScale(g)
	return scaleGray(shadows(g), scale), scale
}

// shadowPageCheck is the same view at another scale, for the check.
func shadowPageCheck(g *image.Gray) (*image.Gray, int) {
	scale := checkScale(g)
	return scaleGray(shadows(g), scale), scale
}

// checkScale is the check's scale of a whole frame: another than
// pageScale's for most widths, so that the check does not read what the
// first reading read.
func checkScale(g *image.Gray) int {
	switch w := g.Rect.Dx(); {
	case w <= 700:
		return 3
	case w <= 1400:
		return 2
	}
	return 1
}

// inkPages are the whole-frame views of text drawn in one colour: for
// each of the frame's ink levels (at most three), the pixels of that level
// as black on white, whatever lies around them (a banner, a margin, an
// image: a line that runs from one onto another is whole here, which no
// threshold or local window makes it); the brightest levels when the
// frame has no ink level; then the exact ink levels the histogram buries
// (exactInkLevels), each as its stroke pixels. scale is the page's scale
// for a frame.
func inkPages(g *image.Gray, scale func(*image.Gray) int) []func(*image.Gray) (*image.Gray, int) {
	var out []func(*image.Gray) (*image.Gray, int)
	levels := inkLevels(g)
	for _, l := range levels {
		out = append(out, func(g *image.Gray) (*image.Gray, int) {
			s := scale(g)
			return scaleGray(isoLevel(g, l), s), s
		})
	}
	if len(out) == 0 {
		out = append(out, func(g *image.Gray) (*image.Gray, int) {
			s := scale(g)
			return scaleGray(highlights(g, g.Rect), s), s
		})
	}
	for _, l := range exactInkLevels(g, levels) {
		out = append(out, func(g *image.Gray) (*image.Gray, int) {
			s := scale(g)
			return scaleGray(isoExact(g, l), s), s
		})
	}
	return out
}

// maxExactLevels is the most levels exactInkLevels adds: each is one more
// reading of the whole frame.
const maxExactLevels = 2

// exactInkLevels are the ink levels inkLevels misses (none within twice
// inkTolerance of have): text drawn in one exact colour over a noisy
// region of the image (dim grey type over dark speckle), whose level lies
// on the slope of the region's own histogram and is no spike there. Only
// the pixels that two or more of their four neighbours equal exactly are
// counted: speckle has few of them, a stroke of one colour is mostly
// made of them, so at the ink's level the share of such pixels stands
// out of the shares at the levels around, wherever the ink is drawn.
func exactInkLevels(g *image.Gray, have []uint8) []uint8 {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	var joined, hist [256]int
	for y := 1; y+1 < h; y++ {
		row := g.Pix[y*g.Stride : y*g.Stride+w]
		up, down := g.Pix[(y-1)*g.Stride:], g.Pix[(y+1)*g.Stride:]
		for x := 1; x+1 < w; x++ {
			v := row[x]
			hist[v]++
			n := 0
			if row[x-1] == v {
				n++
			}
			if row[x+1] == v {
				n++
			}
			if up[x] == v {
				n++
			}
			if down[x] == v {
				n++
			}
			if n >= 2 {
				joined[v]++
			}
		}
	}
	total := max(w-2, 0) * max(h-2, 0)
	var cs []inkCand
	for l := minInkLevel; l < 256; l++ {
		if joined[l] < minInkPixels || hist[l]*4 >= total {
			continue
		}
		if slices.ContainsFunc(have, func(k uint8) bool { return abs(int(k)-l) <= 2*inkTolerance }) {
			continue
		}
		// What speckle at this level would give: the largest share of
		// joined pixels among the levels around (not the next ones:
		// anti-aliased edges). At a noisy region's commonest levels
		// neighbours are equal more often, but about as often two
		// levels away.
		share := 0.0
		for v := max(l-6, 0); v <= min(l+6, 255); v++ {
			if abs(v-l) > 1 && hist[v] > 0 {
				share = max(share, float64(joined[v])/float64(hist[v]))
			}
		}
		expect := share * float64(hist[l])
		if excess := float64(joined[l]) - expect; excess >= minInkPixels && float64(joined[l]) >= 3*expect {
			cs = append(cs, inkCand{uint8(l), int(excess)})
		}
	}
	return pickLevels(nil, cs, maxExactLevels)
}

// isoExact is g with the pixels exactly at level that two or more of
// their eight neighbours share as black ink, the rest white: the speckle
// of a noisy region that happens to reach the level is left out, a
// stroke (even one pixel wide, even diagonal) is kept.
func isoExact(g *image.Gray, level uint8) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	out := image.NewGray(image.Rect(0, 0, w, h))
	for i := range out.Pix {
		out.Pix[i] = 255
	}
	at := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < w && y < h && g.Pix[y*g.Stride+x] == level
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !at(x, y) {
				continue
			}
			n := 0
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					if (dx != 0 || dy != 0) && at(x+dx, y+dy) {
						n++
					}
				}
			}
			if n >= 2 {
				out.Pix[y*out.Stride+x] = 0
			}
		}
	}
	return out
}

// inkTolerance is how far from an ink level a pixel is still its ink
// (lossless images keep the level exactly; the codecs' rounding and
// lossy images' ringing move it a little).
const inkTolerance = 2

// inkLevels are the grey levels text is drawn in, at most three: devices
// draw text in one colour, so its level stands out of the frame's
// histogram as a spike (more pixels at it than the levels a few away
// hold, by a short word's worth and by half) that an image's smooth
// histogram does not have. The background (a level that holds a quarter
// of the frame or more) is not ink; the largest spikes are taken.
func inkLevels(g *image.Gray) []uint8 {
	var hist [256]int
	for y := g.Rect.Min.Y; y < g.Rect.Max.Y; y++ {
		for _, v := range g.Pix[(y-g.Rect.Min.Y)*g.Stride : (y-g.Rect.Min.Y)*g.Stride+g.Rect.Dx()] {
			hist[v]++
		}
	}
	total := g.Rect.Dx() * g.Rect.Dy()
	var cs []inkCand
	var near []int
	for l := 0; l < 256; l++ {
		if hist[l] < minInkPixels || hist[l]*4 >= total || l < minInkLevel {
			continue // too few, the background, or black
		}
		// The levels around (not the next ones, which anti-aliased edges
		// raise), those that hold any pixel: a stretched range leaves
		// some levels empty.
		near = near[:0]
		for v := max(l-6, 0); v <= min(l+6, 255); v++ {
			if abs(v-l) > 1 && hist[v] > 0 {
				near = append(near, hist[v])
			}
		}
		med := 0
		if len(near) > 0 {
			slices.Sort(near)
			med = near[len(near)/2]
		}
		if excess := hist[l] - med; excess >= minInkPixels && 2*hist[l] >= 3*med {
			cs = append(cs, inkCand{uint8(l), excess})
		}
	}
	// Strokes, not speckle: a level at which an image's texture happens
	// to pile up is scattered pixels; text's ink is strokes, most of its
	// pixels next to two others of its level.
	cs = slices.DeleteFunc(cs, func(c inkCand) bool { return !stroked(g, c.level) })
	// White, the commonest colour of text, first when it is a spike; then
	// the largest others.
	var out []uint8
	if len(cs) > 0 && cs[len(cs)-1].level >= 255-inkTolerance {
		out = append(out, cs[len(cs)-1].level)
	}
	return pickLevels(out, cs, 3)
}

// inkCand is a candidate ink level and how far it stands out.
type inkCand struct {
	level uint8
	score int
}

// pickLevels appends to out the levels of cs, those that stand out most
// first, until it holds n; a level within twice inkTolerance of one taken
// is the same ink.
func pickLevels(out []uint8, cs []inkCand, n int) []uint8 {
	slices.SortFunc(cs, func(a, b inkCand) int { return cmp.Compare(b.score, a.score) })
	for _, c := range cs {
		if len(out) >= n {
			break
		}
		if slices.ContainsFunc(out, func(l uint8) bool { return abs(int(l)-int(c.level)) <= 2*inkTolerance }) {
			continue
		}
		out = append(out, c.level)
	}
	return out
}

// stroked reports whether most pixels at level (within inkTolerance) have
// two or more of their four neighbours at it too, and at least
// minInkPixels do.
func stroked(g *image.Gray, level uint8) bool {
	at := func(v uint8) bool { return abs(int(v)-int(level)) <= inkTolerance }
	w, h := g.Rect.Dx(), g.Rect.Dy()
	ink, joined := 0, 0
	for y := 1; y+1 < h; y++ {
		row := g.Pix[y*g.Stride : y*g.Stride+w]
		up, down := g.Pix[(y-1)*g.Stride:], g.Pix[(y+1)*g.Stride:]
		for x := 1; x+1 < w; x++ {
			if !at(row[x]) {
				continue
			}
			ink++
			n := 0
			for _, v := range [4]uint8{row[x-1], row[x+1], up[x], down[x]} {
				if at(v) {
					n++
				}
			}
			if n >= 2 {
				joined++
			}
		}
	}
	return joined >= minInkPixels && 2*joined >= ink
}

// minInkLevel is the darkest level taken as ink: below it is the noise
// of black margins (black text is read by the other views).
const minInkLevel = 12

// minInkPixels is the fewest pixels at an ink level: a short word of
// 7-pixel type has a couple of hundred.
const minInkPixels = 120

// isoLevel is g with the pixels within inkTolerance of level as black
// ink, the rest white.
func isoLevel(g *image.Gray, level uint8) *image.Gray {
	var lut [256]uint8
	for v := range lut {
		if abs(v-int(level)) > inkTolerance {
			lut[v] = 255
		}
	}
	return mapCrop(g, g.Rect, &lut)
}

// highlightDepth is how far below the brightest level of a region a
// pixel is still taken as white text's ink (its anti-aliased edges are
// left out, which only thins the strokes).
const highlightDepth = 28

// highlights cuts r out of g with the pixels within highlightDepth of its
// brightest as black ink, the rest white.
func highlights(g *image.Gray, r image.Rectangle) *image.Gray {
	hi := uint8(0)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for _, v := range g.Pix[y*g.Stride+r.Min.X : y*g.Stride+r.Max.X] {
			hi = max(hi, v)
		}
	}
	var lut [256]uint8
	for v := range lut {
		if v+highlightDepth < int(hi) || hi < 2*highlightDepth {
			lut[v] = 255
		}
	}
	return mapCrop(g, r, &lut)
}

func shadows(g *image.Gray) *image.Gray {
	var lut [256]uint8
	for v := range lut {
		lut[v] = uint8(255 - min(255, v*255/48))
	}
	out := image.NewGray(image.Rect(0, 0, g.Rect.Dx(), g.Rect.Dy()))
	for y := 0; y < out.Rect.Dy(); y++ {
		src := g.Pix[y*g.Stride : y*g.Stride+out.Rect.Dx()]
		row := out.Pix[y*out.Stride:]
		for x, v := range src {
			row[x] = lut[v]
		}
	}
	return out
}

// subImage copies r out of g.
func subImage(g *image.Gray, r image.Rectangle) *image.Gray {
	sub := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := 0; y < r.Dy(); y++ {
		copy(sub.Pix[y*sub.Stride:], g.Pix[(r.Min.Y+y)*g.Stride+r.Min.X:(r.Min.Y+y)*g.Stride+r.Max.X])
	}
	return sub
}

// normalizedContrast is local contrast relative to the neighbourhood's
// own: |p - mean| over the mean absolute deviation around it, dark where
// high. Text twenty grey levels above black and text on a light margin
// come out alike, whatever the polarity.
func normalizedContrast(g *image.Gray, r int) *image.Gray {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	integral := func(val func(x, y int) int64) []int64 {
		sum := make([]int64, (w+1)*(h+1))
		for y := 0; y < h; y++ {
			var row int64
			for x := 0; x < w; x++ {
				row += val(x, y)
				sum[(y+1)*(w+1)+x+1] = sum[y*(w+1)+x+1] + row
			}
		}
		return sum
	}
	box := func(sum []int64, x, y int) (int64, int64) {
		y0, y1 := max(0, y-r), min(h, y+r+1)
		x0, x1 := max(0, x-r), min(w, x+r+1)
		return sum[y1*(w+1)+x1] - sum[y0*(w+1)+x1] - sum[y1*(w+1)+x0] + sum[y0*(w+1)+x0], int64((y1 - y0) * (x1 - x0))
	}
	s1 := integral(func(x, y int) int64 { return int64(g.Pix[y*g.Stride+x]) })
	dev := make([]int64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s, n := box(s1, x, y)
			d := int64(g.Pix[y*g.Stride+x])*n - s
			if d < 0 {
				d = -d
			}
			dev[y*w+x] = d / n
		}
	}
	s2 := integral(func(x, y int) int64 { return dev[y*w+x] })
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s, n := box(s2, x, y)
			mad := s/n + 3
			v := 255 - 70*dev[y*w+x]/mad
			out.Pix[y*out.Stride+x] = uint8(max(0, v))
		}
	}
	return out
}

// pageScale enlarges a frame for reading whole: the smallest screen
// fonts (7 pixels high) need three times that for OCR.
func pageScale(g *image.Gray) int {
	switch w := g.Rect.Dx(); {
	case w <= 820:
		return 3
	case w <= 1100:
		return 2
	}
	return 1
}
