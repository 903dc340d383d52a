// Package openjpeg decodes JPEG 2000 frames (ISO 15444-1, lossless and
// lossy, and High-Throughput JPEG 2000, ISO 15444-15) through OpenJPEG,
// the reference implementation (Debian's libopenjp2-7, 2.5: HTJ2K
// decoding included). It exists in builds with cgo and the tag cgocodecs.
package openjpeg
