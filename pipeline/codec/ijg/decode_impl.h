/* One JPEG decoder body, compiled once per library (libjpeg-turbo and
 * GDCM's IJG 8, 12 and 16-bit builds): each including .c file sets
 * DD_NAME and includes its own jpeglib.h first. Errors longjmp back here
 * (IJG's error_exit must not return); corrupt-data warnings are errors
 * too, so a damaged frame is refused rather than filled with grey. */
#include <setjmp.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include "ijg.h"

struct dd_err {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	int fatal_warning;
	char *msg;
	int msglen;
};

static void dd_error_exit(j_common_ptr c) {
	struct dd_err *e = (struct dd_err *)c->err;
	char buf[JMSG_LENGTH_MAX];
	(*c->err->format_message)(c, buf);
	snprintf(e->msg, e->msglen, "%s", buf);
	longjmp(e->jb, 1);
}

static void dd_emit(j_common_ptr c, int level) {
	struct dd_err *e = (struct dd_err *)c->err;
	if (level >= 0 || e->fatal_warning) return; /* trace messages; first warning kept */
	switch (c->err->msg_code) {
	case JWRN_EXTRANEOUS_DATA: /* stray bytes before a marker: harmless, common */
	case JWRN_JFIF_MAJOR:
	case JWRN_ADOBE_XFORM:
		return;
	}
	{
		char buf[JMSG_LENGTH_MAX];
		(*c->err->format_message)(c, buf);
		snprintf(e->msg, e->msglen, "%s", buf);
	}
	e->fatal_warning = 1;
}

static void dd_output(j_common_ptr c) { (void)c; }

/* A source manager over one buffer (IJG 6b has no jpeg_mem_src). */
static void dd_init_source(j_decompress_ptr d) { (void)d; }
static const JOCTET dd_eoi[2] = {0xFF, JPEG_EOI};
static boolean dd_fill(j_decompress_ptr d) {
	/* Past the end: a fake EOI, and the truncation shows as a warning. */
	WARNMS(d, JWRN_JPEG_EOF);
	d->src->next_input_byte = dd_eoi;
	d->src->bytes_in_buffer = 2;
	return TRUE;
}
static void dd_skip(j_decompress_ptr d, long n) {
	if (n <= 0) return;
	while (n > (long)d->src->bytes_in_buffer) {
		n -= (long)d->src->bytes_in_buffer;
		(void)dd_fill(d);
	}
	d->src->next_input_byte += n;
	d->src->bytes_in_buffer -= n;
}
static void dd_term(j_decompress_ptr d) { (void)d; }

int DD_NAME(const unsigned char *src, size_t n, unsigned char *dst, size_t dstlen,
            int width, int height, int comps, int out_bytes, int dct, char *msg, int msglen) {
	struct jpeg_decompress_struct d;
	struct dd_err e;
	struct jpeg_source_mgr sm;
	JSAMPROW row = NULL;
	int rc = 0;

	memset(&d, 0, sizeof d);
	memset(&e, 0, sizeof e);
	e.msg = msg;
	e.msglen = msglen;
	d.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = dd_error_exit;
	e.pub.emit_message = dd_emit;
	e.pub.output_message = dd_output;
	if (setjmp(e.jb)) {
		rc = 1;
		goto done;
	}
	jpeg_create_decompress(&d);
	/* Bounded working memory: the frame was checked against its DICOM
	 * geometry; this caps what a hostile stream could still ask for. */
	d.mem->max_memory_to_use = 512L * 1024 * 1024;
	sm.init_source = dd_init_source;
	sm.fill_input_buffer = dd_fill;
	sm.skip_input_data = dd_skip;
	sm.resync_to_restart = jpeg_resync_to_restart;
	sm.term_source = dd_term;
	sm.next_input_byte = src;
	sm.bytes_in_buffer = n;
	d.src = &sm;
	jpeg_read_header(&d, TRUE);
	if ((int)d.image_width != width || (int)d.image_height != height || d.num_components != comps) {
		snprintf(msg, msglen, "JPEG header disagrees with the geometry");
		rc = 2;
		goto done;
	}
	if (comps == 3) {
		if (dct) {
			d.out_color_space = JCS_RGB; /* YCbCr converted, RGB left as is */
		} else {
			d.jpeg_color_space = JCS_UNKNOWN; /* lossless: samples as stored */
			d.out_color_space = JCS_UNKNOWN;
		}
	} else if (comps == 1) {
		d.out_color_space = JCS_GRAYSCALE;
	}
	jpeg_start_decompress(&d);
	if ((int)d.output_width != width || (int)d.output_height != height || d.output_components != comps ||
	    (size_t)width * height * comps * out_bytes != dstlen) {
		snprintf(msg, msglen, "JPEG output disagrees with the geometry");
		rc = 2;
		goto done;
	}
	row = (JSAMPROW)malloc(sizeof(JSAMPLE) * (size_t)width * comps);
	if (!row) {
		snprintf(msg, msglen, "out of memory");
		rc = 3;
		goto done;
	}
	while (d.output_scanline < d.output_height) {
		size_t y = d.output_scanline, i, k = (size_t)width * comps;
		unsigned char *out = dst + y * k * out_bytes;
		if (jpeg_read_scanlines(&d, &row, 1) != 1) {
			snprintf(msg, msglen, "JPEG scanline missing");
			rc = 1;
			goto done;
		}
		if (e.fatal_warning) {
			rc = 1;
			goto done;
		}
		if (out_bytes == 1) {
			for (i = 0; i < k; i++) out[i] = (unsigned char)row[i];
		} else {
			for (i = 0; i < k; i++) {
				unsigned v = (unsigned)(unsigned short)row[i];
				out[2 * i] = (unsigned char)v;
				out[2 * i + 1] = (unsigned char)(v >> 8);
			}
		}
	}
	jpeg_finish_decompress(&d);
	if (e.fatal_warning) rc = 1;
done:
	free(row);
	jpeg_destroy_decompress(&d);
	return rc;
}
