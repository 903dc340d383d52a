// Package textfind finds lines of text burned into image pixels: device
// banners, screen captures, corner annotations. It proposes boxes for an OCR
// step to read; a line it misses is never read and stays in the published
// image, so it favours recall and leaves precision to the reader.
//
// Text strokes are thin and differ sharply from a locally flat background, in
// either polarity. A morphological top-hat (the image minus its opening) and
// black-hat (its closing minus the image) with a window wider than any stroke
// keep exactly such thin structures; connected components of glyph size are
// then chained into lines by height, vertical overlap and gap.
package textfind

import (
	"image"
	"slices"
)

// Options tunes detection; the zero value is the default.
type Options struct {
	// MinHeight and MaxHeight bound the height in pixels of a line's tallest
	// glyph; zero means 6 and 48.
	MinHeight, MaxHeight int
}

const (
	defaultMinHeight = 6
	defaultMaxHeight = 48
)

func (o Options) norm() Options {
	if o.MinHeight <= 0 {
		o.MinHeight = defaultMinHeight
	}
	if o.MaxHeight <= 0 {
		o.MaxHeight = defaultMaxHeight
	}
	o.MinHeight = max(o.MinHeight, 2)
	o.MaxHeight = max(o.MaxHeight, o.MinHeight)
	return o
}

// Thresholds on the top-hat contrast (0..255). A pixel belongs to a stroke
// from lowContrast on; a component counts only if some pixel reaches
// highContrast. Burned-in text is drawn at full contrast against its
// background (150-255 on black, 20 on light grey); lossy compression blurs
// the edges, which the low threshold tolerates.
const (
	lowContrast  = 40
	highContrast = 80
)

// The faint pass finds text whose colour is close to its background (dark
// grey drawn over a black image region): readable once windowed, so it must
// be masked too. It takes only lines on a quiet background, where such
// contrast cannot be noise.
const (
	faintLow  = 9
	faintHigh = 14
)

// strokeRadius is the half-width of the top-hat window: a stroke narrower
// than 2r+1 pixels survives it. Bold glyphs have strokes of about a sixth of
// their height.
func strokeRadius(o Options) int {
	return min(max(o.MaxHeight/6+1, 3), 15)
}

// gray returns img's pixels as one contiguous w*h slice.
func gray(img *image.Gray) ([]uint8, int, int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, 0, 0
	}
	if img.Stride == w && len(img.Pix) >= w*h {
		return img.Pix[:w*h], w, h
	}
	p := make([]uint8, w*h)
	for y := 0; y < h; y++ {
		copy(p[y*w:], img.Pix[y*img.Stride:y*img.Stride+w])
	}
	return p, w, h
}

// Lines returns boxes around candidate text lines of img (8-bit luminance,
// any polarity), sorted top to bottom then left to right, each tight around
// its glyph pixels; the caller pads them.
func Lines(img *image.Gray, o Options) []image.Rectangle {
	if img == nil {
		return nil
	}
	o = o.norm()
	pix, w, h := gray(img)
	if w < 3 || h < 3 {
		return nil
	}
	r := strokeRadius(o)
	m := newMorph(w, h)
	a := make([]uint8, w*h)
	b := make([]uint8, w*h)
	con := make([]uint8, w*h)

	var boxes []image.Rectangle
	// Light text: image minus opening.
	m.apply(a, pix, r, minU8)
	m.apply(b, a, r, maxU8)
	for i, v := range pix {
		con[i] = v - b[i]
	}
	var pieces []comp
	found, _ := findLines(con, pix, w, h, o, lowContrast, highContrast, true)
	boxes = append(boxes, found...)
	found, faint := findLines(con, pix, w, h, o, faintLow, faintHigh, true)
	boxes, pieces = append(boxes, found...), append(pieces, faint...)
	// Dark text: closing minus image.
	m.apply(a, pix, r, maxU8)
	m.apply(b, a, r, minU8)
	for i, v := range pix {
		con[i] = b[i] - v
	}
	found, _ = findLines(con, pix, w, h, o, lowContrast, highContrast, false)
	boxes = append(boxes, found...)
	found, faint = findLines(con, pix, w, h, o, faintLow, faintHigh, false)
	boxes, pieces = append(boxes, found...), append(pieces, faint...)
	boxes = extend(boxes, pieces)

	boxes = mergeOverlapping(boxes)
	off := img.Bounds().Min
	for i := range boxes {
		boxes[i] = boxes[i].Add(off)
	}
	slices.SortFunc(boxes, func(p, q image.Rectangle) int {
		if p.Min.Y != q.Min.Y {
			return p.Min.Y - q.Min.Y
		}
		return p.Min.X - q.Min.X
	})
	return boxes
}

