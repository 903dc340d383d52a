//go:build cgocodecs && cgo

#include <stdio.h>
/* GDCM's IJG is built with its internal options (lossless: the memory
 * manager has alloc_darray); without them the header's structs are
 * smaller than the library's. */
#define JPEG_INTERNAL_OPTIONS
#include <gdcm-3.0/gdcmjpeg/12/jpeglib.h>
#include <gdcm-3.0/gdcmjpeg/12/jerror.h>
#define DD_NAME dd_ijg12_decode
#include "decode_impl.h"
