package textfind

import (
	"encoding/binary"
	"image"
)

// Screen reports whether img may hold text at all. It is the cheap test run
// on every CT or MR slice, and must say no on anatomy, or every slice pays
// for Lines and OCR. It reads every other row for strokes: short runs that
// differ by screenContrast or more from the level they rise from and fall
// back to, as a glyph's stem does in a row crossing it. Text is where such
// strokes come several to a row, close together on one background, over a
// band of rows as tall as a line, and the band is bounded above, below and
// at both ends by background as flat as that (air, a banner). Bone and
// skin edges are single long steps, not strokes; vessels and sulci pair up
// on a row here and there, but do not stack into a band with flat margins.
func Screen(img *image.Gray, o Options) bool {
	if img == nil {
		return false
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	return screen(w, h, o, func(y int) []uint8 { return img.Pix[y*img.Stride : y*img.Stride+w] })
}

// ScreenRows is Screen over an image of w by h pixels whose grey rows are
// made on demand: fill writes row y (w pixels) into dst. The screen looks
// at every other row and, around a candidate line only, at its
// neighbours, so that a slice's grey image is mostly never made: the
// cost of every CT and MR slice. Each row is filled at most once.
func ScreenRows(w, h int, o Options, fill func(y int, dst []uint8)) bool {
	var rs RowScreen
	return rs.Screen(w, h, o, fill)
}

// RowScreen is ScreenRows with its buffers kept from one image to the
// next (the frames of a multi-frame CT: thousands of them). It is not
// safe for concurrent use.
type RowScreen struct {
	buf  []uint8
	done []bool
}

// Screen is ScreenRows, with s's buffers.
func (s *RowScreen) Screen(w, h int, o Options, fill func(y int, dst []uint8)) bool {
	if w <= 0 || h <= 0 {
		return false
	}
	rowAt, _, _ := s.rows(w, h, fill)
	return screen(w, h, o, rowAt)
}

// rows readies s's buffers for an image of w by h pixels: rowAt(y) is
// row y, made by fill the first time it is asked for; done tells the
// rows made whole.
func (s *RowScreen) rows(w, h int, fill func(y int, dst []uint8)) (rowAt func(y int) []uint8, buf []uint8, done []bool) {
	if cap(s.buf) < w*h {
		s.buf = make([]uint8, w*h)
	}
	if cap(s.done) < h {
		s.done = make([]bool, h)
	}
	buf, done = s.buf[:w*h], s.done[:h]
	clear(done)
	return func(y int) []uint8 {
		r := buf[y*w : (y+1)*w]
		if !done[y] {
			fill(y, r)
			done[y] = true
		}
		return r
	}, buf, done
}

// Rows makes an image's grey rows on demand, whole or in part, and says
// where a row may not be flat: what lets the screen's gate map only a
// few stretches of its rows.
type Rows interface {
	// Row writes row y (w pixels) into dst.
	Row(y int, dst []uint8)
	// Part writes the grey of pixels [x0, x1) of row y into dst[x0:x1].
	Part(y, x0, x1 int, dst []uint8)
	// Busy appends to dst, in order and disjoint, spans [x0, x1) of row y
	// holding every x whose grey differs from pixel x-1's by flat or
	// more. Spans covering the row are always right; fewer spare the
	// mapping of the rest.
	Busy(y, flat int, dst [][2]int) [][2]int
}

// ScreenSparse is Screen over the rows of src, w by h pixels: the answer
// Screen gives with src.Row, the gate's rows mapped only around where
// src.Busy says they are not flat (a stroke starts only there).
func (s *RowScreen) ScreenSparse(w, h int, o Options, src Rows) bool {
	if w <= 0 || h <= 0 {
		return false
	}
	rowAt, buf, done := s.rows(w, h, src.Row)
	// A row made in parts is made whole when the screen asks for it.
	part := func(y, x0, x1 int) []uint8 {
		r := buf[y*w : (y+1)*w]
		if !done[y] && x0 < x1 {
			src.Part(y, x0, x1, r)
		}
		return r
	}
	return screenWith(w, h, o, rowAt, &sparse{src: src, part: part})
}

// sparse is the gate's access to a Rows.
type sparse struct {
	src   Rows
	part  func(y, x0, x1 int) []uint8
	spans [][2]int
	found []stroke // one stretch's strokes
}

func screen(w, h int, o Options, rowAt func(y int) []uint8) bool {
	return screenWith(w, h, o, rowAt, nil)
}

func screenWith(w, h int, o Options, rowAt func(y int) []uint8, sp *sparse) bool {
	s := newScreener(w, h, o, rowAt, sp)
	return s != nil && s.read(s.gate())
}

// newScreener is the screen of a w by h image, nil when no line fits in
// it.
func newScreener(w, h int, o Options, rowAt func(y int) []uint8, sp *sparse) *screener {
	o = o.norm()
	if w < 8 || h < o.MinHeight {
		return nil
	}
	return &screener{rowAt: rowAt, sp: sp, w: w, h: h, o: o, maxStroke: max(o.MaxHeight/4, 3), maxGap: max(o.MaxHeight/3, 4)}
}

// read reads the even rows of windows (in order, disjoint) for a line.
func (s *screener) read(windows [][2]int) bool {
	for _, r := range windows {
		for y := r[0]; y < r[1]; y += 2 {
			s.row(y)
			if s.found {
				return true
			}
		}
		// The window ends where its chain (or its reach) does: its bands end.
		s.close(r[1] + 2*screenMaxSkip)
	}
	return s.found
}

// gateStep is the row step of the gate: a line of text at least
// MinHeight (6) rows tall crosses one of these rows at least one row
// inside its ink, where its stems make strokes.
const gateStep = 4

// gate reads every gateStep-th row for a segment (two strokes or more,
// close together on one background, as a line's glyphs make in every row
// that crosses them) and returns the even-row windows around such rows
// that the full screen must read, in order and disjoint. A band holds
// segments in sampled rows no more than screenMaxSkip+2 apart (close
// keeps it open that long), so the band through a gate row lies within
// the chain of such rows around it: the window is that chain, read from
// where every band before it has closed (the full screen's state there),
// and none when the chain is lower than a line. A chain longer than a
// line's reach (texture) is cut there. Margins are read on demand. Most
// slices of anatomy have few such rows: the rest of the image is never
// mapped to grey.
func (s *screener) gate() [][2]int {
	reach := s.o.MaxHeight + 2 + 2*screenMaxSkip
	s.seg = make([]int8, s.h)
	var near [][2]int
	for y := 0; y < s.h; y += gateStep {
		if !s.segmentAt(y) {
			continue
		}
		y0, y1 := s.chainEnd(y, -2, reach), s.chainEnd(y, 2, reach)
		if y1-y0+2 < s.o.MinHeight-1 {
			continue // every band through y is lower than isLine's least
		}
		if n := len(near); n > 0 && y0 <= near[n-1][1] {
			near[n-1][1] = max(near[n-1][1], y1+1)
			continue
		}
		near = append(near, [2]int{y0, y1 + 1})
	}
	return near
}

// segmentAt reports whether row y holds a segment (segmentIn), read once.
func (s *screener) segmentAt(y int) bool {
	if s.seg[y] == 0 {
		s.seg[y] = -1
		if s.segmentIn(s.rowStrokes(y)) {
			s.seg[y] = 1
		}
	}
	return s.seg[y] > 0
}

// chainEnd follows the rows y+dy, y+2dy, ... (dy ±2) while a segment lies
// within screenMaxSkip+2 rows of the last one (the farthest a band's next
// row may be), and returns the last row with a segment: no band through
// y reaches past it. It stops at reach rows from y, returning that row
// (as far as a window went before windows followed chains).
func (s *screener) chainEnd(y, dy, reach int) int {
	last, empty := y, 0
	for r := y + dy; r >= 0 && r < s.h; r += dy {
		if r-y > reach || y-r > reach {
			return r - dy
		}
		if s.segmentAt(r) {
			last, empty = r, 0
		} else if empty++; 2*empty > screenMaxSkip {
			break
		}
	}
	return last
}

// rowStrokes sets s.strokes to the strokes of row y: of the whole row,
// or of its sparse stretches (the same strokes).
func (s *screener) rowStrokes(y int) []stroke {
	if s.sp != nil {
		s.strokes = s.sparseStrokes(y, s.strokes[:0])
	} else {
		s.strokes = strokesInRow(s.rowAt(y), s.maxStroke, s.strokes[:0])
	}
	return s.strokes
}

// segmentIn reports whether a row's strokes st hold two or more of one
// polarity on one background within maxGap of each other: what the row
// makes a segment of.
func (s *screener) segmentIn(st []stroke) bool {
	for i := 1; i < len(st); i++ {
		if st[i].light == st[i-1].light && absDiff(st[i].bg, st[i-1].bg) <= screenSameBg &&
			int(st[i].x0-st[i-1].x1) <= s.maxGap {
			return true
		}
	}
	return false
}

// Screen's thresholds: a stroke peaks screenContrast away from its flank
// and its run ends within screenFlat of it; background is what lies within
// screenFlat of the line's flank level; strokes of one line have flanks
// within screenSameBg of each other.
const (
	screenContrast = 40
	screenFlat     = 13
	screenSameBg   = 24
	screenOff      = screenContrast / 2
	// screenMaxSkip is the number of rows a band may skip (the rows through
	// a line's horizontal bars hold no stroke).
	screenMaxSkip = 4
)

type screener struct {
	rowAt             func(y int) []uint8 // grey row y, w pixels
	sp                *sparse             // the gate's parts of rows (nil: whole rows)
	w, h              int
	o                 Options
	maxStroke, maxGap int
	strokes           []stroke
	seg               []int8 // row y holds a segment: 1, none: -1, not read: 0
	bands             []band
	found             bool
}

// stroke is one thin bump of a row.
type stroke struct {
	x0, x1 int32 // run, x1 exclusive
	bg     uint8 // flank level
	light  bool
}

// band is a run of consecutive sampled rows whose segments (strokes close
// together on one background) overlap: a candidate line.
type band struct {
	x0, x1, y0, y1 int // y1 the last sampled row
	rows, strokes  int
	calm, gaps     int // pixels between strokes: within screenFlat of bg, all
	bg             uint8
	light, dead    bool
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// row adds sampled row y: its strokes, grouped into segments, continue or
// open bands; bands that ended are judged.
func (s *screener) row(y int) {
	st := s.rowStrokes(y)
	for i := 0; i < len(st); {
		j := i + 1
		for j < len(st) && st[j].light == st[i].light && absDiff(st[j].bg, st[i].bg) <= screenSameBg &&
			int(st[j].x0-st[j-1].x1) <= s.maxGap {
			j++
		}
		if j-i >= 2 {
			// The segment's gaps, which a sparse row may not have made
			// yet.
			var pix []uint8
			if s.sp != nil {
				pix = s.sp.part(y, int(st[i].x1), int(st[j-1].x0))
			} else {
				pix = s.rowAt(y)
			}
			// Between a line's strokes lies its background, flat.
			calm, gaps := 0, 0
			for k := i + 1; k < j; k++ {
				for x := st[k-1].x1; x < st[k].x0; x++ {
					gaps++
					if absDiff(pix[x], st[i].bg) < screenOff {
						calm++
					}
				}
			}
			s.segment(int(st[i].x0), int(st[j-1].x1), y, j-i, calm, gaps, st[i].bg, st[i].light)
		}
		i = j
	}
	s.close(y)
}

// segment joins a row's segment to the band it continues, or opens one.
func (s *screener) segment(x0, x1, y, n, calm, gaps int, bg uint8, light bool) {
	const slack = 4
	for k := range s.bands {
		b := &s.bands[k]
		if b.light != light || absDiff(b.bg, bg) > screenSameBg || x0 > b.x1+slack || x1 < b.x0-slack {
			continue
		}
		b.x0, b.x1, b.y1 = min(b.x0, x0), max(b.x1, x1), y
		b.rows++
		b.strokes += n
		b.calm += calm
		b.gaps += gaps
		if b.y1-b.y0 > s.o.MaxHeight+2 {
			// Taller than a line: texture. It stays open, dead, so that
			// its lower rows do not open a band of their own.
			b.dead = true
		}
		return
	}
	s.bands = append(s.bands, band{x0: x0, x1: x1, y0: y, y1: y, rows: 1, strokes: n, calm: calm, gaps: gaps, bg: bg, light: light})
}

// close judges the bands that no row continued up to y.
func (s *screener) close(y int) {
	kept := s.bands[:0]
	for _, b := range s.bands {
		if y-b.y1 <= screenMaxSkip {
			kept = append(kept, b)
			continue
		}
		if !b.dead && s.isLine(&b) {
			s.found = true
		}
	}
	s.bands = kept
}

// isLine reports whether a closed band looks like a line of text.
func (s *screener) isLine(b *band) bool {
	hgt := b.y1 - b.y0 + 2 // sampled rows stand for two
	wid := b.x1 - b.x0
	switch {
	case hgt < s.o.MinHeight-1 || hgt > s.o.MaxHeight+2:
		return false
	case b.rows < 2 || 4*b.rows < hgt: // most sampled rows hold a segment
		return false
	case b.strokes < 3*b.rows: // several glyphs, not a pair of vessels
		return false
	case wid < hgt || wid*b.rows > 2*hgt*b.strokes: // strokes about as dense as glyphs'
		return false
	case 4*b.calm < 3*b.gaps: // text lies on a flat ground, noise does not
		return false
	}
	// Quiet on three sides of four: a line may touch the body or a
	// neighbour on one. A band of two or three rows is too little evidence
	// for that allowance.
	reach := max(hgt/2, 3)
	quiet := 0
	for _, q := range [4]bool{s.flatRows(b, b.y0-2, -1, reach), s.flatRows(b, b.y1+3, 1, reach),
		s.flatCols(b, b.x0-2, -1, reach), s.flatCols(b, b.x1+1, 1, reach)} {
		if q {
			quiet++
		}
	}
	return quiet == 4 || quiet == 3 && b.rows >= 4
}

// flatRows reports whether one of the reach rows from y on (stepping dy)
// is quiet across the band: no more than a few steps between neighbours
// (the edge of a body or a table may cross it, strokes may not). Beyond
// the image counts as quiet.
func (s *screener) flatRows(b *band, y, dy, reach int) bool {
	x0, x1 := max(b.x0-2, 0), min(b.x1+2, s.w)
	for k := 0; k < reach; k, y = k+1, y+dy {
		if y < 0 || y >= s.h {
			return true
		}
		row := s.rowAt(y)
		steps := 0
		for x := x0 + 1; x < x1; x++ {
			if absDiff(row[x], row[x-1]) >= screenOff {
				steps++
			}
		}
		if steps <= quietSteps(x1-x0) {
			return true
		}
	}
	return false
}

// flatCols is flatRows for the columns beside the band's ends.
func (s *screener) flatCols(b *band, x, dx, reach int) bool {
	y0, y1 := max(b.y0-1, 0), min(b.y1+2, s.h)
	for k := 0; k < reach; k, x = k+1, x+dx {
		if x < 0 || x >= s.w {
			return true
		}
		steps := 0
		for y := y0 + 1; y < y1; y++ {
			if absDiff(s.rowAt(y)[x], s.rowAt(y - 1)[x]) >= screenOff {
				steps++
			}
		}
		if steps <= quietSteps(y1-y0) {
			return true
		}
	}
	return false
}

// sparseStrokes appends the strokes of row y: those strokesInRow finds in
// the whole row, from stretches around the row's busy spans. A run of
// strokesInRow starts only where a pixel is not flat with the one before
// it, and covers at most maxStroke+3 pixels from the one before it; so a
// point that far past the last busy pixel is reached afresh, and a
// stretch scanned from there to that far past its last busy span sees
// what the whole row's scan sees.
func (s *screener) sparseStrokes(y int, out []stroke) []stroke {
	reach := s.maxStroke + 3
	sp := s.sp
	sp.spans = sp.src.Busy(y, screenFlat, sp.spans[:0])
	scan := func(x0, x1 int) {
		// Starts in [x0, x1); pixels from x0-1 to x1+reach-1.
		from, to := max(x0-1, 0), min(x1+reach, s.w)
		row := sp.part(y, from, to)
		sp.found = strokesInRow(row[from:to], s.maxStroke, sp.found[:0])
		for _, st := range sp.found {
			st.x0 += int32(from)
			st.x1 += int32(from)
			out = append(out, st)
		}
	}
	a, b := -1, -1 // the stretch pending
	for _, span := range sp.spans {
		x0, x1 := max(span[0], 1), min(span[1], s.w)
		if x0 >= x1 {
			continue
		}
		if a >= 0 && x0 < b+reach {
			b = max(b, x1) // not reached afresh: one stretch
			continue
		}
		if a >= 0 {
			scan(a, b)
		}
		a, b = x0, x1
	}
	if a >= 0 {
		scan(a, b)
	}
	return out
}

// quietSteps is how many steps a quiet run of n pixels may hold.
func quietSteps(n int) int { return 2 + n/16 }

// strokesInRow appends the thin bumps (light or dark) of row: a run that
// leaves its left neighbour's level by screenContrast or more and comes
// back to within screenFlat of it within maxStroke pixels (plus one of
// anti-aliasing at each edge).
func strokesInRow(row []uint8, maxStroke int, out []stroke) []stroke {
	n := len(row)
	// The common case, flat: eight pixels at a time, then one compare a
	// pixel. Where the eight fail, they are read one by one up to next
	// before the eight-pixel test is tried again (not at every pixel).
	next := 1
	for x := 1; x+1 < n; x++ {
		if x >= next {
			for x+8 < n {
				a, b := binary.LittleEndian.Uint64(row[x:]), binary.LittleEndian.Uint64(row[x-1:])
				// Neighbours in one eighth of the levels (air, a banner)
				// are flat at one XOR; flat8 decides the rest.
				if (a^b)&sameEighth != 0 && !flat8(a, b) {
					break
				}
				x += 8
			}
			if x+1 >= n {
				break
			}
			next = x + 8
		}
		if d := int(row[x]) - int(row[x-1]); uint(d+screenFlat-1) < 2*screenFlat-1 {
			continue
		}
		a := row[x-1]
		light := row[x] > a
		// The run: its distance from a, signed toward the stroke's
		// polarity, until it comes back within screenFlat (a loop for
		// each polarity: the run is the hot loop of anatomy's rows).
		run := row[x : min(n-1, x+maxStroke+2)+1]
		peak, e, d := 0, -1, 0
		if light {
			for i, v := range run {
				if d = int(v) - int(a); d < screenFlat {
					e = i
					break
				}
				peak = max(peak, d)
			}
		} else {
			for i, v := range run {
				if d = int(a) - int(v); d < screenFlat {
					e = i
					break
				}
				peak = max(peak, d)
			}
		}
		if e < 0 {
			continue // still away at the end of its reach: judged from x+1 on
		}
		if d > -screenFlat && peak >= screenContrast {
			out = append(out, stroke{x0: int32(x), x1: int32(x + e), bg: a, light: light})
		}
		// Either way the run is judged: a ramp or a step that does not
		// come back is no stroke, and starts nothing before x+e.
		x += e
	}
	return out
}

// sameEighth keeps the top five bits of eight bytes: neighbours equal
// there differ by less than eight levels.
const sameEighth = 0xF8F8F8F8F8F8F8F8

// flat8 reports whether each of the eight bytes of a is within
// screenFlat-1 of the byte of b in the same place: the test of
// strokesInRow's flat case for eight neighbours at once. Each half of the
// bytes is widened to 16-bit lanes, where a-b+256+screenFlat-1 cannot
// borrow from its neighbour, and checked to lie in
// [256, 256+2*screenFlat-2].
func flat8(a, b uint64) bool {
	const (
		lanes = 0x00FF00FF00FF00FF
		bias  = 0x0100010001000100 + (screenFlat-1)*0x0001000100010001
		lowOK = (0x8000 - 256) * 0x0001000100010001
		hiBad = (0x8000 - 256 - 2*screenFlat + 1) * 0x0001000100010001
		tops  = 0x8000800080008000
	)
	ok := func(x, y uint64) bool {
		t := x + bias - y // lanes in [screenFlat, 511+screenFlat]: no borrow
		return (t+lowOK)&^(t+hiBad)&tops == tops
	}
	return ok(a&lanes, b&lanes) && ok(a>>8&lanes, b>>8&lanes)
}
