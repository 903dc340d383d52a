package deid

import (
	"bytes"
	"context"
	"errors"
	stdimage "image"
	"image/color"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/burnin"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ocr"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// realOCR is Tesseract, as the service opens it; without it the test is
// skipped, unless DEID_REQUIRE_OCR is set (scripts/test sets it).
func realOCR(t *testing.T) *ocr.Pool {
	t.Helper()
	p, err := ocr.NewPool(ocr.Config{Engines: 2})
	if err != nil {
		if os.Getenv("DEID_REQUIRE_OCR") != "" {
			t.Fatalf("DEID_REQUIRE_OCR is set and there is no OCR: %v", err)
		}
		t.Skipf("no OCR here (%v); scripts/test installs Tesseract and requires it", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// screen is a device screen: a dark frame, a textured image in its
// middle, text drawn where devices put it.
type screen struct {
	img   *stdimage.Gray
	boxes map[string]stdimage.Rectangle // text -> the bounds of its ink
}

func newScreen(w, h int) *screen {
	g := stdimage.NewGray(stdimage.Rect(0, 0, w, h))
	// The image area: smooth bands and a speckle, like an ultrasound.
	for y := h / 7; y < h-h/8; y++ {
		for x := w / 8; x < w-w/8; x++ {
			v := 60 + (x*7+y*3)%50 + (x*y)%13
			g.Pix[y*g.Stride+x] = uint8(v)
		}
	}
	return &screen{img: g, boxes: map[string]stdimage.Rectangle{}}
}

func (s *screen) text(t *testing.T, px float64, x, y int, line string) {
	t.Helper()
	data := goregular.TTF
	if b, err := os.ReadFile("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"); err == nil {
		data = b
	}
	f, err := opentype.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		t.Fatal(err)
	}
	defer face.Close()
	d := &font.Drawer{Dst: s.img, Src: stdimage.NewUniform(color.Gray{240}), Face: face, Dot: fixed.P(x, y)}
	b, _ := d.BoundString(line)
	d.DrawString(line)
	s.boxes[line] = stdimage.Rect(b.Min.X.Floor(), b.Min.Y.Floor(), b.Max.X.Ceil(), b.Max.Y.Ceil())
}

// solid draws line in one exact grey level, without anti-aliasing, as
// devices and screen captures draw their type (a glyph's pixel is ink
// where the font covers it by more than a third).
func (s *screen) solid(t *testing.T, px float64, x, y int, line string, level uint8) {
	t.Helper()
	f, err := opentype.Parse(goregular.TTF)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		t.Fatal(err)
	}
	defer face.Close()
	cover := stdimage.NewGray(s.img.Rect)
	d := &font.Drawer{Dst: cover, Src: stdimage.NewUniform(color.Gray{255}), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(line)
	box := stdimage.Rectangle{}
	for i, v := range cover.Pix {
		if v > 96 {
			s.img.Pix[i] = level
			box = box.Union(stdimage.Rect(i%cover.Stride, i/cover.Stride, i%cover.Stride+1, i/cover.Stride+1))
		}
	}
	s.boxes[line] = box
}

// file is the screen as an ultrasound instance of a patient whose
// identifiers the texts show.
func (s *screen) file(t *testing.T) []byte {
	t.Helper()
	return s.fileAs(t, "MONOCHROME2")
}

// fileAs is file with another Photometric Interpretation, and extra
// elements of group 0028 after Pixel Representation (a palette's tables).
func (s *screen) fileAs(t *testing.T, photometric string, extra ...el) []byte {
	t.Helper()
	w, h := s.img.Rect.Dx(), s.img.Rect.Dy()
	u16 := func(v int) string { return string([]byte{byte(v), byte(v >> 8)}) }
	els := []el{
		s8(0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.6.1"), s8(0x00080018, "UI", "1.2.826.0.1.999.5.1.1"),
		s8(0x00080020, "DA", "20240827"), s8(0x00080030, "TM", "140533"), s8(0x00080050, "SH", "A2430099"),
		s8(0x00080060, "CS", "US"), s8(0x00080080, "LO", "WEXFORD GENERAL"),
		s8(0x00100010, "PN", "Castellanos^Wilhelmina"), s8(0x00100020, "LO", "217404304"), s8(0x00100030, "DA", "19430511"),
		s8(0x0020000D, "UI", "1.2.826.0.1.999.5"), s8(0x0020000E, "UI", "1.2.826.0.1.999.5.1"),
		s8(0x00280002, "US", u16(1)), s8(0x00280004, "CS", photometric), s8(0x00280010, "US", u16(h)),
		s8(0x00280011, "US", u16(w)), s8(0x00280100, "US", u16(8)), s8(0x00280101, "US", u16(8)),
		s8(0x00280102, "US", u16(7)), s8(0x00280103, "US", u16(0)),
	}
	els = append(els, extra...)
	els = append(els, s8(0x7FE00010, "OB", string(s.img.Pix)))
	return buildFile(t, false, els)
}

func s8(tag uint32, vr, v string) el { return s(tag, vr, v) }

// planWith plans in with an engine of cfg (failing the test on any
// error) and closes the job when the test ends.
func planWith(t *testing.T, cfg Config, in []byte) (*Engine, *Job) {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return e, j
}

// written writes the job and returns the output's bytes, parsed.
func written(t *testing.T, j *Job) ([]byte, *dicomraw.File) {
	t.Helper()
	var out bytes.Buffer
	if _, err := j.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	f, err := dicomraw.Parse(bytes.NewReader(out.Bytes()), int64(out.Len()), dicomraw.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), f
}

// outputPixels writes the job and returns its native Pixel Data.
func outputPixels(t *testing.T, j *Job) []byte {
	t.Helper()
	out, f := written(t, j)
	for _, e := range f.Elements {
		if e.Tag == dicomraw.TagPixelData {
			return out[e.ValueOffset : e.ValueOffset+e.ValueLength()]
		}
	}
	t.Fatal("no pixel data written")
	return nil
}

// With Tesseract: the patient's name, ID and dates on the banner are
// masked, a device annotation is kept, the image area is untouched, and
// the header says the pixels were cleaned.
func TestBurnedInTextMasked(t *testing.T) {
	pool := realOCR(t)
	sc := newScreen(640, 480)
	sc.text(t, 18, 12, 30, "CASTELLANOS, WILHELMINA")
	sc.text(t, 16, 380, 30, "ID: 217404304")
	sc.text(t, 16, 12, 58, "DOB 05/11/1943")
	sc.text(t, 14, 520, 470, "27-Aug-2024 14:05:33")
	sc.text(t, 18, 590, 240, "5 cm")
	in := sc.file(t)
	for _, prof := range []string{"basic", "research"} {
		t.Run(prof, func(t *testing.T) {
			_, j := planWith(t, Config{Profile: builtinProfile(t, prof), Key: testKey(t, 3), OCR: pool}, in)
			px := j.Result().Pixels
			if px == nil || !px.Examined || !px.Read || !px.Masked {
				t.Fatalf("pixel report %+v: want examined, read and masked", px)
			}
			out := outputPixels(t, j)
			w := sc.img.Stride
			for text, box := range sc.boxes {
				ink := 0
				for y := box.Min.Y; y < box.Max.Y; y++ {
					for x := box.Min.X; x < box.Max.X; x++ {
						if out[y*w+x] > 128 {
							ink++
						}
					}
				}
				if text == "5 cm" {
					if ink == 0 {
						t.Errorf("the annotation %q was masked; it is on the allow-list", text)
					}
					continue
				}
				if ink > 0 {
					t.Errorf("%d pixels of %q's ink left", ink, text)
				}
			}
			// The image area, away from the text, is as it was.
			for y := 120; y < 400; y++ {
				for x := 120; x < 500; x++ {
					if out[y*w+x] != sc.img.Pix[y*w+x] {
						t.Fatalf("image pixel (%d,%d) changed", x, y)
					}
				}
			}
			if !j.pixelsExamined {
				t.Error("Clean Pixel Data not recorded")
			}
		})
	}
}

// Text drawn in one dark grey over a noisy dark region of a light screen
// (a capture's label that runs onto the image) differs from the speckle
// around it by a few grey levels: no stroke detector separates it, and
// its level is no spike of the frame's histogram, the speckle's slope
// buries it. It is as legible as the rest once windowed, and it is
// masked: its pixels are the only ones of their level that form strokes.
func TestBurnedInFaintTextOverSpeckle(t *testing.T) {
	pool := realOCR(t)
	const w, h = 640, 480
	sc := newScreen(w, h)
	seed := uint32(7)
	noise := func() int { // -7..7, sd 3
		n := 0
		for range 2 {
			seed = seed*1664525 + 1013904223
			n += int(seed >> 29) // 0..7
		}
		return n - 7
	}
	for i := range sc.img.Pix {
		sc.img.Pix[i] = 209 // a light screen
	}
	for y := 90; y < 420; y++ {
		for x := 60; x < 580; x++ {
			sc.img.Pix[y*w+x] = uint8(13 + noise()) // a dark, noisy image
		}
	}
	sc.solid(t, 16, 70, 40, "CASTELLANOS, WILHELMINA", 20)
	sc.solid(t, 13, 80, 300, "ACC A2430099", 20)
	in := sc.file(t)
	_, j := planWith(t, Config{Profile: builtinProfile(t, "research"), Key: testKey(t, 3), OCR: pool}, in)
	if px := j.Result().Pixels; px == nil || !px.Read || !px.Masked {
		t.Fatalf("pixel report %+v: want read and masked", px)
	}
	out := outputPixels(t, j)
	for text, box := range sc.boxes {
		// burnincheck's measure: the ink's median against the median of
		// the pixels around it, in the output and in the input.
		var inkIn, inkOut, ringIn, ringOut []int
		ring := box.Inset(-2)
		for y := ring.Min.Y; y < ring.Max.Y; y++ {
			for x := ring.Min.X; x < ring.Max.X; x++ {
				i := y*w + x
				if stdimage.Pt(x, y).In(box) && sc.img.Pix[i] == 20 {
					inkIn, inkOut = append(inkIn, int(sc.img.Pix[i])), append(inkOut, int(out[i]))
				} else if !stdimage.Pt(x, y).In(box) || sc.img.Pix[i] != 20 {
					ringIn, ringOut = append(ringIn, int(sc.img.Pix[i])), append(ringOut, int(out[i]))
				}
			}
		}
		med := func(v []int) int { slices.Sort(v); return v[len(v)/2] }
		cIn, cOut := abs(med(inkIn)-med(ringIn)), abs(med(inkOut)-med(ringOut))
		if cIn == 0 {
			t.Fatalf("%q drawn without contrast", text)
		}
		if 4*cOut >= cIn {
			t.Errorf("%q still legible: contrast %d of %d", text, cOut, cIn)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// deid verify reads palette colour images through their palette, as the
// engine does: the input's banner is found, the output's is not.
func TestAuditPixelsPalette(t *testing.T) {
	pool := realOCR(t)
	sc := newScreen(640, 480)
	sc.text(t, 18, 12, 30, "CASTELLANOS, WILHELMINA")
	sc.text(t, 16, 380, 30, "ID: 217404304")
	u16 := func(vs ...int) string {
		b := make([]byte, 0, 2*len(vs))
		for _, v := range vs {
			b = append(b, byte(v), byte(v>>8))
		}
		return string(b)
	}
	// An inverted grey palette: the banner's light text on black reads
	// as dark text on white only through it.
	table := make([]int, 256)
	for i := range table {
		table[i] = (255 - i) * 257
	}
	in := sc.fileAs(t, "PALETTE COLOR",
		s8(0x00281101, "US", u16(256, 0, 16)), s8(0x00281102, "US", u16(256, 0, 16)), s8(0x00281103, "US", u16(256, 0, 16)),
		s8(0x00281201, "OW", u16(table...)), s8(0x00281202, "OW", u16(table...)), s8(0x00281203, "OW", u16(table...)))
	e, j := planWith(t, Config{Profile: builtinProfile(t, "research"), Key: testKey(t, 3), OCR: pool}, in)
	if px := j.Result().Pixels; px == nil || !px.Masked {
		t.Fatalf("pixel report %+v: want masked", px)
	}
	out, _ := written(t, j)
	for _, c := range []struct {
		name     string
		data     []byte
		findings bool
	}{{"input", in, true}, {"output", out, false}} {
		a := audit(t, e, j, c.data)
		if !a.Examined || (len(a.Findings) > 0) != c.findings {
			t.Errorf("%s: audit %+v, want examined, findings %v", c.name, a, c.findings)
		}
	}
}

// audit is deid verify's reading of data's pixels, for the identifiers of
// j's file, with e's text cleaner.
func audit(t *testing.T, e *Engine, j *Job, data []byte) PixelAudit {
	t.Helper()
	f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	a, err := AuditPixels(context.Background(), f, j.textIdentifiers(), false, e.text, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// scripted reads nothing in single lines, and a page's text as given: a
// first reading that misses what the check then finds.
type scripted struct{ page string }

func (r scripted) Read(ctx context.Context, img *stdimage.Gray, psm ocr.PSM) ([]ocr.Line, error) {
	if psm != ocr.PSMSparse || r.page == "" {
		return nil, nil
	}
	return []ocr.Line{{Text: r.page, Box: stdimage.Rect(10, 10, 200, 30), Conf: 90}}, nil
}

// Fail closed: text the check still reads after masking holds the image
// back (kind pixels, a reason without the text); without OCR, an image
// that must be read is held back too.
func TestBurnedInTextHeldBack(t *testing.T) {
	sc := newScreen(320, 240)
	// No text drawn: what the check "reads" is the scripted reader's.
	in := sc.file(t)
	cases := []struct {
		name   string
		reader burnin.Reader
		reason string
	}{
		{"identifier still legible", scripted{page: "Castellanos W"}, "still legible"},
		{"date-shaped text still legible", scripted{page: "DOB 12/01/1950"}, "still legible"},
		{"nothing legible", scripted{}, ""},
		{"no OCR", nil, "no OCR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Profile: builtinProfile(t, "research"), Key: testKey(t, 3), OCRWhy: "a test without OCR"}
			if c.reader != nil {
				cfg.OCR = c.reader
			}
			e, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
			if c.reason == "" {
				if err != nil {
					t.Fatalf("plan: %v", err)
				}
				j.Close()
				return
			}
			var rj *Rejection
			if !errors.As(err, &rj) || rj.Kind != "pixels" || !strings.Contains(rj.Reason, c.reason) {
				t.Fatalf("want held back (%q), got %v", c.reason, err)
			}
			for _, v := range []string{"Castellanos", "1950", "217404304"} {
				if strings.Contains(rj.Reason, v) {
					t.Errorf("the reason carries %q: %s", v, rj.Reason)
				}
			}
		})
	}
}

// Opting out is explicit and visible: nothing is read, the method says
// so, and no Clean Pixel Data code is written.
func TestBurnedInTextOptOut(t *testing.T) {
	sc := newScreen(320, 240)
	in := sc.file(t)
	prof := builtinProfile(t, "research")
	prof.Text.Mode = "off"
	prof.Pixels = &rulesPixelPolicyAcceptingUnmatched
	e, j := planWith(t, Config{Profile: prof, Key: testKey(t, 3)}, in)
	if px := j.Result().Pixels; px == nil || px.Examined || !strings.Contains(px.Why, "opted out") {
		t.Errorf("pixel report %+v", px)
	}
	if !strings.Contains(e.method, "pixels-not-examined") {
		t.Errorf("De-identification Method %q does not say pixels were not examined", e.method)
	}
	if j.pixelsExamined || j.pixelsMasked {
		t.Error("an opted-out image says Clean Pixel Data")
	}
}

var rulesPixelPolicyAcceptingUnmatched = rules.PixelPolicy{ScreenRisky: true, AcceptUnmatched: true}

// overlayFile is a plain MR image (no text in its pixels) with overlays:
// group 6000 shows the patient's name and ID, group 6002 a box outline
// (an ROI), no text.
func overlayFile(t *testing.T) (in []byte, ovText, ovBox string) {
	t.Helper()
	const w, h = 320, 240
	sc := newScreen(w, h)
	sc.img.Pix = make([]uint8, w*h) // an empty screen to draw the text on
	sc.text(t, 18, 10, 30, "CASTELLANOS, WILHELMINA")
	sc.text(t, 16, 10, 60, "ID 217404304")
	bits := func(on func(x, y int) bool) string {
		b := make([]byte, w*h/8)
		for p := 0; p < w*h; p++ {
			if on(p%w, p/w) {
				b[p>>3] |= 1 << (p & 7)
			}
		}
		return string(b)
	}
	ovText = bits(func(x, y int) bool { return sc.img.Pix[y*w+x] > 128 })
	ovBox = bits(func(x, y int) bool {
		return (x == 100 || x == 200) && y >= 80 && y <= 160 || (y == 80 || y == 160) && x >= 100 && x <= 200
	})
	u16 := func(v int) string { return string([]byte{byte(v), byte(v >> 8)}) }
	overlay := func(g uint32, data string) []el {
		return []el{s8(g<<16|0x0010, "US", u16(h)), s8(g<<16|0x0011, "US", u16(w)), s8(g<<16|0x0040, "CS", "G"),
			s8(g<<16|0x0050, "SS", u16(1)+u16(1)), s8(g<<16|0x0100, "US", u16(1)), s8(g<<16|0x0102, "US", u16(0)),
			s8(g<<16|0x3000, "OW", data)}
	}
	flat := strings.Repeat("\x28", w*h)
	els := []el{
		s8(0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.4"), s8(0x00080018, "UI", "1.2.826.0.1.999.6.1.1"),
		s8(0x00080020, "DA", "20240827"), s8(0x00080060, "CS", "MR"),
		s8(0x00100010, "PN", "Castellanos^Wilhelmina"), s8(0x00100020, "LO", "217404304"),
		s8(0x0020000D, "UI", "1.2.826.0.1.999.6"), s8(0x0020000E, "UI", "1.2.826.0.1.999.6.1"),
		s8(0x00280002, "US", u16(1)), s8(0x00280004, "CS", "MONOCHROME2"), s8(0x00280010, "US", u16(h)),
		s8(0x00280011, "US", u16(w)), s8(0x00280100, "US", u16(8)), s8(0x00280101, "US", u16(8)),
		s8(0x00280102, "US", u16(7)), s8(0x00280103, "US", u16(0)),
	}
	els = append(els, overlay(0x6000, ovText)...)
	els = append(els, overlay(0x6002, ovBox)...)
	els = append(els, s8(0x7FE00010, "OB", flat))
	return buildFile(t, false, els), ovText, ovBox
}

// Overlays kept by Clean Graphics are read: the one showing the name and
// ID goes whole, the ROI outline is kept byte for byte; without OCR the
// image is held back; without Clean Graphics both go, unread, as the
// Basic Profile says.
func TestBurnedInTextOverlays(t *testing.T) {
	in, _, ovBox := overlayFile(t)
	groups := func(t *testing.T, j *Job) map[uint16][]byte {
		t.Helper()
		out, f := written(t, j)
		got := map[uint16][]byte{}
		for _, e := range f.Elements {
			if g := e.Tag.Group(); g >= 0x6000 && g <= 0x60FF {
				if e.Tag.Element() == 0x3000 {
					got[g] = out[e.ValueOffset : e.ValueOffset+e.ValueLength()]
				} else if _, ok := got[g]; !ok {
					got[g] = nil
				}
			}
		}
		return got
	}
	t.Run("clean graphics", func(t *testing.T) {
		prof := builtinProfile(t, "research")
		prof.Options[ps315.CleanGraphics] = true
		e, j := planWith(t, Config{Profile: prof, Key: testKey(t, 3), OCR: realOCR(t)}, in)
		got := groups(t, j)
		if _, ok := got[0x6000]; ok {
			t.Error("the overlay showing the name and ID was kept")
		}
		if !bytes.Equal(got[0x6002], []byte(ovBox)) {
			t.Error("the overlay without text was not kept byte for byte")
		}
		if px := j.Result().Pixels; px == nil || px.OverlaysRead != 2 || px.OverlaysRemoved != 1 {
			t.Errorf("pixel report %+v: want 2 overlays read, 1 removed", px)
		}
		// deid verify's reading: the input's overlay shows the name, the
		// output's none.
		out, _ := written(t, j)
		for _, c := range []struct {
			name     string
			data     []byte
			findings bool
		}{{"input", in, true}, {"output", out, false}} {
			a := audit(t, e, j, c.data)
			overlayFinding := false
			for _, fd := range a.Findings {
				overlayFinding = overlayFinding || strings.HasPrefix(fd.Kind, "overlay")
			}
			if !a.Examined || overlayFinding != c.findings {
				t.Errorf("%s: audit %+v, want overlay findings %v", c.name, a, c.findings)
			}
		}
	})
	t.Run("clean graphics without OCR", func(t *testing.T) {
		prof := builtinProfile(t, "research")
		prof.Options[ps315.CleanGraphics] = true
		e, err := New(Config{Profile: prof, Key: testKey(t, 3), OCRWhy: "a test without OCR"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Plan(bytes.NewReader(in), int64(len(in)))
		var rj *Rejection
		if !errors.As(err, &rj) || rj.Kind != "pixels" || !strings.Contains(rj.Reason, "overlay") {
			t.Fatalf("want held back for its overlays, got %v", err)
		}
	})
	t.Run("basic", func(t *testing.T) {
		_, j := planWith(t, Config{Profile: builtinProfile(t, "basic"), Key: testKey(t, 3), OCRWhy: "a test without OCR"}, in)
		if got := groups(t, j); len(got) != 0 {
			t.Errorf("overlay groups %v kept by basic", got)
		}
	})
}
