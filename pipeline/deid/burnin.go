package deid

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	stdimage "image"
	"io"
	"strings"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/burnin"
	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/pixels"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
)

// Burned-in text found by reading the pixels: every image of a class
// that carries text on screen (ultrasound, captures, angiography, images
// that declare burned-in annotation) is read by OCR; every other image
// (CT and MR slices, radiographs) gets the cheap stroke test first, frame
// by frame, and is read when it fails it. What is found is masked with
// the profile's device rules, and the masked frames are read again
// before the file may be written (a finding holds it back, kind pixels).

// PixelReport is what was done to an image's pixels, for reports: never
// a value, only counts.
type PixelReport struct {
	// Examined: the pixels were looked at for burned-in text (the stroke
	// test, OCR, or both); false with Why when not.
	Examined bool   `json:"examined"`
	Why      string `json:"why,omitempty"`
	Mode     string `json:"mode,omitempty"`
	// Modality is the image's (0008,0060) when it is a plain code, for
	// the run's figures per modality ("" otherwise).
	Modality string `json:"modality,omitempty"`
	// Read: OCR read the image (it is of a class that carries text, or a
	// frame failed the stroke test).
	Read        bool          `json:"read"`
	RuleRects   int           `json:"rule_rects,omitempty"`
	TextRects   int           `json:"text_rects,omitempty"`
	Masked      bool          `json:"masked"`
	Stats       *burnin.Stats `json:"stats,omitempty"`
	DurationMS  float64       `json:"ms,omitempty"`
	FramesTotal int           `json:"frames"`
	// Overlays kept by the profile (Clean Graphics) that were read, and
	// those removed because they showed text to mask.
	OverlaysRead    int `json:"overlays_read,omitempty"`
	OverlaysRemoved int `json:"overlays_removed,omitempty"`
}

// modalityCode is m when it is a code of the Modality's form (up to 16
// capitals, digits and underscores), "" otherwise: a header's value
// becomes a key of the run's report only when it cannot carry text.
func modalityCode(m string) string {
	if len(m) == 0 || len(m) > 16 {
		return ""
	}
	for _, r := range m {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return ""
		}
	}
	return m
}

// textClass reports whether an image is of a class that carries text in
// its pixels, so that OCR reads it whatever the stroke test says.
func (im image) textClass() bool {
	if im.burnedIn == "YES" {
		return true
	}
	switch im.modality {
	case "CT", "MR", "PT", "NM", "MG", "CR", "DX", "IO", "PX", "RTIMAGE", "SEG", "RTDOSE":
		// Derived or secondary slices of these (reconstructions, MPRs,
		// resampled series) are images, not screens: they are screened
		// like the originals, and read when the screen sees text. A
		// secondary capture of them (its SOP class) is a screen.
		return strings.HasPrefix(im.sopClass, "1.2.840.10008.5.1.4.1.1.7")
	}
	if im.risky() != "" {
		return true
	}
	switch im.modality {
	case "XA", "RF", "OT", "DOC", "SM", "XC", "ES", "GM", "OP", "IVUS", "OCT":
		return true
	}
	return false
}

