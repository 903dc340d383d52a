//go:build cgocodecs && cgo

#include <stdio.h>
/* GDCM's IJG is built with its internal options (lossless: the memory
 * manager has alloc_darray); without them the header's structs are
 * smaller than the library's. */
#define JPEG_INTERNAL_OPTIONS
#include <gdcm-3.0/gdcmjpeg/16/jpeglib.h>
#include <gdcm-3.0/gdcmjpeg/16/jerror.h>
#define DD_NAME dd_ijg16_decode
#include "decode_impl.h"
