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
