package deid

import "io"

// heldReader is a file's body with one range already in memory: the frame
// of a single-frame image, read whole to screen it for burned-in text.
// Writing the output copies the unchanged Pixel Data from there rather
// than reading the file a second time (half a megabyte a CT slice, as
// much as the screen itself costs).
type heldReader struct {
	r   io.ReaderAt
	off int64
	b   []byte // the source's bytes [off, off+len(b)), verbatim
}

// ReadAt reads p from the held bytes where they cover it and from r
// elsewhere; at the end of the file it reports what r reports.
func (h *heldReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return h.r.ReadAt(p, off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= h.off && pos < h.off+int64(len(h.b)) {
			n += copy(p[n:], h.b[pos-h.off:])
			continue
		}
		// Up to the held range, or to the end of p.
		end := off + int64(len(p))
		if pos < h.off && h.off < end {
			end = h.off
		}
		m, err := h.r.ReadAt(p[n:n+int(end-pos)], pos)
		n += m
		if err != nil && (err != io.EOF || n < len(p)) {
			return n, err
		}
	}
	return n, nil
}

// Held returns the held range (dicomraw.HeldSource): the writer writes
// it from memory.
func (h *heldReader) Held() (int64, []byte) { return h.off, h.b }