// examineText reads the pixels for burned-in text and returns the
// rectangles to mask (in every frame) besides rules, the profile's
// device rules' own. Frames are decoded one at a time; each is analysed,
// masked (rules and what was found in it) and read again. The final mask,
// the union of every frame's, covers at least what each frame was
// checked with, so what the check passed stays passed.
func (j *Job) examineText(im image, rules []pixels.Rect) ([]pixels.Rect, error) {
	start := time.Now()
	rep := &PixelReport{Mode: string(j.eng.text.Mode()), FramesTotal: im.frames}
	j.res.Pixels = rep
	src, err := codec.FromFile(j.f)
	if src != nil && (src.Image.Rows <= 0 || src.Image.Columns <= 0) {
		// No viewer can show an image without rows or columns: there is
		// no text to read in it, and nothing to mask.
		rep.Why = "pixel data without rows or columns: nothing to display, not examined"
		return nil, nil
	}
	if err != nil {
		return nil, reject("pixels", "pixels to examine for burned-in text but %v: held back", err)
	}
	fr, err := j.eng.codecs.Open(src)
	if errors.Is(err, codec.ErrUnsupported) {
		return nil, reject("pixels", "pixels to examine for burned-in text, but %s cannot be decoded by this build (%s): held back, not passed unread", j.f.Syntax.Name, j.eng.codecs.Build)
	}
	if err != nil {
		return nil, reject("pixels", "pixels to examine for burned-in text but %v: held back", err)
	}
	out := fr.Output()
	var pal *burnin.Palette
	if out.Photometric == "PALETTE COLOR" {
		if pal, err = palette(j.f); err != nil {
			return nil, reject("pixels", "palette colour pixels to examine for burned-in text but %v: held back", err)
		}
	}
	g := pixels.Geometry{Rows: out.Rows, Columns: out.Columns, Frames: out.Frames, SamplesPerPixel: out.SamplesPerPixel,
		BitsAllocated: out.BitsAllocated, PlanarConfiguration: out.PlanarConfiguration}
	if err := g.Check(); err != nil {
		return nil, reject("pixels", "pixels to examine for burned-in text but %v: held back", err)
	}
	// The frame, its masked copy, and the grey images made of them.
	if err := j.charge(2*int64(out.FrameBytes()) + 16*int64(out.Rows)*int64(out.Columns)); err != nil {
		return nil, err
	}
	// Reading takes time per frame: the file's limit grows by two seconds
	// a frame read (at most ten minutes), so that a long cine loop is not
	// held back for its length, and a hostile one still ends.
	ctx, cancel := context.WithDeadline(context.Background(), j.deadline.Add(min(time.Duration(im.frames)*2*time.Second, 10*time.Minute)))
	defer cancel()
	strict := im.textClass()
	// The examination (the file's identifiers, folded for matching) and
	// the masked copy are made for the first frame that must be read:
	// most CT and MR slices pass the screen and never need them.
	var exam *burnin.Image
	sc := j.eng.screenScratch(out.FrameBytes())
	defer func() {
		if j.scratch != sc {
			j.eng.putScratch(sc)
		}
	}()
	screen, frame := &sc.screen, sc.frame // the buffers serve every frame
	var masked []byte
	var found []stdimage.Rectangle
	read := false
	for f := 0; f < out.Frames; f++ {
		if err := fr.Frame(f, frame); err != nil {
			return nil, reject("pixels", "pixels to examine for burned-in text could not be decoded (%v): held back", err)
		}
		if !strict {
			text, err := j.eng.text.ScreenFrame(frame, out, pal, screen)
			if err != nil {
				return nil, reject("pixels", "pixels to examine for burned-in text: %v: held back", err)
			}
			if !text {
				continue // no text-like strokes: nothing to read
			}
		}
		gray, err := burnin.Luminance(frame, out, pal)
		if err != nil {
			return nil, reject("pixels", "pixels to examine for burned-in text: %v: held back", err)
		}
		if !j.eng.text.CanRead() {
			return nil, reject("pixels", "the image may show burned-in text and this build or machine has no OCR (%s): held back, not passed unread", j.eng.ocrWhy)
		}
		read = true
		if exam == nil {
			exam = j.eng.text.Image(j.textIdentifiers(), strict)
			masked = make([]byte, len(frame))
		}
		full := f == 0 || f == out.Frames-1 || f%10 == 0
		rs, err := exam.Analyze(ctx, gray, full)
		if err != nil {
			return nil, j.textRefusal(err)
		}
		found = append(found, rs...)
		// The check: this frame masked by the rules and by what was found
		// in it (and in the frames before it).
		copy(masked, frame)
		g.Apply(masked, pixels.Mask{Zero: rules, Paint: toRects(found)})
		mg, err := burnin.Luminance(masked, out, pal)
		if err != nil {
			return nil, reject("pixels", "masked pixels: %v: held back", err)
		}
		fs, err := exam.Check(ctx, mg, full)
		if err != nil {
			return nil, j.textRefusal(err)
		}
		if len(fs) > 0 {
			reason := fs[0].String()
			if len(fs) > 1 {
				reason += fmt.Sprintf(" and %d more", len(fs)-1)
			}
			return nil, reject("pixels", "burned-in text still legible after masking, frame %d: %s: held back", f+1, reason)
		}
	}
	if off, ok := fr.Verbatim(0); ok && out.Frames == 1 && cap(frame) <= maxScratchFrame {
		// The frame is the file's bytes: the output's unchanged Pixel
		// Data is copied from it, and the job keeps it until Close.
		j.f.Body = &heldReader{r: j.f.Body, off: off, b: frame}
		j.scratch = sc
	}
	rep.Examined, rep.Read = true, read
	rep.RuleRects, rep.TextRects = len(rules), len(found)
	if exam != nil {
		st := exam.Stats
		rep.Stats = &st
	}
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return toRects(found), nil
}

