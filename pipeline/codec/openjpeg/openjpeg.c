//go:build cgocodecs && cgo

#include <openjpeg.h>
#include <stdio.h>
#include <string.h>
#include "openjpeg_dd.h"

struct dd_mem {
	const unsigned char *p;
	size_t n, at;
};

static OPJ_SIZE_T dd_read(void *buf, OPJ_SIZE_T len, void *u) {
	struct dd_mem *m = (struct dd_mem *)u;
	size_t left = m->n - m->at;
	if (left == 0) return (OPJ_SIZE_T)-1;
	if (len > left) len = left;
	memcpy(buf, m->p + m->at, len);
	m->at += len;
	return len;
}
static OPJ_OFF_T dd_skip(OPJ_OFF_T k, void *u) {
	struct dd_mem *m = (struct dd_mem *)u;
	if (k < 0) {
		if ((size_t)(-k) > m->at) return -1;
	} else if ((size_t)k > m->n - m->at) {
		k = (OPJ_OFF_T)(m->n - m->at);
	}
	m->at += k;
	return k;
}
static OPJ_BOOL dd_seek(OPJ_OFF_T k, void *u) {
	struct dd_mem *m = (struct dd_mem *)u;
	if (k < 0 || (size_t)k > m->n) return OPJ_FALSE;
	m->at = (size_t)k;
	return OPJ_TRUE;
}

struct dd_msg {
	char *msg;
	int len, set;
};
static void dd_error(const char *s, void *u) {
	struct dd_msg *m = (struct dd_msg *)u;
	if (!m->set) {
		size_t l;
		snprintf(m->msg, m->len, "%s", s);
		l = strlen(m->msg);
		if (l > 0 && m->msg[l - 1] == '\n') m->msg[l - 1] = 0;
		m->set = 1;
	}
}
static void dd_quiet(const char *s, void *u) {
	(void)s;
	(void)u;
}

int dd_opj_decode(const unsigned char *src, size_t n, unsigned char *dst, size_t dstlen, int width, int height,
                  int comps, int bytes, char *msg, int msglen) {
	struct dd_mem mem = {src, n, 0};
	struct dd_msg em = {msg, msglen, 0};
	opj_dparameters_t par;
	opj_codec_t *c = NULL;
	opj_stream_t *s = NULL;
	opj_image_t *im = NULL;
	int rc = 1, i;
	size_t p, np = (size_t)width * height;

	if ((size_t)width * height * comps * bytes != dstlen) {
		snprintf(msg, msglen, "destination size");
		return 2;
	}
	c = opj_create_decompress(OPJ_CODEC_J2K);
	s = opj_stream_create(64 * 1024, OPJ_TRUE);
	if (!c || !s) {
		snprintf(msg, msglen, "out of memory");
		rc = 3;
		goto done;
	}
	opj_set_error_handler(c, dd_error, &em);
	opj_set_warning_handler(c, dd_quiet, NULL);
	opj_set_info_handler(c, dd_quiet, NULL);
	opj_set_default_decoder_parameters(&par);
	if (!opj_setup_decoder(c, &par)) goto fail;
	opj_decoder_set_strict_mode(c, OPJ_TRUE); /* a truncated stream is an error */
	opj_codec_set_threads(c, 1);              /* one core per frame: the workers share the machine */
	opj_stream_set_user_data(s, &mem, NULL);
	opj_stream_set_user_data_length(s, n);
	opj_stream_set_read_function(s, dd_read);
	opj_stream_set_skip_function(s, dd_skip);
	opj_stream_set_seek_function(s, dd_seek);
	if (!opj_read_header(s, c, &im)) goto fail;
	/* The header against the DICOM geometry, before any tile is decoded. */
	if ((int)(im->x1 - im->x0) != width || (int)(im->y1 - im->y0) != height || (int)im->numcomps != comps) {
		snprintf(msg, msglen, "JPEG 2000 header disagrees with the geometry");
		rc = 2;
		goto done;
	}
	for (i = 0; i < comps; i++) {
		if (im->comps[i].dx != 1 || im->comps[i].dy != 1 || im->comps[i].prec > (OPJ_UINT32)(8 * bytes)) {
			snprintf(msg, msglen, "JPEG 2000 component %d disagrees with the geometry", i + 1);
			rc = 2;
			goto done;
		}
	}
	if (!opj_decode(c, s, im)) goto fail;
	if (!opj_end_decompress(c, s)) goto fail;
	for (i = 0; i < comps; i++) {
		if ((int)im->comps[i].w != width || (int)im->comps[i].h != height || !im->comps[i].data) {
			snprintf(msg, msglen, "JPEG 2000 component %d decoded to another size", i + 1);
			rc = 2;
			goto done;
		}
	}
	for (i = 0; i < comps; i++) {
		const OPJ_INT32 *d = im->comps[i].data;
		if (bytes == 1) {
			for (p = 0; p < np; p++) dst[p * comps + i] = (unsigned char)d[p];
		} else {
			for (p = 0; p < np; p++) {
				unsigned v = (unsigned)d[p];
				dst[2 * (p * comps + i)] = (unsigned char)v;
				dst[2 * (p * comps + i) + 1] = (unsigned char)(v >> 8);
			}
		}
	}
	rc = 0;
	goto done;
fail:
	if (!em.set) snprintf(msg, msglen, "JPEG 2000 codestream does not decode");
	rc = 1;
done:
	if (im) opj_image_destroy(im);
	if (s) opj_stream_destroy(s);
	if (c) opj_destroy_codec(c);
	return rc;
}
