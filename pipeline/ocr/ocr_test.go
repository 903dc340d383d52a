package ocr

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math/rand"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// The tests run every implementation this build has: the C API (tag
// tesseract) and the command line. scripts/test sets DEID_REQUIRE_OCR=1:
// there a missing Tesseract fails; elsewhere it skips.

type impl struct {
	name string
	pool *Pool
}

func requireOCR() bool { return os.Getenv("DEID_REQUIRE_OCR") == "1" }

func unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if !errors.Is(err, ErrUnavailable) {
		tb.Fatalf("%s: %v, not ErrUnavailable", what, err)
	}
	if requireOCR() {
		tb.Fatalf("DEID_REQUIRE_OCR=1 and %s: %v", what, err)
	}
	tb.Skipf("no OCR (%s: %v); install tesseract-ocr tesseract-ocr-eng, or set DEID_REQUIRE_OCR=1 to fail", what, err)
}

// impls opens a pool of each implementation; they close with the test.
func impls(tb testing.TB, engines int) []impl {
	tb.Helper()
	var out []impl
	if CAPI {
		p, err := NewPool(Config{Engines: engines})
		if err != nil {
			unavailable(tb, "NewPool (C API)", err)
		}
		tb.Cleanup(func() { p.Close() })
		out = append(out, impl{"capi", p})
	}
	p, err := newCLIPool(Config{Engines: engines})
	if err != nil {
		unavailable(tb, "the tesseract command", err)
	}
	tb.Cleanup(func() { p.Close() })
	return append(out, impl{"cli", p})
}

// testFont is DejaVu Sans when the machine has it, else Go Regular (in
// golang.org/x/image): both real outline fonts.
func testFont(tb testing.TB) *opentype.Font {
	tb.Helper()
	data := goregular.TTF
	if b, err := os.ReadFile("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"); err == nil {
		data = b
	}
	f, err := opentype.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// drawnWord is a word drawn into a test image and its ink's bounds.
type drawnWord struct {
	text string
	box  image.Rectangle
}

// page draws text lines into a w x h image: ink on paper.
type page struct {
	img   *image.Gray
	words []drawnWord
}

func newPage(w, h int, paper uint8) *page {
	img := image.NewGray(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.Gray{paper}), image.Point{}, draw.Src)
	return &page{img: img}
}

// text draws line (words separated by spaces) with its baseline's left at
// (x, y) in px-pixel type.
func (p *page) text(tb testing.TB, f *opentype.Font, px float64, ink uint8, x, y int, line string) {
	tb.Helper()
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		tb.Fatal(err)
	}
	defer face.Close()
	d := &font.Drawer{Dst: p.img, Src: image.NewUniform(color.Gray{ink}), Face: face, Dot: fixed.P(x, y)}
	for i, w := range strings.Fields(line) {
		if i > 0 {
			d.DrawString(" ")
		}
		b, _ := d.BoundString(w)
		d.DrawString(w)
		p.words = append(p.words, drawnWord{w, image.Rect(b.Min.X.Floor(), b.Min.Y.Floor(), b.Max.X.Ceil(), b.Max.Y.Ceil())})
	}
}

// checkWords asserts that every drawn word was read, with its text, in a
// box that overlaps the drawn ink, and that no word is outside img.
func checkWords(t *testing.T, lines []Line, want []drawnWord, bounds image.Rectangle) {
	t.Helper()
	var got []Word
	for _, l := range lines {
		got = append(got, l.Words...)
		if l.Text == "" || len(l.Words) == 0 {
			t.Errorf("empty line %+v", l)
		}
	}
	for _, w := range got {
		if !w.Box.In(bounds) || w.Box.Empty() {
			t.Errorf("word %q box %v is not inside the image %v", w.Text, w.Box, bounds)
		}
		if w.Conf < 0 || w.Conf > 100 {
			t.Errorf("word %q conf %v", w.Text, w.Conf)
		}
	}
	for _, d := range want {
		found := false
		for _, w := range got {
			if sameWord(w.Text, d.text) && w.Box.Overlaps(d.box) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("word %q at %v not read; got %s", d.text, d.box, describeLines(lines))
		}
	}
}

// sameWord compares a read word with the drawn one, but for punctuation
// at its ends: Tesseract may read a speck of antialiasing at a word's end
// as a full stop ("HOSPITAL." for HOSPITAL), which a caller matching
// identifiers strips anyway.
func sameWord(read, drawn string) bool {
	return strings.Trim(read, ".,:;'`") == drawn
}

