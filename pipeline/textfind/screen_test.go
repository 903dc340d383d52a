package textfind

import (
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ctSlice draws what a CT slice windowed min..max looks like: black air,
// an elliptic body of soft tissue with noise, a bright ring of bone and a
// spine, bright vessels and dark air pockets; no text.
func ctSlice(w, h int, seed uint64) *image.Gray {
	rng := rand.New(rand.NewPCG(seed, 11))
	img := image.NewGray(image.Rect(0, 0, w, h))
	cx, cy := float64(w)/2, float64(h)/2
	rx, ry := float64(w)*0.42, float64(h)*0.32
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
			r := math.Hypot(dx, dy)
			v := 0.0
			switch {
			case r < 0.93:
				v = 110 + rng.NormFloat64()*3
			case r < 1:
				v = 200 + rng.NormFloat64()*4 // bone and skin
			}
			img.Pix[y*w+x] = clampU8(v)
		}
	}
	blob := func(x0, y0, rx, ry int, v float64) {
		for y := y0 - ry; y <= y0+ry; y++ {
			for x := x0 - rx; x <= x0+rx; x++ {
				p := image.Pt(x, y)
				if !p.In(img.Rect) {
					continue
				}
				fx, fy := float64(x-x0)/float64(rx+1), float64(y-y0)/float64(ry+1)
				if fx*fx+fy*fy <= 1 {
					img.Pix[y*w+x] = clampU8(v + rng.NormFloat64()*3)
				}
			}
		}
	}
	blob(int(cx), int(cy+ry*0.6), w/20, h/24, 230) // spine
	for range 40 {                                 // vessels, seen end on or along
		a := rng.Float64() * 2 * math.Pi
		d := rng.Float64() * 0.8
		blob(int(cx+math.Cos(a)*d*rx), int(cy+math.Sin(a)*d*ry), 1+rng.IntN(3), 1+rng.IntN(3), 170+rng.Float64()*60)
	}
	for range 12 { // air in the bowel
		a := rng.Float64() * 2 * math.Pi
		d := rng.Float64() * 0.6
		blob(int(cx+math.Cos(a)*d*rx), int(cy+math.Sin(a)*d*ry), 2+rng.IntN(5), 1+rng.IntN(4), 0)
	}
	return img
}

// Screen is false on slices without text and true once a name, an ID and
// a date are burned into a corner, white on the air.
func TestScreenCTSlice(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		for _, sz := range [][2]int{{512, 512}, {256, 256}} {
			img := ctSlice(sz[0], sz[1], seed)
			if screenBoth(t, img) {
				t.Errorf("seed %d %dx%d: Screen true on a slice without text", seed, sz[0], sz[1])
			}
			for _, scale := range []int{1, 2, 3} {
				for _, corner := range []string{"tl", "br"} {
					t.Run(fmt.Sprintf("%d/%dx%d/%d/%s", seed, sz[0], sz[1], scale, corner), func(t *testing.T) {
						txt := ctSlice(sz[0], sz[1], seed)
						step := 9 * scale
						for i, s := range []string{"KOWALCZYK^JADWIGA", "ID 12345678", "1950-01-02"} {
							x, y := 3, 3+i*step
							if corner == "br" {
								x, y = sz[0]-3-len(s)*6*scale, sz[1]-3-(3-i)*step
							}
							drawText(txt, nil, s, x, y, scale, false, 255)
						}
						if !screenBoth(t, txt) {
							t.Errorf("Screen false on a slice with text")
						}
					})
				}
			}
		}
	}
}

// TestScreenCorpus runs Screen over the shared corpus's CT and MR slices
// (none of which shows text) and over the same slices with a name, an ID
// and a date burned in by testdata/cttext.py. Needs python3-pydicom as
// TestGenburninWorkload does.
func TestScreenCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes the corpus")
	}
	corpus, _ := filepath.Abs("../../../shared/corpus")
	py := "/usr/bin/python3"
	missing := ""
	if _, err := os.Stat(filepath.Join(corpus, "MANIFEST.tsv")); err != nil {
		missing = "shared corpus"
	} else if err := exec.Command(py, "-c", "import pydicom, numpy, PIL").Run(); err != nil {
		missing = "python3-pydicom/numpy/pil"
	}
	if missing != "" {
		if os.Getenv("DEID_REQUIRE_SERVERS") == "1" {
			t.Fatalf("%s missing", missing)
		}
		t.Skipf("%s missing", missing)
	}
	dir := t.TempDir()
	plain, text := filepath.Join(dir, "plain"), filepath.Join(dir, "text")
	if out, err := exec.Command(py, "testdata/export.py", "corpus", corpus, plain).CombinedOutput(); err != nil {
		t.Fatalf("export.py: %v\n%s", err, out)
	}
	if out, err := exec.Command(py, "testdata/cttext.py", corpus, text, "--variants", "2").CombinedOutput(); err != nil {
		t.Fatalf("cttext.py: %v\n%s", err, out)
	}
	n := 0
	for _, name := range pngs(t, plain) {
		n++
		if screenBoth(t, loadGray(t, filepath.Join(plain, name))) {
			t.Errorf("%s: Screen true on a slice without text", name)
		}
	}
	m := 0
	for _, name := range pngs(t, text) {
		if strings.HasSuffix(name, ".mask.png") {
			continue
		}
		m++
		if !screenBoth(t, loadGray(t, filepath.Join(text, name))) {
			t.Errorf("%s: Screen false on a slice with text", name)
		}
	}
	if n == 0 || m == 0 {
		t.Fatalf("%d slices without text, %d with", n, m)
	}
	t.Logf("%d slices without text, %d with", n, m)
}

