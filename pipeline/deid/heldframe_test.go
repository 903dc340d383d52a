package deid

import (
	"bytes"
	"io"
	"testing"
)

// A held range serves reads exactly as the file would, whatever the read
// overlaps: before, inside, across and after it, and at the end.
func TestHeldReader(t *testing.T) {
	src := make([]byte, 100)
	for i := range src {
		src[i] = byte(i)
	}
	file := bytes.NewReader(src)
	for _, hold := range [][2]int{{0, 10}, {20, 50}, {90, 100}, {40, 41}} {
		h := &heldReader{r: file, off: int64(hold[0]), b: append([]byte(nil), src[hold[0]:hold[1]]...)}
		for off := 0; off <= 100; off += 3 {
			for _, n := range []int{0, 1, 7, 30, 100} {
				want := make([]byte, n)
				wn, werr := file.ReadAt(want, int64(off))
				got := make([]byte, n)
				gn, gerr := h.ReadAt(got, int64(off))
				if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) {
					t.Fatalf("hold %v, read %d at %d: %d %v, file %d %v", hold, n, off, gn, gerr, wn, werr)
				}
				if werr != nil && werr != io.EOF {
					t.Fatalf("file: %v", werr)
				}
			}
		}
	}
}
