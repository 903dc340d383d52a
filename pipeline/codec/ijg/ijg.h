/* JPEG decoders of this package, one per library build. Each returns 0,
 * or non-zero with a message (the library's, never the data's). */
#include <stddef.h>
#define DD_ARGS const unsigned char *src, size_t n, unsigned char *dst, size_t dstlen, \
	int width, int height, int comps, int out_bytes, int dct, char *msg, int msglen
int dd_turbo_decode(DD_ARGS);
int dd_ijg8_decode(DD_ARGS);
int dd_ijg12_decode(DD_ARGS);
int dd_ijg16_decode(DD_ARGS);
int dd_turbo_version(void); /* e.g. 2001005 */