// screenBoth is Screen(img), checked to be what ScreenRows says of the
// same pixels made row by row, each row made at most once.
func screenBoth(t *testing.T, img *image.Gray) bool {
	t.Helper()
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	filled := make([]int, h)
	rows := ScreenRows(w, h, Options{}, func(y int, dst []uint8) {
		filled[y]++
		copy(dst, img.Pix[y*img.Stride:y*img.Stride+w])
	})
	made := 0
	for y, n := range filled {
		if n > 1 {
			t.Errorf("ScreenRows made row %d %d times", y, n)
		}
		made += n
	}
	whole := Screen(img, Options{})
	if rows != whole {
		t.Errorf("ScreenRows says %v, Screen %v", rows, whole)
	}
	// The gate only spares rows: reading every row says the same.
	s := newScreener(w, h, Options{}, func(y int) []uint8 { return img.Pix[y*img.Stride : y*img.Stride+w] }, nil)
	if all := s != nil && s.read([][2]int{{0, h}}); all != whole {
		t.Errorf("Screen says %v, every row read %v", whole, all)
	}
	if !whole && made > h*3/4 {
		t.Errorf("ScreenRows made %d of %d rows of an image without text", made, h)
	}
	return whole
}

func pngs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".png") {
			out = append(out, e.Name())
		}
	}
	return out
}

// flat8 says what eight of strokesInRow's one-pixel flat tests say.
func TestFlat8(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		var a, b [8]byte
		for k := range a {
			b[k] = uint8(rng.IntN(256))
			a[k] = b[k]
			switch rng.IntN(4) {
			case 0:
				a[k] = uint8(rng.IntN(256))
			case 1, 2:
				a[k] = uint8(int(b[k]) + rng.IntN(2*screenFlat+3) - screenFlat - 1)
			}
		}
		want := true
		for k := range a {
			if d := int(a[k]) - int(b[k]); uint(d+screenFlat-1) >= 2*screenFlat-1 {
				want = false
			}
		}
		if got := flat8(binary.LittleEndian.Uint64(a[:]), binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("flat8(%v, %v) = %v", a, b, got)
		}
	}
}

