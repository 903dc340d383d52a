package ocr

import (
	"context"
	"errors"
	"fmt"
	"image"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// PSM is Tesseract's page segmentation mode.
type PSM int

// The page segmentation modes the callers use (Tesseract's numbers).
const (
	PSMAuto       PSM = 3  // fully automatic page segmentation, no orientation detection
	PSMBlock      PSM = 6  // one uniform block of text
	PSMSingleLine PSM = 7  // one text line
	PSMSparse     PSM = 11 // as much text as possible, in no particular order
)

// Word is one recognized word.
type Word struct {
	Text string
	Box  image.Rectangle // in the input image's coordinates
	Conf float64         // 0..100
	// Glyphs are its symbols and their boxes, where the backend tells
	// them (the C API; not the command line's TSV): a word's box can
	// span texture read as letters beside the text.
	Glyphs []Glyph
}

// Glyph is one recognized symbol of a word.
type Glyph struct {
	Text string
	Box  image.Rectangle // in the input image's coordinates
}

// maxGlyphs bounds the symbols kept of one word; a longer word keeps
// none (its box stands for it).
const maxGlyphs = 128

// Line is the words of one text line (Tesseract's RIL_TEXTLINE).
type Line struct {
	Text  string          // the words joined by one space
	Box   image.Rectangle // the union of the words' boxes
	Conf  float64         // mean of the words' Conf
	Words []Word
}

// Config configures a Pool.
type Config struct {
	Lang    string // Tesseract language; "" is "eng"
	DataDir string // tessdata directory; "" is Tesseract's default
	Engines int    // most engines reading at once; 0 is runtime.GOMAXPROCS(0)
}

// ErrUnavailable tells that this build or machine has no OCR: no
// Tesseract, or not its language data. NewPool wraps it with the reason.
var ErrUnavailable = errors.New("ocr unavailable")

// ErrClosed is returned by Read on a closed Pool.
var ErrClosed = errors.New("ocr: pool closed")

// ErrImage is returned by Read for an image it refuses: empty, or over
// MaxSide or MaxPixels.
var ErrImage = errors.New("ocr: image refused")

// Bounds of an image Read accepts. Tesseract's own limit is 32767 pixels
// a side; the area bound keeps one engine's memory to a few hundred MB
// (Tesseract holds several copies of the page).
const (
	MaxSide   = 32767
	MaxPixels = 8192 * 8192
)

// engine is one loaded Tesseract; one goroutine uses it at a time.
type engine interface {
	read(ctx context.Context, img *image.Gray, psm PSM) ([]Line, error)
	close()
}

// backend opens engines of one implementation.
type backend interface {
	open() (engine, error)
	describe() string
}

// Pool reads images with up to Config.Engines Tesseract engines at once.
// Engines are opened when first needed and kept loaded (loading a
// language costs 100 ms or more). It is safe for concurrent use.
type Pool struct {
	b     backend
	slots chan struct{} // one token per engine that may be in use

	mu     sync.Mutex
	idle   []engine
	closed bool
}

func newPool(b backend, cfg Config, first engine) *Pool {
	n := cfg.Engines
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{b: b, slots: make(chan struct{}, n)}
	if first != nil {
		p.idle = append(p.idle, first)
	}
	return p
}

func (c Config) lang() string {
	if c.Lang == "" {
		return "eng"
	}
	return c.Lang
}

// Describe names the implementation, e.g. "tesseract 5.3.0 (C API)".
func (p *Pool) Describe() string { return p.b.describe() }

// Read recognizes the text of img with the page segmentation mode psm.
// It blocks until an engine is free or ctx ends. The lines are sorted
// top to bottom, then left to right; words without text are dropped.
func (p *Pool) Read(ctx context.Context, img *image.Gray, psm PSM) ([]Line, error) {
	if err := checkImage(img); err != nil {
		return nil, err
	}
	switch psm {
	case PSMAuto, PSMBlock, PSMSingleLine, PSMSparse:
	default:
		return nil, fmt.Errorf("ocr: page segmentation mode %d is not supported", int(psm))
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("ocr: waiting for an engine: %w", ctx.Err())
	}
	defer func() { <-p.slots }()
	e, err := p.get()
	if err != nil {
		return nil, err
	}
	lines, err := e.read(ctx, img, psm)
	if err != nil && ctx.Err() == nil {
		// An engine that failed for its own reasons is not trusted with
		// the next image.
		e.close()
		return nil, err
	}
	p.put(e)
	if err != nil {
		return nil, err
	}
	off := img.Rect.Min
	for i := range lines {
		lines[i] = finishLine(lines[i], off)
	}
	return sortLines(compact(lines)), nil
}

func (p *Pool) get() (engine, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(p.idle); n > 0 {
		e := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return e, nil
	}
	p.mu.Unlock()
	e, err := p.b.open()
	if err != nil {
		return nil, fmt.Errorf("ocr: opening an engine: %w", err)
	}
	return e, nil
}

func (p *Pool) put(e engine) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		e.close()
		return
	}
	p.idle = append(p.idle, e)
}

