#include <stddef.h>
/* Decodes one JPEG 2000 codestream (J2K, not JP2) into dst: width*height
 * samples of comps components, bytes each (little endian), interleaved.
 * 0, or non-zero with a message. */
int dd_opj_decode(const unsigned char *src, size_t n, unsigned char *dst, size_t dstlen, int width, int height,
                  int comps, int bytes, char *msg, int msglen);
