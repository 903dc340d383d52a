// Command eval measures textfind against a genburnin.py workload whose
// frames were exported as luminance PNGs by testdata/export.py; not shipped.
//
//	go run ./pipeline/textfind/internal/eval -wl WL -png PNGDIR [-corpus CTPNGDIR,...] [-v]
//	go run ./pipeline/textfind/internal/eval -corpus CTPNGDIR,... [-v]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/textfind"
)

type truthFile struct {
	Files []struct {
		Name     string `json:"name"`
		Class    string `json:"class"`
		Modality string `json:"modality"`
		Mask     string `json:"mask"`
		Texts    []struct {
			Kind string `json:"kind"`
			Box  [4]int `json:"box"`
		} `json:"texts"`
	} `json:"files"`
}

func load(path string) (*image.Gray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		return nil, err
	}
	if g, ok := im.(*image.Gray); ok {
		return g, nil
	}
	g := image.NewGray(im.Bounds())
	draw.Draw(g, g.Bounds(), im, im.Bounds().Min, draw.Src)
	return g, nil
}

type tally struct{ n, ok int }

func (t tally) String() string { return fmt.Sprintf("%d/%d", t.ok, t.n) }

func bucket(h int) string {
	switch {
	case h < 10:
		return "h<10"
	case h < 14:
		return "h10-13"
	case h < 18:
		return "h14-17"
	default:
		return "h18+"
	}
}

func main() {
	wl := flag.String("wl", "", "genburnin workload")
	pngs := flag.String("png", "", "exported luminance PNGs")
	corpus := flag.String("corpus", "", "exported CT/MR PNGs for Screen")
	text := flag.String("text", "", "comma-separated cttext.py outputs (slices with text and masks)")
	verbose := flag.Bool("v", false, "list misses")
	flag.Parse()
	if *wl == "" {
		screenDirs(*corpus, *verbose)
		textDirs(*text, *verbose)
		return
	}
	var tr truthFile
	b, err := os.ReadFile(filepath.Join(*wl, "truth.json"))
	if err == nil {
		err = json.Unmarshal(b, &tr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	byKind, bySize := map[string]*tally{}, map[string]*tally{}
	var ident, benign, identVis tally
	var outside, fpPix, cleanOut, cleanFP int
	var screenText, screenClean tally
	var tLines time.Duration
	for _, f := range tr.Files {
		img, err := load(filepath.Join(*pngs, f.Name+".png"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		mask, err := load(filepath.Join(*wl, f.Mask))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		t0 := time.Now()
		boxes := textfind.Lines(img, textfind.Options{})
		tLines += time.Since(t0)
		sc := textfind.Screen(img, textfind.Options{})
		bd := img.Bounds()
		cov := image.NewGray(bd)
		for _, r := range boxes {
			r = r.Inset(-3).Intersect(bd)
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					cov.Pix[y*cov.Stride+x] = 1
				}
			}
		}
		truthBox := image.NewGray(bd)
		for _, t := range f.Texts {
			r := image.Rect(t.Box[0], t.Box[1], t.Box[0]+t.Box[2], t.Box[1]+t.Box[3]).Inset(-4).Intersect(bd)
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					truthBox.Pix[y*truthBox.Stride+x] = 1
				}
			}
		}
		o, fp := 0, 0
		for i, v := range truthBox.Pix {
			if v == 0 {
				o++
				if cov.Pix[i] != 0 {
					fp++
				}
			}
		}
		outside += o
		fpPix += fp
		if f.Class == "clean" {
			cleanOut += o
			cleanFP += fp
			screenClean.n++
			if !sc {
				screenClean.ok++
			}
		} else {
			screenText.n++
			if sc {
				screenText.ok++
			} else if *verbose {
				fmt.Println("screen false:", f.Name, f.Modality)
			}
		}
		for k, t := range f.Texts {
			lab := uint8(k + 1)
			n, c, nv, cv := 0, 0, 0, 0
			for y := bd.Min.Y; y < bd.Max.Y; y++ {
				for x := bd.Min.X; x < bd.Max.X; x++ {
					i := y*mask.Stride + x
					if mask.Pix[i] != lab {
						continue
					}
					n++
					in := cov.Pix[y*cov.Stride+x] != 0
					if in {
						c++
					}
					if visible(img, mask, x, y) {
						nv++
						if in {
							cv++
						}
					}
				}
			}
			ok := n > 0 && c*100 >= n*99
			okv := nv == 0 || cv*100 >= nv*99
			add := func(m map[string]*tally, key string) {
				if m[key] == nil {
					m[key] = &tally{}
				}
				m[key].n++
				if ok {
					m[key].ok++
				}
			}
			add(byKind, t.Kind)
			if t.Kind == "benign" {
				benign.n++
				if ok {
					benign.ok++
				}
				continue
			}
			add(bySize, bucket(t.Box[3]))
			ident.n++
			identVis.n++
			if ok {
				ident.ok++
			}
			if okv {
				identVis.ok++
			}
			if !ok && *verbose {
				fmt.Printf("miss %s %s box=%v cover=%.3f visible=%d/%d\n", f.Name, t.Kind, t.Box, float64(c)/float64(max(n, 1)), cv, nv)
			}
		}
	}
	fmt.Printf("identifying recall %v (visible-pixel recall %v), benign recall %v\n", ident, identVis, benign)
	fmt.Printf("by kind: %s\n", fmtMap(byKind))
	fmt.Printf("identifying by glyph-box height: %s\n", fmtMap(bySize))
	fmt.Printf("FP area %.3f%% overall, %.3f%% on clean images\n", 100*float64(fpPix)/float64(max(outside, 1)), 100*float64(cleanFP)/float64(max(cleanOut, 1)))
	fmt.Printf("Screen true on text images %v, false on clean %v; Lines mean %.1f ms\n", screenText, screenClean, float64(tLines.Microseconds())/1000/float64(len(tr.Files)))
	screenDirs(*corpus, *verbose)
}

