// Package dicomraw reads DICOM files into a tree of elements that remembers
// where every byte came from, and writes them back byte for byte except where
// the caller changed something. Values that are not needed (Pixel Data, large
// binary values) are never loaded: the writer copies them from the source.
//
// Why not github.com/suyashkumar/dicom's Parse/Write: it re-encodes every
// value from decoded Go values (non-ASCII text, OF/OD/OL, big-endian OW, the
// Basic Offset Table and leading spaces are changed), silently accepts
// truncated files, and allocates from untrusted lengths
// (see ../../../shared/research/dicomlib.md). This package checks every
// length against the bytes that are left before it reads or allocates, and
// bounds nesting, element counts and value sizes.
package dicomraw

import "io"

// Tag is a DICOM tag as group<<16 | element.
type Tag uint32

// NewTag builds a tag from its group and element.
func NewTag(group, element uint16) Tag { return Tag(uint32(group)<<16 | uint32(element)) }

// Group is the tag's group number.
func (t Tag) Group() uint16 { return uint16(t >> 16) }

// Element is the tag's element number.
func (t Tag) Element() uint16 { return uint16(t) }

// IsPrivate reports an odd group (private data element or private creator).
func (t Tag) IsPrivate() bool { return t.Group()&1 == 1 }

// IsPrivateCreator reports a private creator element (gggg,0010-00FF).
func (t Tag) IsPrivateCreator() bool {
	return t.IsPrivate() && t.Element() >= 0x0010 && t.Element() <= 0x00FF
}

// String formats the tag as (GGGG,EEEE).
func (t Tag) String() string {
	b := make([]byte, 0, 11)
	b = append(b, '(')
	b = AppendHex(b, uint64(t.Group()), 4)
	b = append(b, ',')
	b = AppendHex(b, uint64(t.Element()), 4)
	return string(append(b, ')'))
}

// AppendHex appends the low digits hexadecimal digits of v, upper case,
// to dst: tags and paths are formatted for every element of every file,
// and fmt is the slow way.
func AppendHex(dst []byte, v uint64, digits int) []byte {
	const hex = "0123456789ABCDEF"
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hex[v>>(4*uint(i))&15])
	}
	return dst
}

// Hex is AppendHex as a string.
func Hex(v uint64, digits int) string { return string(AppendHex(make([]byte, 0, digits), v, digits)) }

// Special tags of the encoding itself.
const (
	TagItem              Tag = 0xFFFEE000
	TagItemDelimitation  Tag = 0xFFFEE00D
	TagSequenceDelimiter Tag = 0xFFFEE0DD
	TagPixelData         Tag = 0x7FE00010
	TagTransferSyntaxUID Tag = 0x00020010
	TagSpecificCharSet   Tag = 0x00080005
)

// Undefined is the value length meaning "undefined, delimited".
const Undefined uint32 = 0xFFFFFFFF

// Encoding is how the elements of one dataset or item are encoded.
type Encoding struct {
	Implicit  bool
	BigEndian bool
}

// Element is one data element as found in the source.
type Element struct {
	Tag Tag
	// VR as written in the file (explicit VR) or taken from the dictionary
	// (implicit VR; "UN" when the dictionary does not know the tag).
	VR string
	// Enc is the encoding of this element's header (that of its container).
	Enc Encoding
	// Offset is where the element's header starts; ValueOffset where its
	// value starts; End is just past the element, including any
	// delimitation item of an undefined-length value.
	Offset, ValueOffset, End int64
	// Length is the value length as written (Undefined for delimited values).
	Length uint32
	// Items of a sequence (VR SQ, or UN/private values that hold a sequence).
	Items []*Item
	// ItemsEnc is the encoding inside Items: implicit LE for a UN sequence
	// (CP-246) or a sequence found inside an implicit-VR private value.
	ItemsEnc Encoding
	// Fragments of an encapsulated value (undefined-length Pixel Data).
	Fragments []Fragment
	// Value holds the value bytes when they were loaded (not for
	// sequences, encapsulated values, or values over Limits.MaxValueInMemory).
	Value []byte
	// Loaded tells that Value holds the whole value.
	Loaded bool

	// Output plan, set by the editor before writing.
	Op       Op
	NewVR    string // VR to write with OpReplace (default: VR)
	NewValue []byte // value to write with OpReplace (padding added by the writer)
	// NewLength and Stream: the value of OpStream.
	NewLength uint32
	Stream    func(w io.Writer) error

	dirty bool // something inside the sequence changed (set by the writer)
}

// IsSequence reports that the element was parsed as a sequence.
func (e *Element) IsSequence() bool { return e.Items != nil || (e.VR == "SQ") }

// IsEncapsulated reports an encapsulated (fragmented) value.
func (e *Element) IsEncapsulated() bool { return e.Fragments != nil }

// ValueLength is the number of value bytes in the source (for undefined
// length values: everything up to the delimiter).
func (e *Element) ValueLength() int64 {
	if e.Length != Undefined {
		return int64(e.Length)
	}
	return e.End - e.ValueOffset - 8
}

// Item is one item of a sequence.
type Item struct {
	Offset, End int64
	Length      uint32 // as written (Undefined for delimited items)
	Elements    []*Element
	// Insert holds new elements the editor adds to this item; the writer
	// merges them in tag order.
	Insert []*Element
	// Removed tells the writer to drop the whole item.
	Removed bool

	dirty bool
}

// Fragment is one item of an encapsulated value (the first is the Basic
// Offset Table).
type Fragment struct {
	Offset int64 // of the item header
	Length uint32
}

// Op is what the writer does with an element.
type Op uint8

// Output operations.
const (
	// OpKeep copies the element's bytes from the source unchanged, unless a
	// descendant item or element was changed, in which case the sequence is
	// re-emitted around the unchanged parts.
	OpKeep Op = iota
	// OpRemove drops the element.
	OpRemove
	// OpReplace writes the element with NewValue (and NewVR if set).
	OpReplace
	// OpEmptySequence writes the sequence with zero items.
	OpEmptySequence
	// OpStream writes the element's header with VR and NewLength
	// (Undefined for an encapsulated value), then whatever Stream writes:
	// a value rewritten on the fly, a frame at a time (masked Pixel Data).
	// Stream must write exactly NewLength bytes when it is defined, and
	// the items and the sequence delimiter when it is not.
	OpStream
)