// strokesInRow finds what its rule finds read one pixel at a time: a
// run leaving its left neighbour by screenFlat or more, peaking
// screenContrast away and back within screenFlat inside its reach; the
// next run starts where one is judged.
func TestStrokesInRowRule(t *testing.T) {
	rule := func(row []uint8, maxStroke int) []stroke {
		var out []stroke
		for x := 1; x+1 < len(row); x++ {
			a := int(row[x-1])
			if d := int(row[x]) - a; d > -screenFlat && d < screenFlat {
				continue
			}
			light := int(row[x]) > a
			peak := 0
			for e := x; e <= min(len(row)-1, x+maxStroke+2); e++ {
				d := int(row[e]) - a
				if !light {
					d = -d
				}
				if d < screenFlat {
					if d > -screenFlat && peak >= screenContrast {
						out = append(out, stroke{x0: int32(x), x1: int32(e), bg: uint8(a), light: light})
					}
					x = e
					break
				}
				peak = max(peak, d)
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 20000; i++ {
		row := make([]uint8, 1+rng.IntN(120))
		level := rng.IntN(256)
		for x := range row {
			switch rng.IntN(6) {
			case 0:
				level = rng.IntN(256)
			case 1, 2:
				level = min(max(level+rng.IntN(61)-30, 0), 255)
			}
			row[x] = uint8(level)
		}
		maxStroke := 1 + rng.IntN(14)
		got, want := strokesInRow(row, maxStroke, nil), rule(row, maxStroke)
		if !slices.Equal(got, want) {
			t.Fatalf("row %v max %d: strokes %v, want %v", row, maxStroke, got, want)
		}
	}
}

// grayRows is Rows over a grey image; its Busy spans are exact (one
// pixel each) or whole blocks, as a caller would make them.
type grayRows struct {
	img    *image.Gray
	blocks bool
	made   int // pixels made by Part
}

func (g *grayRows) Row(y int, dst []uint8) {
	copy(dst, g.img.Pix[y*g.img.Stride:y*g.img.Stride+g.img.Bounds().Dx()])
}

func (g *grayRows) Part(y, x0, x1 int, dst []uint8) {
	g.made += x1 - x0
	copy(dst[x0:x1], g.img.Pix[y*g.img.Stride+x0:y*g.img.Stride+x1])
}

func (g *grayRows) Busy(y, flat int, dst [][2]int) [][2]int {
	w := g.img.Bounds().Dx()
	row := g.img.Pix[y*g.img.Stride : y*g.img.Stride+w]
	for x := 1; x < w; x++ {
		if absDiff(row[x], row[x-1]) < flat {
			continue
		}
		x0, x1 := x, x+1
		if g.blocks {
			x0, x1 = x&^15, min(x&^15+16, w)
		}
		if n := len(dst); n > 0 && dst[n-1][1] >= x0 {
			dst[n-1][1] = max(dst[n-1][1], x1)
		} else {
			dst = append(dst, [2]int{x0, x1})
		}
	}
	return dst
}

// The sparse gate finds, row by row, the strokes strokesInRow finds in the
// whole row, on text, anatomy and noise, with tight spans and with blocks;
// and ScreenSparse says what Screen says.
func TestSparseStrokes(t *testing.T) {
	var imgs []*image.Gray
	for seed := uint64(1); seed <= 3; seed++ {
		imgs = append(imgs, ctSlice(256, 256, seed))
		txt := ctSlice(256, 256, seed)
		drawText(txt, nil, "KOWALCZYK^JADWIGA 1950", 3, 3, 1, false, 255)
		drawText(txt, nil, "ID 12345678", 40, 200, 2, true, 200)
		imgs = append(imgs, txt)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	noise := image.NewGray(image.Rect(0, 0, 200, 64))
	for i := range noise.Pix {
		// Runs of one level, small steps, ramps and spikes of every size.
		switch v := rng.IntN(10); {
		case v < 6 && i > 0:
			noise.Pix[i] = noise.Pix[i-1]
		case v < 8 && i > 0:
			noise.Pix[i] = uint8(int(noise.Pix[i-1]) + rng.IntN(31) - 15)
		default:
			noise.Pix[i] = uint8(rng.IntN(256))
		}
	}
	imgs = append(imgs, noise)
	o := Options{}.norm()
	for n, img := range imgs {
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		for _, blocks := range []bool{false, true} {
			src := &grayRows{img: img, blocks: blocks}
			buf := make([]uint8, w*h)
			s := screener{w: w, h: h, o: o, maxStroke: max(o.MaxHeight/4, 3), maxGap: max(o.MaxHeight/3, 4),
				sp: &sparse{src: src, part: func(y, x0, x1 int) []uint8 {
					r := buf[y*w : (y+1)*w]
					src.Part(y, x0, x1, r)
					return r
				}}}
			for y := 0; y < h; y++ {
				want := strokesInRow(img.Pix[y*img.Stride:y*img.Stride+w], s.maxStroke, nil)
				if got := s.sparseStrokes(y, nil); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("image %d, blocks %v, row %d: sparse %v, whole row %v", n, blocks, y, got, want)
				}
			}
		}
		src := &grayRows{img: img, blocks: true}
		if got, want := (&RowScreen{}).ScreenSparse(w, h, Options{}, src), Screen(img, Options{}); got != want {
			t.Errorf("image %d: ScreenSparse %v, Screen %v", n, got, want)
		}
	}
	// On a flat image with one line of text, the gate makes little more
	// than the line's rows.
	img := image.NewGray(image.Rect(0, 0, 512, 512))
	drawText(img, nil, "KOWALCZYK^JADWIGA", 3, 3, 1, false, 255)
	src := &grayRows{img: img, blocks: true}
	if !(&RowScreen{}).ScreenSparse(512, 512, Options{}, src) {
		t.Fatal("ScreenSparse false on a line of text")
	}
	if src.made > 512*512/16 {
		t.Errorf("the gate made %d pixels of a flat image with one line", src.made)
	}
}
