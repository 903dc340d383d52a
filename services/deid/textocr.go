package main

import (
	"errors"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/ocr"
)

// textOCR is the OCR the engines of one command read burned-in text
// with: Tesseract, opened once for the process (its engines are shared
// by the workers, at most one per worker reading at a time, so that OCR
// runs on the workers' cores and never more of them).
type textOCR struct {
	pool *ocr.Pool
	why  string // why there is none
}

// openTextOCR opens the OCR for workers concurrent readers. Without one
// (a build without Tesseract's C API and no tesseract command) it says
// why, and the engines hold back the images that must be read.
func openTextOCR(workers int) *textOCR {
	p, err := ocr.NewPool(ocr.Config{Engines: workers})
	if err != nil {
		why := "no OCR: " + err.Error()
		if errors.Is(err, ocr.ErrUnavailable) {
			why = "no OCR in this build or on this machine: install tesseract-ocr and tesseract-ocr-eng (docs/burnin.md)"
		}
		return &textOCR{why: why}
	}
	return &textOCR{pool: p}
}

// engineConfig adds the OCR to an engine's configuration.
func (t *textOCR) engineConfig(c deid.Config) deid.Config {
	if t == nil {
		return c
	}
	if t.pool != nil {
		c.OCR = t.pool // a nil *ocr.Pool must not become a non-nil Reader
	}
	c.OCRWhy = t.why
	return c
}

// Describe is one line for start-up messages and `deid version`.
func (t *textOCR) Describe() string {
	if t == nil || t.pool == nil {
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