// Close waits for the Reads in progress and unloads the engines. Reads
// after Close return ErrClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	for i := 0; i < cap(p.slots); i++ {
		p.slots <- struct{}{}
	}
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, e := range idle {
		e.close()
	}
	for i := 0; i < cap(p.slots); i++ {
		<-p.slots
	}
	return nil
}

func checkImage(img *image.Gray) error {
	if img == nil {
		return fmt.Errorf("%w: no image", ErrImage)
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	switch {
	case w <= 0 || h <= 0:
		return fmt.Errorf("%w: empty", ErrImage)
	case w > MaxSide || h > MaxSide || w*h > MaxPixels:
		return fmt.Errorf("%w: %dx%d is over the bounds", ErrImage, w, h)
	case img.Stride < w || len(img.Pix) < (h-1)*img.Stride+w:
		return fmt.Errorf("%w: pixel buffer shorter than its bounds", ErrImage)
	}
	return nil
}

// cleanText makes Tesseract's text valid UTF-8 without surrounding space.
func cleanText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.TrimSpace(s)
}

func clampConf(c float64) float64 {
	switch {
	case c != c || c < 0: // NaN or negative
		return 0
	case c > 100:
		return 100
	}
	return c
}

// finishLine drops the empty words, moves the boxes by off (the image's
// origin) and derives the line's text, box and confidence from its words.
func finishLine(l Line, off image.Point) Line {
	words := l.Words[:0]
	for _, w := range l.Words {
		w.Text = cleanText(w.Text)
		if w.Text == "" {
			continue
		}
		w.Box = w.Box.Canon().Add(off)
		w.Conf = clampConf(w.Conf)
		words = append(words, w)
	}
	out := Line{Words: words}
	texts := make([]string, len(words))
	var sum float64
	for i, w := range words {
		texts[i] = w.Text
		sum += w.Conf
		if i == 0 {
			out.Box = w.Box
		} else {
			out.Box = out.Box.Union(w.Box)
		}
	}
	out.Text = strings.Join(texts, " ")
	if len(words) > 0 {
		out.Conf = sum / float64(len(words))
	}
	return out
}

func compact(lines []Line) []Line {
	out := lines[:0]
	for _, l := range lines {
		if len(l.Words) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// sortLines orders lines top to bottom, then left to right: lines whose
// vertical middle falls within the first line of a row are that row.
// (Sorting by top alone would put a text one pixel higher on the right
// before its neighbour on the left.)
func sortLines(lines []Line) []Line {
	mid := func(r image.Rectangle) int { return (r.Min.Y + r.Max.Y) / 2 }
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i].Box, lines[j].Box
		if a.Min.Y != b.Min.Y {
			return a.Min.Y < b.Min.Y
		}
		return a.Min.X < b.Min.X
	})
	for start := 0; start < len(lines); {
		top := lines[start].Box
		end := start + 1
		for end < len(lines) && mid(lines[end].Box) < top.Max.Y {
			end++
		}
		row := lines[start:end]
		sort.SliceStable(row, func(i, j int) bool { return row[i].Box.Min.X < row[j].Box.Min.X })
		start = end
	}
	return lines
}
