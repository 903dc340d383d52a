// Package bombs builds resource-exhaustion DICOM files: deflate bombs (a
// few megabytes that inflate to gigabytes) and element bombs (a small
// deflated file holding millions of elements or items). Tests and the
// bound measurements of docs/limits.md use them to show that the engine
// and the services refuse them within their memory and disk bounds. No
// product code imports it.
//
// Every file is a well-formed Part 10 Secondary Capture instance in the
// Deflated Explicit VR Little Endian transfer syntax up to the bomb
// itself, so that it reaches the parser's limits rather than failing an
// earlier check. Nothing in it identifies anyone.
package bombs

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
)

// Identifiers of every bomb (a 2.25 UUID-derived root: nobody's UID).
const (
	SOPClassUID    = "1.2.840.10008.5.1.4.1.1.7" // Secondary Capture Image Storage
	StudyUID       = "2.25.311146472539906286935812547452437513721"
	SeriesUID      = "2.25.311146472539906286935812547452437513722"
	deflatedSyntax = "1.2.840.10008.1.2.1.99"
	maxValue       = 0xFFFFFFFE // the largest defined value length
	zeroChunk      = 1 << 20    // zeros per deflate block group
)

// Deflate is a deflated file whose dataset inflates to about inflated
// bytes: a few ordinary elements, then private OB values of zeros (as
// many as the length field needs; each at most 4 GiB - 2). The ratio is
// near deflate's maximum (about 1,000:1): 4 GiB come from about 4.2 MB.
// sop names the instance (a UID).
func Deflate(sop string, inflated int64) []byte {
	head := dataset(sop)
	head = elem(head, 0x00090010, "LO", "DICOMDEID BOMB")
	left := inflated - int64(len(head))
	z := newStream()
	el := uint16(0x1000)
	for left > 0 {
		n := min(left-12, maxValue&^1)
		if n < 0 {
			n = 0
		}
		head = header(head, uint32(0x0009)<<16|uint32(el), "OB", uint32(n))
		z.bytes(head)
		head = head[:0]
		z.zeros(n)
		left -= 12 + n
		el++
	}
	return part10(sop, z.close())
}

// Elements is a deflated file with n empty private elements after the
// ordinary ones: about 8 bytes each inflated, a few bits deflated (5
// million elements are about 60 KB).
func Elements(sop string, n int) []byte {
	head := dataset(sop)
	head = elem(head, 0x00090010, "LO", "DICOMDEID BOMB")
	z := newStream()
	z.bytes(head)
	one := header(nil, 0x00091010, "LO", 0)
	z.repeat(one, n)
	return part10(sop, z.close())
}

// Items is a deflated file with one private sequence of n empty items.
func Items(sop string, n int) []byte {
	head := dataset(sop)
	head = elem(head, 0x00090010, "LO", "DICOMDEID BOMB")
	head = header(head, 0x00091010, "SQ", 0xFFFFFFFF)
	z := newStream()
	z.bytes(head)
	z.repeat(header(nil, 0xFFFEE000, "", 0), n)
	z.bytes(header(nil, 0xFFFEE0DD, "", 0))
	return part10(sop, z.close())
}

// Values is a deflated file whose n items each hold distinct identifying
// values (an institution, a name, an ID): the verifier looks for every
// one of them in the output, so each costs far more than its element.
func Values(sop string, n int) []byte {
	z := newStream()
	// (0008,1111) Referenced Performed Procedure Step Sequence, in tag
	// order between the 0008 and the 0010 groups.
	z.bytes(header(general(sop), 0x00081111, "SQ", 0xFFFFFFFF))
	var items []byte
	for i := 0; i < n; i++ {
		var it []byte
		it = elem(it, 0x00080080, "LO", fmt.Sprintf("INSTITUTION %d", i))
		it = elem(it, 0x00080090, "PN", fmt.Sprintf("DOCTOR%d^BOMB", i))
		it = elem(it, 0x00100020, "LO", fmt.Sprintf("ID-%d", i))
		items = header(items, 0xFFFEE000, "", uint32(len(it)))
		items = append(items, it...)
		if len(items) > zeroChunk {
			z.bytes(items)
			items = items[:0]
		}
	}
	items = header(items, 0xFFFEE0DD, "", 0)
	z.bytes(append(items, patientStudy()...))
	return part10(sop, z.close())
}