func describeLines(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "\n  %q %v %.0f:", l.Text, l.Box, l.Conf)
		for _, w := range l.Words {
			fmt.Fprintf(&b, " %q%v", w.Text, w.Box)
		}
	}
	return b.String()
}

func TestReadRendered(t *testing.T) {
	f := testFont(t)
	pools := impls(t, 2)
	type drawn struct {
		px   float64
		x, y int
		text string
	}
	cases := []struct {
		name  string
		w, h  int
		psm   PSM
		lines []drawn
	}{
		{"line small", 240, 30, PSMSingleLine, []drawn{{14, 6, 21, "SMITH JOHN 1957"}}},
		{"line medium", 420, 48, PSMSingleLine, []drawn{{24, 10, 34, "Patient ID 4815162342"}}},
		{"line large", 700, 80, PSMSingleLine, []drawn{{48, 10, 60, "HOSPITAL"}}},
		{"block", 500, 120, PSMBlock, []drawn{{20, 10, 30, "Name DOE JANE"}, {20, 10, 62, "Born 1970 MRN 99812"}, {20, 10, 94, "Accession 55501"}}},
		{"sparse corners", 800, 600, PSMSparse, []drawn{{18, 10, 24, "GENERAL HOSPITAL"}, {18, 560, 24, "Study 20240115"}, {18, 10, 585, "Operator KOWALSKI"}, {18, 600, 585, "Series 3"}}},
		{"auto", 640, 200, PSMAuto, []drawn{{28, 20, 60, "Radiology Report"}, {28, 20, 140, "Doctor Watson"}}},
	}
	polarities := []struct {
		name       string
		paper, ink uint8
	}{{"dark on light", 250, 10}, {"light on dark", 5, 240}}
	for _, c := range cases {
		for _, pol := range polarities {
			pg := newPage(c.w, c.h, pol.paper)
			for _, l := range c.lines {
				pg.text(t, f, l.px, pol.ink, l.x, l.y, l.text)
			}
			for _, im := range pools {
				t.Run(im.name+"/"+c.name+"/"+pol.name, func(t *testing.T) {
					lines, err := im.pool.Read(context.Background(), pg.img, c.psm)
					if err != nil {
						t.Fatal(err)
					}
					checkWords(t, lines, pg.words, pg.img.Bounds())
					checkOrder(t, lines)
				})
			}
		}
	}
}

// checkOrder asserts the lines' order: no line starts below the middle
// of a later one, and in a row left precedes right.
func checkOrder(t *testing.T, lines []Line) {
	t.Helper()
	for i := 1; i < len(lines); i++ {
		a, b := lines[i-1].Box, lines[i].Box
		bMid := (b.Min.Y + b.Max.Y) / 2
		sameRow := bMid >= a.Min.Y && bMid < a.Max.Y
		if (sameRow && b.Min.X < a.Min.X) || (!sameRow && b.Min.Y < a.Min.Y) {
			t.Errorf("line %q %v before %q %v", lines[i-1].Text, a, lines[i].Text, b)
		}
	}
}

// TestLineShape checks a line's derived fields against its words.
func TestLineShape(t *testing.T) {
	f := testFont(t)
	pg := newPage(400, 50, 255)
	pg.text(t, f, 24, 0, 8, 34, "Alpha Beta Gamma")
	for _, im := range impls(t, 1) {
		t.Run(im.name, func(t *testing.T) {
			lines, err := im.pool.Read(context.Background(), pg.img, PSMSingleLine)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 1 {
				t.Fatalf("%d lines: %s", len(lines), describeLines(lines))
			}
			l := lines[0]
			var texts []string
			var box image.Rectangle
			var sum float64
			for i, w := range l.Words {
				texts = append(texts, w.Text)
				sum += w.Conf
				if i == 0 {
					box = w.Box
				} else {
					box = box.Union(w.Box)
				}
				if i > 0 && w.Box.Min.X < l.Words[i-1].Box.Max.X {
					t.Errorf("word %q does not follow %q", w.Text, l.Words[i-1].Text)
				}
			}
			if l.Text != strings.Join(texts, " ") || l.Text != "Alpha Beta Gamma" {
				t.Errorf("line text %q, words %q", l.Text, texts)
			}
			if l.Box != box {
				t.Errorf("line box %v, words' union %v", l.Box, box)
			}
			if mean := sum / float64(len(l.Words)); l.Conf != mean || l.Conf < 50 {
				t.Errorf("line conf %v, words' mean %v", l.Conf, mean)
			}
		})
	}
}

