// Package ijg decodes JPEG frames (ISO 10918: baseline, extended 12-bit,
// lossless process 14) through libjpeg-turbo (8-bit DCT, SIMD) and GDCM's
// builds of the IJG library with the lossless patch (libgdcmjpeg8, 12, 16:
// 12-bit DCT and lossless of 2 to 16 bits), Debian's libjpeg62-turbo and
// libgdcm3.0. It exists in builds with cgo and the tag cgocodecs.
package ijg
