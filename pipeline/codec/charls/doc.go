// Package charls decodes JPEG-LS frames (ISO 14495-1, lossless and
// near-lossless, 2 to 16 bits) through CharLS, the reference
// implementation used by GDCM, DCMTK, fo-dicom and pydicom (Debian's
// libcharls2). It exists in builds with cgo and the tag cgocodecs.
package charls