// TestSubImage: the boxes are in the coordinates of the image given,
// whose origin need not be (0, 0).
func TestSubImage(t *testing.T) {
	f := testFont(t)
	pg := newPage(600, 200, 255)
	pg.text(t, f, 24, 0, 300, 150, "Offset 777")
	sub := pg.img.SubImage(image.Rect(250, 100, 600, 200)).(*image.Gray)
	for _, im := range impls(t, 1) {
		t.Run(im.name, func(t *testing.T) {
			lines, err := im.pool.Read(context.Background(), sub, PSMSingleLine)
			if err != nil {
				t.Fatal(err)
			}
			checkWords(t, lines, pg.words, sub.Bounds())
		})
	}
}

func TestRefused(t *testing.T) {
	for _, im := range impls(t, 1) {
		for _, c := range []struct {
			name string
			img  *image.Gray
			psm  PSM
		}{
			{"nil", nil, PSMSparse},
			{"empty", image.NewGray(image.Rect(0, 0, 0, 0)), PSMSparse},
			{"no rows", image.NewGray(image.Rect(0, 0, 10, 0)), PSMSparse},
			{"too large", &image.Gray{Rect: image.Rect(0, 0, 9000, 9000), Stride: 9000}, PSMSparse},
			{"too wide", &image.Gray{Rect: image.Rect(0, 0, 40000, 2), Stride: 40000}, PSMSparse},
			{"short buffer", &image.Gray{Rect: image.Rect(0, 0, 100, 100), Stride: 100, Pix: make([]byte, 100*99)}, PSMSparse},
			{"bad mode", image.NewGray(image.Rect(0, 0, 10, 10)), PSM(99)},
		} {
			t.Run(im.name+"/"+c.name, func(t *testing.T) {
				lines, err := im.pool.Read(context.Background(), c.img, c.psm)
				if err == nil {
					t.Fatalf("read: %v", lines)
				}
			})
		}
	}
}

// TestRobust: noise, a pixel, a very wide strip: no crash, no error, no
// word outside the image, within a bound of time (the context's).
func TestRobust(t *testing.T) {
	f := testFont(t)
	rng := rand.New(rand.NewSource(1))
	noise := func(w, h int) *image.Gray {
		img := image.NewGray(image.Rect(0, 0, w, h))
		rng.Read(img.Pix)
		return img
	}
	wide := newPage(16000, 40, 255)
	wide.text(t, f, 20, 0, 15000, 28, "Far Right")
	cases := []struct {
		name string
		img  *image.Gray
	}{
		{"noise 300x200", noise(300, 200)},
		{"noise 1x1", noise(1, 1)},
		{"white 1x1", newPage(1, 1, 255).img},
		{"black 1x1", newPage(1, 1, 0).img},
		{"white 2000x3", newPage(2000, 3, 255).img},
		{"noise 16000x24", noise(16000, 24)},
		{"wide text", wide.img},
		{"noise 3x4000", noise(3, 4000)},
	}
	for _, im := range impls(t, 1) {
		for _, c := range cases {
			for _, psm := range []PSM{PSMSparse, PSMSingleLine, PSMAuto} {
				t.Run(fmt.Sprintf("%s/%s/psm%d", im.name, c.name, psm), func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					lines, err := im.pool.Read(ctx, c.img, psm)
					if err != nil {
						t.Fatal(err)
					}
					var want []drawnWord
					if c.img == wide.img {
						want = wide.words
					}
					if psm == PSMSparse {
						checkWords(t, lines, want, c.img.Bounds())
					} else {
						checkWords(t, lines, nil, c.img.Bounds())
					}
				})
			}
		}
	}
}

// TestCancel: a cancelled Read returns the context's error, and the
// engine still reads afterwards.
func TestCancel(t *testing.T) {
	f := testFont(t)
	rng := rand.New(rand.NewSource(2))
	big := image.NewGray(image.Rect(0, 0, 2000, 2000))
	rng.Read(big.Pix)
	pg := newPage(300, 40, 255)
	pg.text(t, f, 20, 0, 8, 28, "After Cancel")
	for _, im := range impls(t, 1) {
		t.Run(im.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := im.pool.Read(ctx, pg.img, PSMSingleLine); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled before: %v", err)
			}
			ctx, cancel = context.WithCancel(context.Background())
			timer := time.AfterFunc(100*time.Millisecond, cancel)
			_, err := im.pool.Read(ctx, big, PSMSparse)
			timer.Stop()
			cancel()
			t.Logf("read cancelled after 100 ms: %v", err)
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled during: %v", err)
			}
			lines, err := im.pool.Read(context.Background(), pg.img, PSMSingleLine)
			if err != nil {
				t.Fatal(err)
			}
			checkWords(t, lines, pg.words, pg.img.Bounds())
		})
	}
}

