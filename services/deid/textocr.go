package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"sync"

	"github.com/dicomdeid/dicomdeid/pipeline/burnin"
	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/ocr"
)

// textOCR is the OCR the engines of one command read burned-in text
// with: Tesseract, opened once for the process (its engines are shared
// by the workers, at most one per worker reading at a time, so that OCR
// runs on the workers' cores and never more of them).
type textOCR struct {
	engines int
	lazy    bool

	once sync.Once
	pool *ocr.Pool
	why  string // why there is none
}

// openTextOCR opens the OCR for workers concurrent readers. Without one
// (a build without Tesseract's C API and no tesseract command) it says
// why, and the engines hold back the images that must be read. lazy
// defers opening to the first image read (loading the model costs ~70
// ms, which a batch of CT slices that all pass the screen never needs);
// a long-running service opens at start to say at once what it has.
func openTextOCR(workers int, lazy bool) *textOCR {
	t := &textOCR{engines: workers, lazy: lazy}
	if !lazy {
		t.open()
	}
	return t
}

func (t *textOCR) open() {
	t.once.Do(func() {
		p, err := ocr.NewPool(ocr.Config{Engines: t.engines})
		if err != nil {
			t.why = "no OCR: " + err.Error()
			if errors.Is(err, ocr.ErrUnavailable) {
				t.why = "no OCR in this build or on this machine: install tesseract-ocr and tesseract-ocr-eng (docs/burnin.md)"
			}
			return
		}
		t.pool = p
	})
}

// Read opens the OCR if it is not yet, and reads (burnin.Reader).
func (t *textOCR) Read(ctx context.Context, img *image.Gray, psm ocr.PSM) ([]ocr.Line, error) {
	t.open()
	if t.pool == nil {
		return nil, fmt.Errorf("%w (%s)", burnin.ErrNoOCR, t.why)
	}
	return t.pool.Read(ctx, img, psm)
}

// engineConfig adds the OCR to an engine's configuration.
func (t *textOCR) engineConfig(c deid.Config) deid.Config {
	if t == nil {
		return c
	}
	if t.lazy || t.pool != nil {
		c.OCR = t
	}
	c.OCRWhy = t.why
	if t.lazy {
		c.OCRWhy = "no OCR in this build or on this machine: install tesseract-ocr and tesseract-ocr-eng (docs/burnin.md)"
	}
	return c
}

// Describe is one line for start-up messages, reports and `deid version`.
func (t *textOCR) Describe() string {
	if t == nil {
		return "none"
	}
	if t.lazy && t.pool == nil && t.why == "" {
		return "not opened (no image needed reading)"
	}
	if t.pool == nil {
		return "none (" + t.why + "): images that may show burned-in text are held back, never published unread"
	}
	return t.pool.Describe()
}

// Close releases the OCR engines.
func (t *textOCR) Close() {
	if t != nil && t.pool != nil {
		t.pool.Close()
	}
}
