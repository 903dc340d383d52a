//go:build cgocodecs && cgo

package openjpeg

/*
#cgo CFLAGS: -I/usr/include/openjpeg-2.5
#cgo LDFLAGS: -lopenjp2
#include <openjpeg.h>
#include "openjpeg_dd.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrDecode wraps OpenJPEG's message.
var ErrDecode = errors.New("jpeg 2000")

// Decode decodes a J2K codestream into dst: width*height pixels of comps
// samples of bytes each (little endian), interleaved by pixel. The
// inverse component transform (YBR_ICT/RCT) is applied when the stream
// says so.
func Decode(dst, src []byte, width, height, comps, bytes int) error {
	if len(src) == 0 || len(dst) != width*height*comps*bytes {
		return errors.New("jpeg 2000: buffer sizes")
	}
	var msg [200]C.char
	rc := C.dd_opj_decode((*C.uchar)(unsafe.Pointer(&src[0])), C.size_t(len(src)), (*C.uchar)(unsafe.Pointer(&dst[0])), C.size_t(len(dst)),
		C.int(width), C.int(height), C.int(comps), C.int(bytes), &msg[0], C.int(len(msg)))
	if rc != 0 {
		return fmt.Errorf("%w: %s", ErrDecode, C.GoString(&msg[0]))
	}
	return nil
}

// Version names the library.
func Version() string { return "OpenJPEG " + C.GoString(C.opj_version()) }
