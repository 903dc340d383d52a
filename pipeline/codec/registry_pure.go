//go:build !(cgocodecs && cgo)

package codec

// CGO tells that this build has the C libraries' decoders: not this one
// (built without cgo or without the tag cgocodecs). It decodes native,
// RLE and deflated frames; every other syntax is ErrUnsupported, and an
// image of those that needs decoding is held back by its caller.
const CGO = false

func buildSet() *Set { return NewSet("pure Go", pureCodecs()...) }
