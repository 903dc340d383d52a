package textfind

import (
	"image"
	"math/rand/v2"
)

// glyphs5x7 is a 5x7 bitmap font (digits, capitals, a few marks): enough to
// draw device annotations and identifiers without a font dependency.
var glyphs5x7 = map[rune][7]string{
	'0': {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1': {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2': {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3': {"####.", "....#", "....#", ".###.", "....#", "....#", "####."},
	'4': {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5': {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6': {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7': {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8': {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9': {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'A': {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'B': {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C': {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D': {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."},
	'E': {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F': {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G': {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H': {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I': {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J': {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K': {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L': {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M': {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N': {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O': {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P': {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q': {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R': {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S': {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T': {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U': {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V': {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."},
	'W': {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X': {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y': {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z': {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	':': {".....", "..#..", "..#..", ".....", "..#..", "..#..", "....."},
	'/': {"....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."},
	'-': {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'.': {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	'^': {"..#..", ".#.#.", "#...#", ".....", ".....", ".....", "....."},
	',': {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."},
}

// drawText draws s at (x, y) with each font pixel a scale x scale block of
// value v, bold thickening strokes by one pixel; it returns the glyph
// pixels' box and marks them in mask (when not nil).
func drawText(img *image.Gray, mask []bool, s string, x, y, scale int, bold bool, v uint8) image.Rectangle {
	var box image.Rectangle
	adv := 6 * scale
	if bold {
		adv += scale / 2
	}
	for i, r := range s {
		g, ok := glyphs5x7[r]
		if !ok {
			continue // space
		}
		gx := x + i*adv
		for row := 0; row < 7; row++ {
			for col := 0; col < 5; col++ {
				if g[row][col] != '#' {
					continue
				}
				bw := scale
				if bold {
					bw += max(1, scale/3)
				}
				for dy := 0; dy < scale; dy++ {
					for dx := 0; dx < bw; dx++ {
						p := image.Pt(gx+col*scale+dx, y+row*scale+dy)
						if !p.In(img.Rect) {
							continue
						}
						img.Pix[img.PixOffset(p.X, p.Y)] = v
						if mask != nil {
							mask[(p.Y-img.Rect.Min.Y)*img.Rect.Dx()+p.X-img.Rect.Min.X] = true
						}
						box = box.Union(image.Rectangle{p, p.Add(image.Pt(1, 1))})
					}
				}
			}
		}
	}
	return box
}

// background fills img: flat at level, or speckle (bright random blobs on
// dark, as in ultrasound), or a smooth gradient with noise.
func background(img *image.Gray, kind string, level uint8, rng *rand.Rand) {
	b := img.Rect
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := float64(level)
			switch kind {
			case "noise":
				v += rng.NormFloat64() * 3
			case "gradient":
				v = float64(level) + 80*float64(x-b.Min.X)/float64(b.Dx()) + rng.NormFloat64()*3
			}
			img.Pix[img.PixOffset(x, y)] = clampU8(v)
		}
	}
	if kind != "speckle" {
		return
	}
	// Speckle: many small smooth blobs of random brightness.
	n := b.Dx() * b.Dy() / 120
	for i := 0; i < n; i++ {
		cx, cy := b.Min.X+rng.IntN(b.Dx()), b.Min.Y+rng.IntN(b.Dy())
		amp := 40 + rng.Float64()*100
		rx, ry := 1+rng.IntN(4), 1+rng.IntN(2)
		for dy := -ry; dy <= ry; dy++ {
			for dx := -rx; dx <= rx; dx++ {
				p := image.Pt(cx+dx, cy+dy)
				if !p.In(b) {
					continue
				}
				f := 1 - (float64(dx*dx)/float64((rx+1)*(rx+1)) + float64(dy*dy)/float64((ry+1)*(ry+1)))
				if f <= 0 {
					continue
				}
				o := img.PixOffset(p.X, p.Y)
				img.Pix[o] = clampU8(float64(img.Pix[o]) + amp*f)
			}
		}
	}
}

func clampU8(v float64) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v + 0.5)
}
