//go:build tesseract && cgo

package ocr

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// osThreads is the process's thread count (Linux).
func osThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: in /proc/self/status")
	return 0
}

// TestOneThread: a Read starts no OpenMP threads. Tesseract's LSTM asks
// for teams of 4 (num_threads(4)); without the limit in ocr_recognize,
// libgomp starts 3 threads for each OS thread that calls Recognize and
// keeps them. The goroutine is locked to one OS thread so that the
// count does not depend on the Go scheduler's choice of threads.
func TestOneThread(t *testing.T) {
	f := testFont(t)
	pg := newPage(1024, 768, 250)
	pg.text(t, f, 18, 10, 10, 24, "GENERAL HOSPITAL RADIOLOGY")
	pg.text(t, f, 18, 10, 10, 750, "DOE JANE 1970 F")
	p, err := NewPool(Config{Engines: 1})
	if err != nil {
		unavailable(t, "NewPool (C API)", err)
	}
	defer p.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := osThreads(t)
	for range 5 {
		if _, err := p.Read(context.Background(), pg.img, PSMSparse); err != nil {
			t.Fatal(err)
		}
	}
	if after := osThreads(t); after > before+2 {
		t.Errorf("threads %d before 5 Reads, %d after: OpenMP is not limited to the caller's thread", before, after)
	}
}

// TestGlyphs: the C API tells each word's symbols, which spell the word
// and lie within its box (burnin masks what identifies by them, not by
// a word's box that page segmentation stretches over texture).
func TestGlyphs(t *testing.T) {
	f := testFont(t)
	pg := newPage(800, 120, 250)
	pg.text(t, f, 24, 10, 20, 60, "KLINIKUM BAD UEBERKINGEN 1982")
	p, err := NewPool(Config{Engines: 1})
	if err != nil {
		unavailable(t, "NewPool (C API)", err)
	}
	defer p.Close()
	lines, err := p.Read(context.Background(), pg.img, PSMSparse)
	if err != nil {
		t.Fatal(err)
	}
	words := 0
	for _, l := range lines {
		for _, w := range l.Words {
			if w.Text == "" {
				continue
			}
			words++
			var b strings.Builder
			for _, g := range w.Glyphs {
				b.WriteString(g.Text)
				if !g.Box.In(w.Box.Inset(-2)) || g.Box.Empty() {
					t.Errorf("word %q: glyph %q at %v, outside the word's box %v", w.Text, g.Text, g.Box, w.Box)
				}
			}
			if b.String() != w.Text {
				t.Errorf("word %q: glyphs spell %q", w.Text, b.String())
			}
		}
	}
	if words < 3 {
		t.Fatalf("read %d words of 4: %+v", words, lines)
	}
}
