//go:build tesseract && cgo

package ocr

/*
#cgo pkg-config: tesseract lept
#cgo LDFLAGS: -lgomp
#include <stdlib.h>
#include <stdbool.h>
#include <omp.h>
#include <tesseract/capi.h>
#include <leptonica/allheaders.h>

// ocr_cancel_fn is Tesseract's cancel callback: it polls a flag that Go sets
// when the Read's context ends.
static bool ocr_cancel_fn(void *flag, int words) {
	return __atomic_load_n((int *)flag, __ATOMIC_RELAXED) != 0;
}

static void ocr_set_flag(int *flag) { __atomic_store_n(flag, 1, __ATOMIC_RELAXED); }

// ocr_open loads an engine; NULL when Tesseract cannot load the language.
static TessBaseAPI *ocr_open(const char *datadir, const char *lang) {
	// Leptonica writes its warnings to stderr itself (not through
	// debug_file); its severity is a process-wide setting, and ours is
	// the only use of Leptonica in the process.
	setMsgSeverity(L_SEVERITY_NONE);
	TessBaseAPI *api = TessBaseAPICreate();
	if (api == NULL) return NULL;
	// Tesseract's messages (tprintf) go to debug_file; it is a global
	// parameter, so it is set before Init and covers Init's messages.
	TessBaseAPISetVariable(api, "debug_file", "/dev/null");
	if (TessBaseAPIInit2(api, datadir, lang, OEM_LSTM_ONLY) != 0) {
		TessBaseAPIDelete(api);
		return NULL;
	}
	return api;
}

// ocr_recognize runs Tesseract on one 8-bit image; 0 when it succeeded.
static int ocr_recognize(TessBaseAPI *api, const unsigned char *pix, int w, int h, int stride, int psm, int *flag) {
	// One engine, one core: the OpenMP parallel regions of Tesseract's
	// LSTM would otherwise run teams of 4 threads (see the package doc).
	omp_set_max_active_levels(0);
	omp_set_num_threads(1);
	TessBaseAPISetPageSegMode(api, (TessPageSegMode)psm);
	TessBaseAPISetImage(api, pix, w, h, 1, stride);
	ETEXT_DESC *mon = TessMonitorCreate();
	if (mon == NULL) return -1;
	TessMonitorSetCancelFunc(mon, ocr_cancel_fn);
	TessMonitorSetCancelThis(mon, flag);
	int rc = TessBaseAPIRecognize(api, mon);
	TessMonitorDelete(mon);
	return rc;
}

typedef struct {
	int left, top, right, bottom;
	float conf;
	int new_line;
	char *text;
} ocr_word;

// ocr_word_at reads the word at it into w; text is NULL for none (an
// empty page), and the caller frees it with TessDeleteText.
static void ocr_word_at(TessResultIterator *it, ocr_word *w) {
	const TessPageIterator *pi = TessResultIteratorGetPageIteratorConst(it);
	w->new_line = TessPageIteratorIsAtBeginningOf(pi, RIL_TEXTLINE) ? 1 : 0;
	if (!TessPageIteratorBoundingBox(pi, RIL_WORD, &w->left, &w->top, &w->right, &w->bottom)) {
		w->left = w->top = w->right = w->bottom = 0;
	}
	w->conf = TessResultIteratorConfidence(it, RIL_WORD);
	w->text = TessResultIteratorGetUTF8Text(it, RIL_WORD);
}

typedef struct {
	int left, top, right, bottom;
	char *text;
} ocr_glyph;

// ocr_glyphs reads the symbols of the word at it (at most max) into g and
// returns how many; the caller frees each text with TessDeleteText.
static int ocr_glyphs(TessResultIterator *it, ocr_glyph *g, int max) {
	TessResultIterator *s = TessResultIteratorCopy(it);
	if (s == NULL) return 0;
	const TessPageIterator *pi = TessResultIteratorGetPageIteratorConst(s);
	int n = 0;
	while (n < max) {
		if (!TessPageIteratorBoundingBox(pi, RIL_SYMBOL, &g[n].left, &g[n].top, &g[n].right, &g[n].bottom)) break;
		g[n].text = TessResultIteratorGetUTF8Text(s, RIL_SYMBOL);
		n++;
		if (TessPageIteratorIsAtFinalElement(pi, RIL_WORD, RIL_SYMBOL)) break;
		if (!TessResultIteratorNext(s, RIL_SYMBOL)) break;
	}
	TessResultIteratorDelete(s);
	return n;
}
*/
import "C"