// TestConcurrent: more readers than engines, one image each of its own
// text: every reader gets its own words.
func TestConcurrent(t *testing.T) {
	f := testFont(t)
	for _, im := range impls(t, 2) {
		t.Run(im.name, func(t *testing.T) {
			var wg sync.WaitGroup
			for i := range 6 {
				pg := newPage(300, 40, 255)
				pg.text(t, f, 20, 0, 8, 28, fmt.Sprintf("Reader %d", 1000+i*1111))
				wg.Add(1)
				go func() {
					defer wg.Done()
					lines, err := im.pool.Read(context.Background(), pg.img, PSMSingleLine)
					if err != nil {
						t.Error(err)
						return
					}
					checkWords(t, lines, pg.words, pg.img.Bounds())
				}()
			}
			wg.Wait()
		})
	}
}

func TestClose(t *testing.T) {
	for _, im := range impls(t, 1) {
		t.Run(im.name, func(t *testing.T) {
			if err := im.pool.Close(); err != nil {
				t.Fatal(err)
			}
			_, err := im.pool.Read(context.Background(), newPage(10, 10, 255).img, PSMSparse)
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("read after close: %v", err)
			}
			if err := im.pool.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	for _, im := range impls(t, 1) {
		d := im.pool.Describe()
		want := map[string]string{"capi": "(C API)", "cli": "(command line /"}[im.name]
		if !strings.HasPrefix(d, "tesseract 5.") || !strings.Contains(d, want) {
			t.Errorf("%s: Describe %q", im.name, d)
		}
	}
}

// TestUnavailable: without a tesseract command the command-line pool is
// ErrUnavailable, and so is a language that is not installed.
func TestUnavailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := newCLIPool(Config{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no tesseract on PATH: %v", err)
	}
}

// TestConfig: a language or data directory that does not hold the
// language is ErrUnavailable in both implementations; the installed
// directory, given explicitly, reads.
func TestConfig(t *testing.T) {
	impls(t, 1) // skips without OCR
	const installed = "/usr/share/tesseract-ocr/5/tessdata"
	f := testFont(t)
	pg := newPage(300, 40, 255)
	pg.text(t, f, 20, 0, 8, 28, "Config 42")
	opens := []struct {
		name string
		open func(Config) (*Pool, error)
	}{{"cli", newCLIPool}}
	if CAPI {
		opens = append(opens, struct {
			name string
			open func(Config) (*Pool, error)
		}{"capi", NewPool})
	}
	for _, o := range opens {
		for _, c := range []struct {
			name  string
			cfg   Config
			works bool
		}{
			{"unknown language", Config{Lang: "xx-none"}, false},
			{"empty data directory", Config{DataDir: t.TempDir()}, false},
			{"missing data directory", Config{DataDir: "/nonexistent/tessdata"}, false},
			{"installed data directory", Config{DataDir: installed, Lang: "eng"}, true},
		} {
			t.Run(o.name+"/"+c.name, func(t *testing.T) {
				if c.works {
					if _, err := os.Stat(installed); err != nil {
						t.Skipf("tessdata is not at %s (another distribution)", installed)
					}
				}
				p, err := o.open(c.cfg)
				if !c.works {
					if !errors.Is(err, ErrUnavailable) {
						t.Fatalf("%v, not ErrUnavailable", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				lines, err := p.Read(context.Background(), pg.img, PSMSingleLine)
				if err != nil {
					t.Fatal(err)
				}
				checkWords(t, lines, pg.words, pg.img.Bounds())
			})
		}
	}
}

func TestParseTSV(t *testing.T) {
	const head = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
	cases := []struct {
		name  string
		in    string
		lines int
		words []string
		err   bool
	}{
		{"structure only", head + "1\t1\t0\t0\t0\t0\t0\t0\t100\t50\t-1\t\n", 0, nil, false},
		{"two lines", head +
			"4\t1\t1\t1\t1\t0\t5\t5\t90\t20\t-1\t\n" +
			"5\t1\t1\t1\t1\t1\t5\t5\t40\t20\t96.5\tJOHN\n" +
			"5\t1\t1\t1\t1\t2\t50\t5\t45\t20\t91\tDOE\n" +
			"4\t1\t2\t1\t1\t0\t5\t40\t90\t20\t-1\t\n" +
			"5\t1\t2\t1\t1\t1\t5\t40\t40\t20\t88\t1970\n", 2, []string{"JOHN", "DOE", "1970"}, false},
		{"empty word", head + "4\t1\t1\t1\t1\t0\t5\t5\t90\t20\t-1\t\n5\t1\t1\t1\t1\t1\t5\t5\t40\t20\t95\t\n", 1, []string{""}, false},
		{"word without line", head + "5\t1\t1\t1\t1\t1\t5\t5\t40\t20\t96\tX\n", 0, nil, true},
		{"short row", head + "5\t1\t1\n", 0, nil, true},
		{"not a number", head + "4\t1\tx\t1\t1\t0\t5\t5\t90\t20\t-1\t\n", 0, nil, true},
		{"bad conf", head + "4\t1\t1\t1\t1\t0\t5\t5\t90\t20\t-1\t\n5\t1\t1\t1\t1\t1\t5\t5\t40\t20\tabc\tX\n", 0, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, err := parseTSV([]byte(c.in))
			if (err != nil) != c.err {
				t.Fatalf("err %v", err)
			}
			if err != nil {
				return
			}
			if len(lines) != c.lines {
				t.Fatalf("%d lines", len(lines))
			}
			var words []string
			for _, l := range lines {
				for _, w := range l.Words {
					words = append(words, w.Text)
				}
			}
			if strings.Join(words, "|") != strings.Join(c.words, "|") {
				t.Errorf("words %q", words)
			}
			if c.lines == 2 && (lines[0].Words[1].Box != image.Rect(50, 5, 95, 25) || lines[0].Words[0].Conf != 96.5) {
				t.Errorf("word %+v", lines[0].Words[1])
			}
		})
	}
}

func TestSortLines(t *testing.T) {
	mk := func(text string, x0, y0, x1, y1 int) Line {
		return Line{Text: text, Box: image.Rect(x0, y0, x1, y1), Words: []Word{{Text: text}}}
	}
	cases := []struct {
		name string
		in   []Line
		want string
	}{
		{"rows", []Line{mk("c", 0, 100, 50, 120), mk("b", 300, 9, 350, 30), mk("a", 0, 10, 50, 30)}, "a b c"},
		{"one pixel higher on the right", []Line{mk("right", 300, 9, 350, 29), mk("left", 0, 10, 50, 30)}, "left right"},
		{"stacked", []Line{mk("under", 0, 31, 50, 50), mk("over", 10, 10, 50, 30)}, "over under"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, l := range sortLines(c.in) {
				got = append(got, l.Text)
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("order %q, want %q", got, c.want)
			}
		})
	}
}

// BenchmarkRead times one Read of a 1024x768 page (sparse text, as in a
// DICOM overlay) and of a 300x40 line, for each implementation in this
// build. cpu-ms/read counts the CPU time of the process and of the
// tesseract commands, which a busy machine does not inflate as it does
// the wall time; cpu/wall is about 1 when a Read keeps one core busy.
func BenchmarkRead(b *testing.B) {
	f := testFont(b)
	pg := newPage(1024, 768, 250)
	pg.text(b, f, 18, 10, 10, 24, "GENERAL HOSPITAL RADIOLOGY")
	pg.text(b, f, 18, 10, 760, 24, "20240115 103012")
	pg.text(b, f, 18, 10, 10, 750, "DOE JANE 1970 F")
	pg.text(b, f, 18, 10, 800, 750, "ID 4815162342")
	line := newPage(300, 40, 250)
	line.text(b, f, 20, 10, 6, 28, "SMITH JOHN 19570312")
	for _, im := range impls(b, 1) {
		for _, c := range []struct {
			name string
			img  *image.Gray
			psm  PSM
		}{{"page1024x768", pg.img, PSMSparse}, {"line300x40", line.img, PSMSingleLine}} {
			b.Run(im.name+"/"+c.name, func(b *testing.B) {
				if _, err := im.pool.Read(context.Background(), c.img, c.psm); err != nil { // loads the engine
					b.Fatal(err)
				}
				cpu0 := cpuTime(b)
				start := time.Now()
				b.ResetTimer()
				for b.Loop() {
					if _, err := im.pool.Read(context.Background(), c.img, c.psm); err != nil {
						b.Fatal(err)
					}
				}
				wall := time.Since(start)
				cpu := cpuTime(b) - cpu0
				b.ReportMetric(wall.Seconds()*1000/float64(b.N), "ms/read")
				b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/read")
				b.ReportMetric(float64(cpu)/float64(wall), "cpu/wall")
			})
		}
	}
}

// cpuTime is the CPU time of this process and of its ended children
// (the tesseract commands).
func cpuTime(b *testing.B) time.Duration {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return t
}
