//go:build !(tesseract && cgo)

package ocr

// CAPI tells that this build reads through Tesseract's C API: not this
// one (built without cgo or the tag tesseract); it runs the tesseract
// command.
const CAPI = false

// NewPool finds the tesseract command on PATH and checks that it has
// the language.
func NewPool(cfg Config) (*Pool, error) { return newCLIPool(cfg) }