// findLines chains the glyph-like components of one contrast map into lines;
// it also returns the glyph candidates.
func findLines(con, pix []uint8, w, h int, o Options, lo, hi uint8, light bool) ([]image.Rectangle, []comp) {
	faint := lo < lowContrast
	comps := components(con, w, h, lo, hi)
	// Glyph candidates: not taller than a line, at least a fraction of the
	// smallest glyph; smaller marks (dots, commas, hyphens) join lines later.
	var glyphs, marks []comp
	minPart := max(2, o.MinHeight*2/3)
	for _, c := range comps {
		switch {
		case c.h() > o.MaxHeight+2:
		case c.h() >= minPart && c.w() <= c.h()*40 && (c.w() <= 2*c.h() || strokes(con, w, &c, lo)):
			glyphs = append(glyphs, c)
		case c.h() < minPart && c.w() <= o.MaxHeight:
			marks = append(marks, c)
		}
	}
	slices.SortFunc(glyphs, func(p, q comp) int { return p.x0 - q.x0 })
	// Greedy chaining left to right: a glyph joins the open line it fits
	// best, so a line grows along its baseline and never down a column of
	// unrelated blobs.
	var lines []*line
	for i := range glyphs {
		g := &glyphs[i]
		var best *line
		bestGap := 1 << 30
		for _, l := range lines {
			if gap, ok := l.fits(g); ok && gap < bestGap {
				best, bestGap = l, gap
			}
		}
		if best == nil {
			best = &line{box: g.rect()}
			lines = append(lines, best)
		}
		best.add(g)
	}
	// Lines too small to stand alone (a colon's dots, a short hyphen) are
	// marks that may belong to a neighbour.
	for _, l := range lines {
		if l.maxH < o.MinHeight {
			r := l.box
			marks = append(marks, comp{x0: r.Min.X, y0: r.Min.Y, x1: r.Max.X, y1: r.Max.Y})
		}
	}
	var out []image.Rectangle
	for _, l := range lines {
		if l.maxH < o.MinHeight || l.maxH > o.MaxHeight+2 {
			continue
		}
		if !l.standsOut(con, pix, w, h, lo, light) || !sharp(con, pix, w, l.box, lo) ||
			faint && !sharpFaint(con, pix, w, l.box, lo) {
			continue
		}
		if !quiet(con, w, h, l.box, lo) && (faint || !l.uniform(con, pix, w, lo)) {
			continue
		}
		l.attach(marks)
		out = append(out, l.box)
	}
	for i := range glyphs {
		glyphs[i].sharp = sharp(con, pix, w, glyphs[i].rect(), lo)
	}
	return out, glyphs
}

// strokeContrast is the median contrast of box's stroke pixels (those of
// contrast lo or more); false when it has none.
func strokeContrast(con []uint8, w int, box image.Rectangle, lo uint8) (int, bool) {
	var hist [256]int
	n := 0
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			if v := con[y*w+x]; v >= lo {
				hist[v]++
				n++
			}
		}
	}
	if n == 0 {
		return 0, false
	}
	return median(&hist, n), true
}

// sharp reports whether the edges in box are steps, as drawn glyphs' are,
// rather than slopes: most of the horizontal change between neighbours
// comes in jumps of a third of the strokes' contrast or more. Smooth
// anatomy and upscaled images grade over many pixels.
func sharp(con, pix []uint8, w int, box image.Rectangle, lo uint8) bool {
	c, ok := strokeContrast(con, w, box, lo)
	if !ok {
		return false
	}
	step, total := 0, 0
	for y := box.Min.Y; y < box.Max.Y; y++ {
		row := pix[y*w:]
		for x := max(box.Min.X-1, 0); x+1 < min(box.Max.X+1, w); x++ {
			g := int(row[x+1]) - int(row[x])
			if g < 0 {
				g = -g
			}
			if g < 4 {
				continue
			}
			total += g
			if 3*g >= c {
				step += g
			}
		}
	}
	return total > 0 && step*10 >= total*6
}