import (
	"context"
	"fmt"
	"image"
	"unsafe"
)

// CAPI tells that this build reads through Tesseract's C API.
const CAPI = true

// NewPool opens the C API's first engine, which checks that Tesseract
// loads the language; the others open when needed.
func NewPool(cfg Config) (*Pool, error) {
	b := &capiBackend{cfg: cfg}
	e, err := b.open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return newPool(b, cfg, e), nil
}

type capiBackend struct{ cfg Config }

func (b *capiBackend) describe() string {
	return "tesseract " + C.GoString(C.TessVersion()) + " (C API)"
}

func (b *capiBackend) open() (engine, error) {
	lang := C.CString(b.cfg.lang())
	defer C.free(unsafe.Pointer(lang))
	var dir *C.char
	if b.cfg.DataDir != "" {
		dir = C.CString(b.cfg.DataDir)
		defer C.free(unsafe.Pointer(dir))
	}
	api := C.ocr_open(dir, lang)
	if api == nil {
		return nil, fmt.Errorf("tesseract could not load language data %q", b.cfg.lang())
	}
	flag := (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))
	if flag == nil {
		C.TessBaseAPIEnd(api)
		C.TessBaseAPIDelete(api)
		return nil, fmt.Errorf("out of memory")
	}
	return &capiEngine{api: api, flag: flag}, nil
}

type capiEngine struct {
	api  *C.TessBaseAPI
	flag *C.int // C memory: Tesseract's cancel callback reads it
}

func (e *capiEngine) close() {
	C.TessBaseAPIEnd(e.api)
	C.TessBaseAPIDelete(e.api)
	C.free(unsafe.Pointer(e.flag))
	e.api, e.flag = nil, nil
}

func (e *capiEngine) read(ctx context.Context, img *image.Gray, psm PSM) ([]Line, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	*e.flag = 0
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			C.ocr_set_flag(e.flag)
		case <-stop:
		}
	}()
	// Tesseract copies the pixels in SetImage; the Go memory is pinned
	// for the call only (cgo's rule for pointers passed to C).
	pix := img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y):]
	rc := C.ocr_recognize(e.api, (*C.uchar)(unsafe.Pointer(&pix[0])), C.int(w), C.int(h), C.int(img.Stride), C.int(psm), e.flag)
	close(stop)
	<-stopped
	defer C.TessBaseAPIClear(e.api)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ocr: %w", err)
	}
	if rc != 0 {
		return nil, fmt.Errorf("ocr: tesseract failed to recognize the image")
	}
	it := C.TessBaseAPIGetIterator(e.api)
	if it == nil {
		return nil, nil // no text found
	}
	defer C.TessResultIteratorDelete(it)
	var lines []Line
	var cw C.ocr_word
	var gs [maxGlyphs]C.ocr_glyph
	for {
		C.ocr_word_at(it, &cw)
		text := ""
		if cw.text != nil {
			text = C.GoString(cw.text)
			C.TessDeleteText(cw.text)
		}
		if cw.new_line != 0 || len(lines) == 0 {
			lines = append(lines, Line{})
		}
		l := &lines[len(lines)-1]
		var glyphs []Glyph
		if text != "" {
			n := int(C.ocr_glyphs(it, &gs[0], maxGlyphs))
			glyphs = make([]Glyph, 0, n)
			for _, g := range gs[:n] {
				t := ""
				if g.text != nil {
					t = C.GoString(g.text)
					C.TessDeleteText(g.text)
				}
				glyphs = append(glyphs, Glyph{Text: t, Box: image.Rect(int(g.left), int(g.top), int(g.right), int(g.bottom))})
			}
			if n == maxGlyphs {
				glyphs = nil // perhaps cut short: the word's box stands for it
			}
		}
		l.Words = append(l.Words, Word{
			Text:   text,
			Box:    image.Rect(int(cw.left), int(cw.top), int(cw.right), int(cw.bottom)),
			Conf:   float64(cw.conf),
			Glyphs: glyphs,
		})
		if C.TessResultIteratorNext(it, C.RIL_WORD) == 0 {
			break
		}
	}
	return lines, nil
}
