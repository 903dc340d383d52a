package textfind

// Grey-level erosion and dilation with a square window, separable and in
// constant time per pixel whatever the window (van Herk / Gil-Werman): the
// top-hat that isolates thin strokes needs a window wider than the thickest
// stroke, and the cost must not grow with it.

type op func(a, b uint8) uint8

func minU8(a, b uint8) uint8 {
	if a < b {
		return a
	}
	return b
}

func maxU8(a, b uint8) uint8 {
	if a > b {
		return a
	}
	return b
}

// filter1D writes to dst[i*step] the op of src[j*step] over j in [i-r, i+r]
// clipped to [0, n). g and h are scratch of length >= n.
func filter1D(dst, src []uint8, n, step, r int, f op, g, h []uint8) {
	if n == 0 {
		return
	}
	k := 2*r + 1
	if n <= k {
		for i := 0; i < n; i++ {
			lo, hi := max(0, i-r), min(n-1, i+r)
			v := src[lo*step]
			for j := lo + 1; j <= hi; j++ {
				v = f(v, src[j*step])
			}
			dst[i*step] = v
		}
		return
	}
	for i := 0; i < n; i++ {
		if i%k == 0 {
			g[i] = src[i*step]
		} else {
			g[i] = f(g[i-1], src[i*step])
		}
	}
	for i := n - 1; i >= 0; i-- {
		if i == n-1 || (i+1)%k == 0 {
			h[i] = src[i*step]
		} else {
			h[i] = f(h[i+1], src[i*step])
		}
	}
	// Clipped windows at both ends: running prefix and suffix.
	v := src[0]
	for j := 1; j < r; j++ {
		v = f(v, src[j*step])
	}
	for i := 0; i < r; i++ {
		v = f(v, src[(i+r)*step])
		dst[i*step] = v
	}
	for i := r; i < n-r; i++ {
		dst[i*step] = f(h[i-r], g[i+r])
	}
	v = src[(n-1)*step]
	for j := n - 2; j > n-1-r; j-- {
		v = f(v, src[j*step])
	}
	for i := n - 1; i >= n-r; i-- {
		v = f(v, src[(i-r)*step])
		dst[i*step] = v
	}
}

// morph holds the scratch of the separable filters for one image size.
type morph struct {
	w, h int
	tmp  []uint8
	g, k []uint8
}

func newMorph(w, h int) *morph {
	n := max(w, h)
	return &morph{w: w, h: h, tmp: make([]uint8, w*h), g: make([]uint8, n), k: make([]uint8, n)}
}

// apply writes to dst the op of src over the (2r+1)^2 square around each pixel.
func (m *morph) apply(dst, src []uint8, r int, f op) {
	w, h := m.w, m.h
	for y := 0; y < h; y++ {
		filter1D(m.tmp[y*w:], src[y*w:], w, 1, r, f, m.g, m.k)
	}
	for x := 0; x < w; x++ {
		filter1D(dst[x:], m.tmp[x:], h, w, r, f, m.g, m.k)
	}
}