// screening is the scratch of examineText: a decoded frame and the
// screen's buffers.
type screening struct {
	frame  []byte
	screen burnin.FrameScreen
}

// maxScratchFrame is the largest frame whose buffer is kept for the next
// file (a CT or MR slice is half a megabyte): larger ones are rare, and
// held between files they would sit outside the memory budget.
const maxScratchFrame = 4 << 20

// screenScratch is a scratch with a frame buffer of n bytes.
func (e *Engine) screenScratch(n int) *screening {
	sc, _ := e.scratch.Get().(*screening)
	if sc == nil {
		sc = &screening{}
	}
	if cap(sc.frame) < n {
		sc.frame = make([]byte, n)
	}
	sc.frame = sc.frame[:n]
	return sc
}

// putScratch keeps sc for the next file, unless its frame is large.
func (e *Engine) putScratch(sc *screening) {
	if cap(sc.frame) <= maxScratchFrame {
		e.scratch.Put(sc)
	}
}

// textRefusal is what a failed reading means: a deadline is the file's
// limit; anything else (OCR failed) holds the image back.
func (j *Job) textRefusal(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		j.late = true
		return reject("limit", "reading the pixels for burned-in text took longer than the limit")
	}
	if errors.Is(err, burnin.ErrNoOCR) {
		return reject("pixels", "the image may show burned-in text and this build or machine has no OCR (%s): held back, not passed unread", j.eng.ocrWhy)
	}
	return reject("pixels", "reading the pixels for burned-in text failed: held back")
}

func toRects(rs []stdimage.Rectangle) []pixels.Rect {
	out := make([]pixels.Rect, 0, len(rs))
	for _, r := range rs {
		out = append(out, pixels.Rect{X: r.Min.X, Y: r.Min.Y, W: r.Dx(), H: r.Dy()})
	}
	return out
}

