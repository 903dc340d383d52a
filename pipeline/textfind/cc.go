package textfind

// Connected components (8-connected) of a binary map, found by runs: text
// maps are sparse, so runs are far fewer than pixels.

type run struct {
	y, x0, x1 int32 // x1 exclusive
	label     int32
}

// comp is one connected component with its statistics.
type comp struct {
	x0, y0, x1, y1 int // bounding box, exclusive max
	area           int
	peak           uint8 // highest contrast among its pixels
	sum            int   // sum of contrast over its pixels
	sharp          bool  // edges are steps (see sharp)
}

func (c *comp) w() int { return c.x1 - c.x0 }
func (c *comp) h() int { return c.y1 - c.y0 }

type unionFind []int32

func (u unionFind) find(a int32) int32 {
	for u[a] != a {
		u[a] = u[u[a]]
		a = u[a]
	}
	return a
}

func (u unionFind) union(a, b int32) {
	a, b = u.find(a), u.find(b)
	if a == b {
		return
	}
	if a < b {
		u[b] = a
	} else {
		u[a] = b
	}
}

// components labels the pixels of contrast >= lo and returns those whose
// peak contrast is >= hi (hysteresis: weak edges of a strong stroke belong
// to it, weak blobs alone do not).
func components(con []uint8, w, h int, lo, hi uint8) []comp {
	var runs []run
	prevStart, prevEnd := 0, 0
	var uf unionFind
	for y := 0; y < h; y++ {
		row := con[y*w : y*w+w]
		start := len(runs)
		p := prevStart
		for x := 0; x < w; {
			if row[x] < lo {
				x++
				continue
			}
			x0 := x
			for x < w && row[x] >= lo {
				x++
			}
			l := int32(len(uf))
			uf = append(uf, l)
			runs = append(runs, run{y: int32(y), x0: int32(x0), x1: int32(x), label: l})
			// Runs of the previous row touching [x0-1, x] (8-connected).
			for p < prevEnd && int(runs[p].x1) < x0 {
				p++
			}
			for q := p; q < prevEnd && int(runs[q].x0) <= x; q++ {
				uf.union(l, runs[q].label)
			}
		}
		prevStart, prevEnd = start, len(runs)
	}
	idx := make([]int32, len(uf))
	for i := range idx {
		idx[i] = -1
	}
	var comps []comp
	for i := range runs {
		r := &runs[i]
		root := uf.find(r.label)
		ci := idx[root]
		if ci < 0 {
			ci = int32(len(comps))
			idx[root] = ci
			comps = append(comps, comp{x0: int(r.x0), y0: int(r.y), x1: int(r.x1), y1: int(r.y) + 1})
		}
		c := &comps[ci]
		c.x0, c.x1 = min(c.x0, int(r.x0)), max(c.x1, int(r.x1))
		c.y0, c.y1 = min(c.y0, int(r.y)), max(c.y1, int(r.y)+1)
		c.area += int(r.x1 - r.x0)
		row := con[int(r.y)*w:]
		for x := r.x0; x < r.x1; x++ {
			v := row[x]
			c.sum += int(v)
			if v > c.peak {
				c.peak = v
			}
		}
	}
	out := comps[:0]
	for _, c := range comps {
		if c.peak >= hi {
			out = append(out, c)
		}
	}
	return out
}
