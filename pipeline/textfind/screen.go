package textfind

import "image"

// Screen reports whether img may hold text at all. It is the cheap test run
// on every slice, so it reads only every other row and looks for strokes:
// a short run of pixels that differs by screenContrast or more from equal
// flanks on both sides, as a glyph's vertical stroke does. Text shows as
// rows holding two or more strokes near each other, over consecutive
// sampled rows; anatomy's edges seldom pair up like that on a flat ground.
func Screen(img *image.Gray, o Options) bool {
	if img == nil {
		return false
	}
	o = o.norm()
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 8 || h < o.MinHeight {
		return false
	}
	maxStroke := max(o.MaxHeight/4, 3)
	span := o.MaxHeight
	prev := make([]int32, 0, 64)
	cur := make([]int32, 0, 64)
	evidence := 0
	run := 0
	for y := 0; y < h; y += 2 {
		row := img.Pix[y*img.Stride : y*img.Stride+w]
		cur = strokesInRow(row, maxStroke, cur[:0])
		hit := false
		for i := 1; i < len(cur) && !hit; i++ {
			if int(cur[i]-cur[i-1]) > span {
				continue
			}
			// A stroke pair; does the row above continue one of them?
			for _, p := range prev {
				if d := p - cur[i]; d >= -2 && d <= 2 {
					hit = true
					break
				}
			}
		}
		if hit {
			run++
			if run >= 2 {
				evidence++
				if evidence >= 1 {
					return true
				}
			}
		} else {
			run = 0
		}
		prev, cur = cur, prev
	}
	return false
}

const screenContrast = 40

// strokesInRow appends the x of each thin bump (light or dark) of row.
func strokesInRow(row []uint8, maxStroke int, out []int32) []int32 {
	n := len(row)
	for x := 1; x+2 < n; x++ {
		a := int(row[x-1])
		c := int(row[x+1])
		d := c - a
		if d < screenContrast && d > -screenContrast {
			continue
		}
		// An edge between x-1 and x+1; look for the opposite edge back to
		// the flank's level within maxStroke.
		end := min(n-1, x+maxStroke+2)
		for e := x + 2; e <= end; e++ {
			v := int(row[e])
			if diff := v - a; diff < screenContrast/3 && diff > -screenContrast/3 {
				out = append(out, int32(x))
				x = e
				break
			}
		}
	}
	return out
}