// sharpFaint is sharp for the faint pass, where a step of a third of the
// contrast is no more than noise: of the change in steps above a third of
// the contrast, most comes in steps of two thirds of it or more. A smooth
// blob graded over many pixels, noisy or not, has few such steps; a faint
// glyph's edges are nearly all of them (55% is where the genburnin seeds
// lose no identifying text).
func sharpFaint(con, pix []uint8, w int, box image.Rectangle, lo uint8) bool {
	c, ok := strokeContrast(con, w, box, lo)
	if !ok {
		return false
	}
	step, total := 0, 0
	for y := box.Min.Y; y < box.Max.Y; y++ {
		row := pix[y*w:]
		for x := max(box.Min.X-1, 0); x+1 < min(box.Max.X+1, w); x++ {
			g := int(row[x+1]) - int(row[x])
			if g < 0 {
				g = -g
			}
			if 3*g < c || g < 4 {
				continue
			}
			total += g
			if 3*g >= 2*c {
				step += g
			}
		}
	}
	return total > 0 && step*20 >= total*11
}

// pieceContrast is the least peak contrast of a piece that extends a line:
// above what noise of a few grey levels reaches in a glyph-sized blob.
const pieceContrast = 20

// extend grows each line sideways over the glyph-sized pieces that
// continue it in its band of rows, whatever their contrast: a line that
// runs from a black banner onto anatomy loses contrast on the way, and a
// line half masked is a line read.
func extend(boxes []image.Rectangle, pieces []comp) []image.Rectangle {
	slices.SortFunc(pieces, func(p, q comp) int { return p.x0 - q.x0 })
	for i, b := range boxes {
		lh := b.Dy()
		top, bottom := b.Min.Y-lh/4, b.Max.Y+lh/4
		fits := func(c *comp) bool {
			return c.y0 >= top && c.y1 <= bottom && 3*c.h() >= lh && 2*c.h() <= 3*lh && c.sharp &&
				c.peak >= pieceContrast && c.sum >= c.area*faintHigh
		}
		maxGap := lh + lh/2 + 2
		for grown := true; grown; {
			grown = false
			for j := range pieces {
				c := &pieces[j]
				if c.x0 > b.Max.X+maxGap {
					break
				}
				if c.x1 <= b.Max.X && c.x0 >= b.Min.X-maxGap && c.x1 < b.Min.X || c.x0 >= b.Max.X {
					if fits(c) {
						b = b.Union(c.rect())
						grown = true
					}
				}
			}
		}
		boxes[i] = b
	}
	return boxes
}

func (c *comp) rect() image.Rectangle { return image.Rect(c.x0, c.y0, c.x1, c.y1) }

type line struct {
	box  image.Rectangle
	n    int
	maxH int
	sumH int
}

// fits reports whether glyph g continues the line, and the gap between them.
func (l *line) fits(g *comp) (int, bool) {
	gap := g.x0 - l.box.Max.X
	hl := l.sumH / max(l.n, 1)
	hg := g.h()
	lo, hi := min(hl, hg), max(hl, hg)
	if hi > 3*lo || gap > hi+hi/2+2 {
		return 0, false
	}
	ov := min(l.box.Max.Y, g.y1) - max(l.box.Min.Y, g.y0)
	if 2*ov < lo {
		return 0, false
	}
	// The line may not grow taller than its glyphs allow.
	top, bottom := min(l.box.Min.Y, g.y0), max(l.box.Max.Y, g.y1)
	if 2*(bottom-top) > 3*max(l.maxH, hg) {
		return 0, false
	}
	return max(gap, 0), true
}

func (l *line) add(c *comp) {
	l.box = l.box.Union(c.rect())
	l.n++
	l.maxH = max(l.maxH, c.h())
	l.sumH += c.h()
}

// standsOut reports whether the line's strokes differ from the background
// around the line in the pass's polarity. Between two lines of light text
// the dark background is itself thin and the black-hat lights it up; but
// the rows around it are as dark as it is, so it is no dark text.
func (l *line) standsOut(con, pix []uint8, w, h int, lo uint8, light bool) bool {
	var bg, fg [256]int
	nb, nf := 0, 0
	for _, y := range [4]int{l.box.Min.Y - 3, l.box.Min.Y - 2, l.box.Max.Y + 1, l.box.Max.Y + 2} {
		if y < 0 || y >= h {
			continue
		}
		for x := max(l.box.Min.X-2, 0); x < min(l.box.Max.X+2, w); x++ {
			bg[pix[y*w+x]]++
			nb++
		}
	}
	for y := l.box.Min.Y; y < l.box.Max.Y; y++ {
		for x := l.box.Min.X; x < l.box.Max.X; x++ {
			if i := y*w + x; con[i] >= lo {
				fg[pix[i]]++
				nf++
			}
		}
	}
	if nb == 0 || nf == 0 {
		return nb == 0 && nf > 0
	}
	mb, mf := median(&bg, nb), median(&fg, nf)
	if light {
		return mf >= mb+int(lo)
	}
	return mf+int(lo) <= mb
}

