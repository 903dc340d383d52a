//go:build cgocodecs && cgo

package ijg

/*
#cgo LDFLAGS: -ljpeg -lgdcmjpeg8 -lgdcmjpeg12 -lgdcmjpeg16
#include <stdlib.h>
#include "ijg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Library picks the implementation.
type Library int

// The libraries.
const (
	Turbo Library = iota // libjpeg-turbo: 8-bit DCT
	IJG8                 // GDCM's IJG, 8-bit: DCT and lossless
	IJG12                // 12-bit: DCT and lossless
	IJG16                // 16-bit: lossless only
)

// Params describe the frame the caller checked against its geometry.
type Params struct {
	Width, Height, Components int
	OutBytes                  int  // 1 or 2 bytes per output sample (little endian)
	DCT                       bool // lossy process: colour converted to RGB
}

// ErrDecode wraps the library's message.
var ErrDecode = errors.New("jpeg")

// Decode decodes src into dst (Width*Height*Components*OutBytes bytes,
// samples interleaved).
func Decode(lib Library, dst, src []byte, p Params) error {
	if len(src) == 0 || len(dst) != p.Width*p.Height*p.Components*p.OutBytes {
		return errors.New("jpeg: buffer sizes")
	}
	var msg [200]C.char
	dct := C.int(0)
	if p.DCT {
		dct = 1
	}
	args := func(f func(*C.uchar, C.size_t, *C.uchar, C.size_t, C.int, C.int, C.int, C.int, C.int, *C.char, C.int) C.int) C.int {
		return f((*C.uchar)(unsafe.Pointer(&src[0])), C.size_t(len(src)), (*C.uchar)(unsafe.Pointer(&dst[0])), C.size_t(len(dst)),
			C.int(p.Width), C.int(p.Height), C.int(p.Components), C.int(p.OutBytes), dct, &msg[0], C.int(len(msg)))
	}
	var rc C.int
	switch lib {
	case Turbo:
		rc = args(func(a *C.uchar, b C.size_t, c *C.uchar, d C.size_t, e, f, g, h, i C.int, j *C.char, k C.int) C.int {
			return C.dd_turbo_decode(a, b, c, d, e, f, g, h, i, j, k)
		})
	case IJG8:
		rc = args(func(a *C.uchar, b C.size_t, c *C.uchar, d C.size_t, e, f, g, h, i C.int, j *C.char, k C.int) C.int {
			return C.dd_ijg8_decode(a, b, c, d, e, f, g, h, i, j, k)
		})
	case IJG12:
		rc = args(func(a *C.uchar, b C.size_t, c *C.uchar, d C.size_t, e, f, g, h, i C.int, j *C.char, k C.int) C.int {
			return C.dd_ijg12_decode(a, b, c, d, e, f, g, h, i, j, k)
		})
	case IJG16:
		rc = args(func(a *C.uchar, b C.size_t, c *C.uchar, d C.size_t, e, f, g, h, i C.int, j *C.char, k C.int) C.int {
			return C.dd_ijg16_decode(a, b, c, d, e, f, g, h, i, j, k)
		})
	default:
		return errors.New("jpeg: unknown library")
	}
	if rc != 0 {
		return fmt.Errorf("%w: %s", ErrDecode, C.GoString(&msg[0]))
	}
	return nil
}

// Version names the libraries.
func Version() string {
	v := int(C.dd_turbo_version())
	return fmt.Sprintf("libjpeg-turbo %d.%d.%d (8-bit DCT), GDCM's IJG 6b (12-bit DCT, lossless 2-16 bits)", v/1000000, v/1000%1000, v%1000)
}
