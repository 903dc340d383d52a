//go:build cgocodecs && cgo

#include <charls/charls.h>
#include <stdio.h>
#include <string.h>
#include "charls_dd.h"

int dd_charls_decode(const void *src, size_t n, void *dst, size_t dstlen, int width, int height,
                     int comps, int bytes, int *planar, char *msg, int msglen) {
	charls_jpegls_decoder *d = charls_jpegls_decoder_create();
	charls_frame_info fi;
	charls_interleave_mode ilv;
	size_t need = 0;
	charls_jpegls_errc e;
	int rc = 1;
	if (!d) {
		snprintf(msg, msglen, "out of memory");
		return 3;
	}
	e = charls_jpegls_decoder_set_source_buffer(d, src, n);
	if (!e) e = charls_jpegls_decoder_read_header(d);
	if (!e) e = charls_jpegls_decoder_get_frame_info(d, &fi);
	if (!e) e = charls_jpegls_decoder_get_interleave_mode(d, &ilv);
	if (e) {
		snprintf(msg, msglen, "%s", charls_get_error_message(e));
		goto done;
	}
	/* The header against the DICOM geometry, before CharLS allocates. */
	if ((int)fi.width != width || (int)fi.height != height || fi.component_count != comps ||
	    fi.bits_per_sample < 2 || fi.bits_per_sample > 16 || (fi.bits_per_sample > 8 ? 2 : 1) != bytes) {
		snprintf(msg, msglen, "JPEG-LS header disagrees with the geometry");
		rc = 2;
		goto done;
	}
	e = charls_jpegls_decoder_get_destination_size(d, 0, &need);
	if (e || need != dstlen) {
		snprintf(msg, msglen, "JPEG-LS output size disagrees with the geometry");
		rc = 2;
		goto done;
	}
	e = charls_jpegls_decoder_decode_to_buffer(d, dst, dstlen, 0);
	if (e) {
		snprintf(msg, msglen, "%s", charls_get_error_message(e));
		goto done;
	}
	*planar = (comps > 1 && ilv == CHARLS_INTERLEAVE_MODE_NONE);
	rc = 0;
done:
	charls_jpegls_decoder_destroy(d);
	return rc;
}

int dd_charls_encode(const void *src, size_t n, void *dst, size_t dstcap, size_t *written, int width, int height,
                     int comps, int bits, char *msg, int msglen) {
	charls_jpegls_encoder *e = charls_jpegls_encoder_create();
	charls_frame_info fi;
	charls_jpegls_errc err;
	if (!e) {
		snprintf(msg, msglen, "out of memory");
		return 3;
	}
	fi.width = (uint32_t)width;
	fi.height = (uint32_t)height;
	fi.bits_per_sample = bits;
	fi.component_count = comps;
	err = charls_jpegls_encoder_set_frame_info(e, &fi);
	if (!err) err = charls_jpegls_encoder_set_near_lossless(e, 0);
	if (!err && comps > 1) err = charls_jpegls_encoder_set_interleave_mode(e, CHARLS_INTERLEAVE_MODE_SAMPLE);
	if (!err) err = charls_jpegls_encoder_set_destination_buffer(e, dst, dstcap);
	if (!err) err = charls_jpegls_encoder_encode_from_buffer(e, src, n, 0);
	if (!err) err = charls_jpegls_encoder_get_bytes_written(e, written);
	if (err) snprintf(msg, msglen, "%s", charls_get_error_message(err));
	charls_jpegls_encoder_destroy(e);
	return err ? 1 : 0;
}
