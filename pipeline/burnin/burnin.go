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
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"strings"
	"unicode"

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
}

// New returns a Cleaner.
func New(cfg Config) *Cleaner {
	c := &Cleaner{mode: cfg.Mode, allow: cfg.Allow, reader: cfg.Reader}
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

// Image is the examination of one image (all its frames): the file's
// identifiers, and the lines already read (a cine loop's banner is the
// same in most frames).
type Image struct {
	c      *Cleaner
	ids    *identifiers
	strict bool
	read   map[uint64]lineText
	Stats  Stats
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
}

type lineText struct {
	text string
	conf float64
}

// Image starts the examination of one image. strict is for the classes
// that carry text (ultrasound, captures, angiography, images that declare
// burned-in annotation): every candidate line is masked unless it reads
// as allowed; otherwise only candidates that read as text count.
func (c *Cleaner) Image(ids []Identifier, strict bool) *Image {
	return &Image{c: c, ids: prepare(ids), strict: strict, read: map[uint64]lineText{},
		Stats: Stats{ByReason: map[string]int{}}}
}

// pad is the margin around a masked line: beyond its glyphs' anti-aliased
// edges, so that no outline of them is left.
func pad(h int) int { return max(4, h/4) }

// Analyze returns the rectangles to mask in one frame.
func (im *Image) Analyze(ctx context.Context, g *image.Gray) ([]image.Rectangle, error) {
	im.Stats.Frames++
	lines := textfind.Lines(g, im.c.find)
	im.Stats.Lines += len(lines)
	var out []image.Rectangle
	for _, box := range lines {
		masked := im.c.mode == ModeAll
		why := "all"
		if !masked {
			lt, err := im.readLine(ctx, g, box, 0)
			if err != nil {
				return nil, err
			}
			masked, why = im.decide(lt, box)
		}
		if !masked {
			continue
		}
		im.Stats.Masked++
		im.Stats.ByReason[why]++
		p := pad(box.Dy())
		out = append(out, image.Rect(box.Min.X-p, box.Min.Y-p, box.Max.X+p, box.Max.Y+p).Intersect(g.Rect))
	}
	return out, nil
}

// decide is a read line's fate: masked, and why, or kept.
func (im *Image) decide(lt lineText, box image.Rectangle) (bool, string) {
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
	case im.strict:
		return true, "not allowed"
	case textLike(lt):
		return true, "not allowed"
	}
	im.Stats.Ignored++
	return false, ""
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
func textLike(lt lineText) bool {
	n := 0
	for _, r := range lt.text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			n++
		}
	}
	return n >= 2 && lt.conf >= 40
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
	}
	lt.text = strings.Join(parts, " ")
	if len(lines) > 0 {
		lt.conf = conf / float64(len(lines))
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
	judge := func(text string, conf float64, box image.Rectangle) {
		if im.c.allow.Allowed(text) {
			return
		}
		if im.ids.match(text) && conf >= 30 {
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
		page, scale := preparePage(g)
		lines, err := im.c.reader.Read(ctx, page, ocr.PSMSparse)
		if err != nil {
			return nil, fmt.Errorf("burnin: read a frame: %w", err)
		}
		for _, l := range lines {
			b := image.Rect(l.Box.Min.X/scale, l.Box.Min.Y/scale, (l.Box.Max.X+scale-1)/scale, (l.Box.Max.Y+scale-1)/scale)
			judge(l.Text, l.Conf, b)
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
	out := image.NewGray(image.Rect(0, 0, r.Dx()*scale, r.Dy()*scale))
	for y := 0; y < out.Rect.Dy(); y++ {
		src := g.Pix[(r.Min.Y+y/scale)*g.Stride+r.Min.X:]
		row := out.Pix[y*out.Stride:]
		for x := 0; x < out.Rect.Dx(); x++ {
			v := src[x/scale]
			if invert {
				v = 255 - v
			}
			row[x] = v
		}
	}
	return out
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
	invert := median < 128
	out := image.NewGray(image.Rect(0, 0, g.Rect.Dx()*scale, g.Rect.Dy()*scale))
	for y := 0; y < out.Rect.Dy(); y++ {
		src := g.Pix[(y/scale)*g.Stride:]
		row := out.Pix[y*out.Stride:]
		for x := 0; x < out.Rect.Dx(); x++ {
			v := src[x/scale]
			if invert {
				v = 255 - v
			}
			row[x] = v
		}
	}
	return out, scale
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