// dataset is the ordinary start of every bomb, in tag order.
func dataset(sop string) []byte { return append(general(sop), patientStudy()...) }

// general is the bomb's 0008 group.
func general(sop string) []byte {
	var b []byte
	b = elem(b, 0x00080016, "UI", SOPClassUID)
	b = elem(b, 0x00080018, "UI", sop)
	return elem(b, 0x00080060, "CS", "OT")
}

// patientStudy is the bomb's patient and study.
func patientStudy() []byte {
	var b []byte
	b = elem(b, 0x00100010, "PN", "BOMB^TEST")
	b = elem(b, 0x00100020, "LO", "BOMB-0001")
	b = elem(b, 0x0020000D, "UI", StudyUID)
	return elem(b, 0x0020000E, "UI", SeriesUID)
}

// stream is a raw deflate stream built from independently compressed,
// byte-aligned pieces: each piece refers only to its own bytes, so pieces
// can be repeated without compressing gigabytes.
type stream struct {
	out bytes.Buffer
}

func newStream() *stream { return &stream{} }

// piece appends data compressed by a fresh writer, flushed (not final).
func (s *stream) piece(data []byte) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		panic(err) // only for a bad level
	}
	w.Write(data) //nolint:errcheck // bytes.Buffer
	w.Flush()     //nolint:errcheck
	return b.Bytes()
}

func (s *stream) bytes(b []byte) { s.out.Write(s.piece(b)) }

// zeros appends n zero bytes.
func (s *stream) zeros(n int64) {
	if n <= 0 {
		return
	}
	chunk := s.piece(make([]byte, zeroChunk))
	for ; n >= zeroChunk; n -= zeroChunk {
		s.out.Write(chunk)
	}
	s.bytes(make([]byte, n))
}

// repeat appends unit n times.
func (s *stream) repeat(unit []byte, n int) {
	per := max(1, zeroChunk/len(unit))
	block := bytes.Repeat(unit, per)
	chunk := s.piece(block)
	for ; n >= per; n -= per {
		s.out.Write(chunk)
	}
	s.bytes(bytes.Repeat(unit, n))
}

// close ends the stream with an empty final block.
func (s *stream) close() []byte {
	w, _ := flate.NewWriter(&s.out, flate.BestCompression)
	w.Close() //nolint:errcheck // bytes.Buffer
	return s.out.Bytes()
}

// part10 wraps a deflated dataset in a preamble, "DICM" and File Meta.
func part10(sop string, body []byte) []byte {
	var meta []byte
	meta = elem(meta, 0x00020001, "OB", "\x00\x01")
	meta = elem(meta, 0x00020002, "UI", SOPClassUID)
	meta = elem(meta, 0x00020003, "UI", sop)
	meta = elem(meta, 0x00020010, "UI", deflatedSyntax)
	out := make([]byte, 128, 132+12+len(meta)+len(body))
	out = append(out, "DICM"...)
	out = header(out, 0x00020000, "UL", 4)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(meta)))
	out = append(out, meta...)
	return append(out, body...)
}

// header appends an explicit VR little endian element header (an item
// or delimiter header when vr is "").
func header(b []byte, tag uint32, vr string, length uint32) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(tag>>16))
	b = binary.LittleEndian.AppendUint16(b, uint16(tag))
	switch vr {
	case "":
		return binary.LittleEndian.AppendUint32(b, length)
	case "OB", "OW", "UN", "SQ", "UT", "UC", "UR":
		b = append(b, vr[0], vr[1], 0, 0)
		return binary.LittleEndian.AppendUint32(b, length)
	}
	if length > 0xFFFF {
		panic(fmt.Sprintf("bombs: length %d too long for %s", length, vr))
	}
	b = append(b, vr[0], vr[1])
	return binary.LittleEndian.AppendUint16(b, uint16(length))
}

// elem appends a whole element, its value padded to even length.
func elem(b []byte, tag uint32, vr, v string) []byte {
	if len(v)%2 == 1 {
		if vr == "UI" || vr == "OB" {
			v += "\x00"
		} else {
			v += " "
		}
	}
	return append(header(b, tag, vr, uint32(len(v))), v...)
}