// screenDirs reports Screen and Lines on the PNGs of each comma-separated
// directory (CT/MR slices: Screen should be false on those without text).
func screenDirs(dirs string, verbose bool) {
	if dirs == "" {
		return
	}
	for _, dir := range strings.Split(dirs, ",") {
		ents, _ := os.ReadDir(dir)
		var s tally
		var lines int
		var tScreen time.Duration
		for _, e := range ents {
			img, err := load(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			s.n++
			t0 := time.Now()
			sc := textfind.Screen(img, textfind.Options{})
			tScreen += time.Since(t0)
			if sc {
				s.ok++
				if verbose {
					fmt.Println("screen true:", e.Name())
				}
			}
			lines += len(textfind.Lines(img, textfind.Options{}))
		}
		fmt.Printf("%s: Screen true on %v (mean %.0f us), Lines boxes %d\n", filepath.Base(dir), s, float64(tScreen.Microseconds())/float64(max(s.n, 1)), lines)
	}
}

// visible reports whether a glyph pixel stands out from the non-glyph
// pixels around it (a glyph drawn over content of its own colour cannot be
// found, and cannot be read either).
func visible(img, mask *image.Gray, x, y int) bool {
	bd := img.Bounds()
	v := int(img.Pix[y*img.Stride+x])
	var bg []int
	for dy := -3; dy <= 3; dy++ {
		for dx := -3; dx <= 3; dx++ {
			p := image.Pt(x+dx, y+dy)
			if !p.In(bd) || mask.Pix[p.Y*mask.Stride+p.X] != 0 {
				continue
			}
			bg = append(bg, int(img.Pix[p.Y*img.Stride+p.X]))
		}
	}
	if len(bg) == 0 {
		return true
	}
	sort.Ints(bg)
	d := v - bg[len(bg)/2]
	return d >= 24 || d <= -24
}

func fmtMap(m map[string]*tally) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s %v  ", k, *m[k])
	}
	return s
}

// textDirs reports Screen and Lines on slices with text drawn by
// testdata/cttext.py: Screen must be true on each, and Lines' boxes (padded
// by 3) must cover 99% of the glyph pixels.
func textDirs(dirs string, verbose bool) {
	if dirs == "" {
		return
	}
	for _, dir := range strings.Split(dirs, ",") {
		ents, _ := os.ReadDir(dir)
		var s, rec tally
		out, fp := 0, 0
		for _, e := range ents {
			name := e.Name()
			if strings.HasSuffix(name, ".mask.png") || !strings.HasSuffix(name, ".png") {
				continue
			}
			img, err := load(filepath.Join(dir, name))
			if err != nil {
				continue
			}
			mask, err := load(filepath.Join(dir, strings.TrimSuffix(name, ".png")+".mask.png"))
			if err != nil {
				continue
			}
			s.n++
			if textfind.Screen(img, textfind.Options{}) {
				s.ok++
			} else if verbose {
				fmt.Println("screen false:", name)
			}
			bd := img.Bounds()
			cov := make([]bool, len(img.Pix))
			for _, r := range textfind.Lines(img, textfind.Options{}) {
				r = r.Inset(-3).Intersect(bd)
				for y := r.Min.Y; y < r.Max.Y; y++ {
					for x := r.Min.X; x < r.Max.X; x++ {
						cov[y*bd.Dx()+x] = true
					}
				}
			}
			n, c := 0, 0
			for i, v := range mask.Pix {
				if v != 0 {
					n++
					if cov[i] {
						c++
					}
				}
			}
			rec.n++
			if c*100 >= n*99 {
				rec.ok++
			} else if verbose {
				fmt.Printf("lines miss: %s %d/%d\n", name, c, n)
			}
			// Text-free area: farther than 6 px from any glyph pixel.
			w, h := bd.Dx(), bd.Dy()
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					near := false
					for dy := -6; dy <= 6 && !near; dy += 3 {
						for dx := -6; dx <= 6 && !near; dx += 3 {
							xx, yy := x+dx, y+dy
							near = xx >= 0 && yy >= 0 && xx < w && yy < h && mask.Pix[yy*mask.Stride+xx] != 0
						}
					}
					if !near {
						out++
						if cov[y*w+x] {
							fp++
						}
					}
				}
			}
		}
		fmt.Printf("%s: Screen true on %v, Lines cover 99%% of the glyphs on %v, FP area %.3f%%\n", filepath.Base(dir), s, rec, 100*float64(fp)/float64(max(out, 1)))
	}
}