func median(hist *[256]int, n int) int {
	c := 0
	for v, k := range hist {
		c += k
		if 2*c >= n {
			return v
		}
	}
	return 255
}

// uniform reports whether the stroke pixels of the line share one colour,
// as drawn text does; speckle and anatomy grade from dark to bright. Only
// the strokes' cores count: anti-aliased edges blend into the background
// whatever the text's colour.
func (l *line) uniform(con, pix []uint8, w int, lo uint8) bool {
	var peak uint8
	for y := l.box.Min.Y; y < l.box.Max.Y; y++ {
		for _, v := range con[y*w+l.box.Min.X : y*w+l.box.Max.X] {
			peak = max(peak, v)
		}
	}
	core := max(lo, peak-peak/3)
	var hist [256]int
	n := 0
	for y := l.box.Min.Y; y < l.box.Max.Y; y++ {
		for x := l.box.Min.X; x < l.box.Max.X; x++ {
			i := y*w + x
			if con[i] >= core {
				hist[pix[i]]++
				n++
			}
		}
	}
	best, win := 0, 0
	for v := 0; v < 256; v++ {
		win += hist[v]
		if v >= 25 {
			win -= hist[v-25]
		}
		best = max(best, win)
	}
	return n > 0 && best*10 >= n*6
}

// attach widens the line over the small marks beside or inside it.
func (l *line) attach(marks []comp) {
	ext := image.Rect(l.box.Min.X-l.maxH, l.box.Min.Y-2, l.box.Max.X+l.maxH, l.box.Max.Y+l.maxH/3+2)
	for i := range marks {
		r := marks[i].rect()
		if r.In(ext) {
			l.box = l.box.Union(r)
		}
	}
}

// mergeOverlapping unions boxes that overlap until none do.
func mergeOverlapping(boxes []image.Rectangle) []image.Rectangle {
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(boxes); i++ {
			for j := i + 1; j < len(boxes); j++ {
				if boxes[i].Overlaps(boxes[j]) {
					boxes[i] = boxes[i].Union(boxes[j])
					boxes = append(boxes[:j], boxes[j+1:]...)
					changed = true
					j--
				}
			}
		}
	}
	return boxes
}

// strokes reports whether a wide component crosses its middle rows in as
// many strokes as a run of glyphs would (about one per glyph width): a word
// whose glyphs touch does, a catheter or a vessel (one thin curve) does not.
func strokes(con []uint8, w int, c *comp, lo uint8) bool {
	best := 0
	for _, f := range [3]int{3, 4, 5} {
		y := c.y0 + c.h()*f/8
		row := con[y*w+c.x0 : y*w+c.x1]
		n, in := 0, false
		for _, v := range row {
			if v >= lo != in {
				in = !in
				if in {
					n++
				}
			}
		}
		best = max(best, n)
	}
	return 2*best*c.h() >= c.w()
}

// quiet reports whether the rows just above and below box are flat: few
// pixels reach the stroke threshold (a bar or a neighbour's stroke may cross
// them) and the others stay well below it. Faint text sits on a flat
// background; faint blobs in speckle or anatomy have neighbours all round.
func quiet(con []uint8, w, h int, box image.Rectangle, lo uint8) bool {
	n, strong, sum := 0, 0, 0
	for _, y := range [4]int{box.Min.Y - 3, box.Min.Y - 2, box.Max.Y + 1, box.Max.Y + 2} {
		if y < 0 || y >= h {
			continue
		}
		row := con[y*w:]
		for x := max(box.Min.X-2, 0); x < min(box.Max.X+2, w); x++ {
			v := row[x]
			if v >= lo {
				strong++
				continue
			}
			n++
			sum += int(v)
		}
	}
	return n > 0 && strong*12 <= n+strong && sum*3 <= n*int(lo)
}
