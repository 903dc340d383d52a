#include <stddef.h>
/* Decodes one JPEG-LS frame; *planar tells that the output is one plane
 * per component (interleave mode none). 0, or non-zero with a message. */
int dd_charls_decode(const void *src, size_t n, void *dst, size_t dstlen, int width, int height,
                     int comps, int bytes, int *planar, char *msg, int msglen);
/* Encodes one frame losslessly (NEAR 0, samples interleaved). */
int dd_charls_encode(const void *src, size_t n, void *dst, size_t dstcap, size_t *written, int width, int height,
                     int comps, int bits, char *msg, int msglen);
