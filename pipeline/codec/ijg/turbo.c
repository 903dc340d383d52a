//go:build cgocodecs && cgo

#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#define DD_NAME dd_turbo_decode
#include "decode_impl.h"

int dd_turbo_version(void) { return LIBJPEG_TURBO_VERSION_NUMBER; }