// textIdentifiers are the identifying values of the file, as OCR would
// find them in its pixels: the verifier's values, and every top-level
// date and time (the study's date on a banner gives the date shift away).
func (j *Job) textIdentifiers() []burnin.Identifier {
	j.verifier()
	var ids []burnin.Identifier
	for _, v := range j.vset.Values() {
		ids = append(ids, burnin.Identifier{Text: v.Text, Date: v.Kind == verify.KindDate})
	}
	for _, e := range j.f.Elements {
		if !e.Loaded || len(e.Value) == 0 {
			continue
		}
		switch e.VR {
		case "DA", "DT":
			for _, v := range strings.Split(strings.Trim(string(e.Value), " \x00"), `\`) {
				ids = append(ids, burnin.Identifier{Text: v, Date: true})
			}
		case "TM":
			for _, v := range strings.Split(strings.Trim(string(e.Value), " \x00"), `\`) {
				if v = strings.TrimSpace(v); len(v) >= 4 {
					// HHMM as a screen writes it: 14:28 (and HHMMSS).
					ids = append(ids, burnin.Identifier{Text: v[:2] + ":" + v[2:4]})
					if len(v) >= 6 {
						ids = append(ids, burnin.Identifier{Text: v[:2] + ":" + v[2:4] + ":" + v[4:6]})
					}
				}
			}
		}
	}
	return ids
}

// Palette Color Lookup Table tags (PS3.3 C.7.6.3.1.5).
const (
	tagRedDescriptor   = 0x00281101
	tagRedData         = 0x00281201
	tagSegmentedRed    = 0x00281221
	paletteTableLength = 3 // descriptor values
)

// palette reads the Palette Color Lookup Tables of f's image.
func palette(f *dicomraw.File) (*burnin.Palette, error) {
	byTag := map[uint32]*dicomraw.Element{}
	for _, e := range f.Elements {
		byTag[uint32(e.Tag)] = e
	}
	pal := &burnin.Palette{}
	var tables [3][]uint16
	for c := 0; c < 3; c++ {
		d, data := byTag[tagRedDescriptor+uint32(c)], byTag[tagRedData+uint32(c)]
		seg := byTag[tagSegmentedRed+uint32(c)]
		if data == nil {
			data = seg
		}
		if d == nil || data == nil {
			return nil, errors.New("no palette tables")
		}
		desc, err := words(f, d)
		if err != nil || len(desc) != paletteTableLength {
			return nil, errors.New("unreadable palette descriptor")
		}
		n := int(desc[0])
		if n == 0 {
			n = 65536
		}
		vals, err := words(f, data)
		if err != nil {
			return nil, err
		}
		if data == seg {
			if vals, err = expandSegments(vals, n); err != nil {
				return nil, err
			}
		} else if desc[2] == 8 && len(vals)*2 >= n {
			// 8-bit entries packed two to a word.
			b := make([]uint16, 0, n)
			for _, w := range vals {
				b = append(b, w&0xFF, w>>8)
			}
			vals = b
		}
		if len(vals) < n {
			return nil, errors.New("palette table shorter than its descriptor")
		}
		tables[c] = vals[:n]
		pal.First = int(desc[1])
	}
	pal.Red, pal.Green, pal.Bl = tables[0], tables[1], tables[2]
	return pal, nil
}

// words reads a US/SS/OW value of f as 16-bit words in its byte order.
func words(f *dicomraw.File, e *dicomraw.Element) ([]uint16, error) {
	raw := e.Value
	if !e.Loaded {
		n := e.ValueLength()
		if n < 0 || n > 1<<18 {
			return nil, errors.New("palette table too large")
		}
		raw = make([]byte, n)
		if _, err := io.ReadFull(io.NewSectionReader(f.Body, e.ValueOffset, n), raw); err != nil {
			return nil, errors.New("palette table unreadable")
		}
	}
	out := make([]uint16, len(raw)/2)
	for i := range out {
		if e.Enc.BigEndian {
			out[i] = binary.BigEndian.Uint16(raw[2*i:])
		} else {
			out[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
	}
	return out, nil
}

// expandSegments expands a Segmented Palette Color Lookup Table (PS3.3
// C.7.9.2): discrete segments (opcode 0), linear ramps (1) and indirect
// references to earlier segments (2), up to n entries.
func expandSegments(seg []uint16, n int) ([]uint16, error) {
	out := make([]uint16, 0, n)
	bad := errors.New("malformed segmented palette table")
	var run func(pos, count, depth int) error
	run = func(pos, count, depth int) error {
		if depth > 2 {
			return bad
		}
		for k := 0; (count < 0 || k < count) && pos < len(seg); k++ {
			if pos+1 >= len(seg) {
				return bad
			}
			op, length := seg[pos], int(seg[pos+1])
			switch op {
			case 0:
				if pos+2+length > len(seg) || len(out)+length > n {
					return bad
				}
				out = append(out, seg[pos+2:pos+2+length]...)
				pos += 2 + length
			case 1:
				if pos+2 >= len(seg) || len(out) == 0 || len(out)+length > n {
					return bad
				}
				y0, y1 := float64(out[len(out)-1]), float64(seg[pos+2])
				for i := 1; i <= length; i++ {
					out = append(out, uint16(y0+(y1-y0)*float64(i)/float64(length)+0.5))
				}
				pos += 3
			case 2:
				if pos+3 >= len(seg) {
					return bad
				}
				off := int(seg[pos+2]) | int(seg[pos+3])<<16
				if off >= pos {
					return bad
				}
				if err := run(off, length, depth+1); err != nil {
					return err
				}
				pos += 4
			default:
				return bad
			}
		}
		return nil
	}
	if err := run(0, -1, 0); err != nil {
		return nil, err
	}
	if len(out) < n {
		return nil, bad
	}
	return out, nil
}

// PixelAudit is what AuditPixels found in one file's pixels.
type PixelAudit struct {
	Examined bool             // the pixels were decoded and read
	Why      string           // why not, when not
	Findings []burnin.Finding // text still legible: kinds and places
	Overlays int              // overlay groups read
}

// AuditPixels reads the pixels of a de-identified file for the
// identifiers of its original (ids) and for date-, time-, ID- and
// name-shaped text, as the engine's check does: the first and last frame
// and every tenth in full, every frame by the stroke detector's lines.
// It is deid verify's reading of pixels; nothing is changed.
//
// unsure: ids may not be the file's own (no original was paired with it:
// every original's values), and a reading of one counts only with some
// confidence.
func AuditPixels(ctx context.Context, f *dicomraw.File, ids []burnin.Identifier, unsure bool, text *burnin.Cleaner, codecs *codec.Set) (PixelAudit, error) {
	if codecs == nil {
		codecs = codec.Default()
	}
	src, err := codec.FromFile(f)
	if errors.Is(err, codec.ErrNoPixels) {
		return PixelAudit{Why: "no pixel data"}, nil
	}
	if src != nil && (src.Image.Rows <= 0 || src.Image.Columns <= 0) {
		return PixelAudit{Why: "pixel data without rows or columns"}, nil
	}
	if err != nil {
		return PixelAudit{Why: "pixels not decodable: " + err.Error()}, nil
	}
	if !text.CanRead() {
		return PixelAudit{Why: "no OCR"}, nil
	}
	fr, err := codecs.Open(src)
	if err != nil {
		return PixelAudit{Why: "pixels not decodable by this build: " + err.Error()}, nil
	}
	out := fr.Output()
	var pal *burnin.Palette
	if out.Photometric == "PALETTE COLOR" {
		if pal, err = palette(f); err != nil {
			return PixelAudit{Why: "palette colour pixels not readable: " + err.Error()}, nil
		}
	}
	exam := text.Image(ids, true)
	if unsure {
		exam.Unsure()
	}
	frame := make([]byte, out.FrameBytes())
	var a PixelAudit
	for i := 0; i < out.Frames; i++ {
		if err := fr.Frame(i, frame); err != nil {
			return PixelAudit{Why: "pixels not decodable: " + err.Error()}, nil
		}
		g, err := burnin.Luminance(frame, out, pal)
		if err != nil {
			return PixelAudit{Why: err.Error()}, nil
		}
		fs, err := exam.Check(ctx, g, i == 0 || i == out.Frames-1 || i%10 == 0)
		if err != nil {
			return PixelAudit{}, err
		}
		a.Findings = append(a.Findings, fs...)
	}
	if err := auditOverlays(ctx, f, exam, &a); err != nil {
		return PixelAudit{}, err
	}
	a.Examined = true
	return a, nil
}
