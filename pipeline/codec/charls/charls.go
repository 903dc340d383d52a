//go:build cgocodecs && cgo

package charls

/*
#cgo LDFLAGS: -lcharls
#include <charls/charls.h>
#include "charls_dd.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrDecode wraps CharLS's message.
var ErrDecode = errors.New("jpeg-ls")

// Decode decodes src into dst: width*height*comps samples of bytes (1 for
// up to 8 bits, 2 little endian), interleaved by pixel whatever the
// stream's interleave mode. tmp, when large enough, is scratch space.
func Decode(dst, src []byte, width, height, comps, bytes int) error {
	if len(src) == 0 || len(dst) != width*height*comps*bytes {
		return errors.New("jpeg-ls: buffer sizes")
	}
	var msg [200]C.char
	var planar C.int
	out := dst
	if comps > 1 {
		out = make([]byte, len(dst)) // planar streams are interleaved below
	}
	rc := C.dd_charls_decode(unsafe.Pointer(&src[0]), C.size_t(len(src)), unsafe.Pointer(&out[0]), C.size_t(len(out)),
		C.int(width), C.int(height), C.int(comps), C.int(bytes), &planar, &msg[0], C.int(len(msg)))
	if rc != 0 {
		return fmt.Errorf("%w: %s", ErrDecode, C.GoString(&msg[0]))
	}
	if comps == 1 {
		return nil
	}
	if planar == 0 {
		copy(dst, out)
		return nil
	}
	plane := width * height * bytes
	for c := 0; c < comps; c++ {
		for p := 0; p < width*height; p++ {
			copy(dst[(p*comps+c)*bytes:(p*comps+c+1)*bytes], out[c*plane+p*bytes:c*plane+(p+1)*bytes])
		}
	}
	return nil
}

// Version names the library.
func Version() string { return "CharLS " + C.GoString(C.charls_get_version_string()) }

// Encode appends the lossless JPEG-LS encoding of src (width*height
// pixels of comps interleaved samples of bits precision, 1 or 2 bytes
// each, little endian) to dst.
func Encode(dst, src []byte, width, height, comps, bits int) ([]byte, error) {
	if len(src) == 0 {
		return nil, errors.New("jpeg-ls: empty frame")
	}
	var msg [200]C.char
	capacity := len(src) + len(src)/2 + 1024 // CharLS needs at most a little more than the raw size
	start := len(dst)
	dst = append(dst, make([]byte, capacity)...)
	var written C.size_t
	rc := C.dd_charls_encode(unsafe.Pointer(&src[0]), C.size_t(len(src)), unsafe.Pointer(&dst[start]), C.size_t(capacity), &written,
		C.int(width), C.int(height), C.int(comps), C.int(bits), &msg[0], C.int(len(msg)))
	if rc != 0 {
		return nil, fmt.Errorf("%w: encode: %s", ErrDecode, C.GoString(&msg[0]))
	}
	return dst[:start+int(written)], nil
}
