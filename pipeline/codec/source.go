package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Source is one Pixel Data element of a parsed file, with its geometry
// and where each frame's bytes are. Building it decodes nothing.
type Source struct {
	Image Image
	// Pixels is the Pixel Data element (7FE0,0010).
	Pixels *dicomraw.Element
	r      io.ReaderAt
	// frames: for encapsulated data, the fragments of each frame.
	frames [][]dicomraw.Fragment
	// ExtendedOffsets tells that the file has an Extended Offset Table
	// (7FE0,0001): it must go, or be rebuilt, when Pixel Data changes.
	ExtendedOffsets bool
}

// Tags of the Image Pixel module and the offset tables.
const (
	tagSamplesPerPixel = 0x00280002
	tagPhotometric     = 0x00280004
	tagPlanar          = 0x00280006
	tagFrames          = 0x00280008
	tagRows            = 0x00280010
	tagColumns         = 0x00280011
	tagBitsAllocated   = 0x00280100
	tagBitsStored      = 0x00280101
	tagPixelRep        = 0x00280103
	TagExtendedOffsets = 0x7FE00001
	TagExtendedLengths = 0x7FE00002
)

// ErrNoPixels is returned for a file without Pixel Data (7FE0,0010).
var ErrNoPixels = errors.New("no pixel data")

// FromFile finds the top-level Pixel Data of f and its geometry.
func FromFile(f *dicomraw.File) (*Source, error) {
	im := Image{Syntax: f.Syntax.UID, BigEndian: f.Syntax.BigEndian}
	var px, eot, eotl *dicomraw.Element
	for _, e := range f.Elements {
		switch uint32(e.Tag) {
		case tagSamplesPerPixel:
			im.SamplesPerPixel = intValue(e)
		case tagPhotometric:
			im.Photometric = strings.Trim(string(e.Value), " \x00")
		case tagPlanar:
			im.PlanarConfiguration = intValue(e)
		case tagFrames:
			im.Frames = intValue(e)
		case tagRows:
			im.Rows = intValue(e)
		case tagColumns:
			im.Columns = intValue(e)
		case tagBitsAllocated:
			im.BitsAllocated = intValue(e)
		case tagBitsStored:
			im.BitsStored = intValue(e)
		case tagPixelRep:
			im.PixelRepresentation = intValue(e)
		case TagExtendedOffsets:
			eot = e
		case TagExtendedLengths:
			eotl = e
		case uint32(dicomraw.TagPixelData):
			px = e
		}
	}
	if px == nil {
		return nil, ErrNoPixels
	}
	if im.Frames == 0 {
		im.Frames = 1
	}
	if im.SamplesPerPixel == 0 {
		im.SamplesPerPixel = 1
	}
	if im.BitsStored == 0 {
		im.BitsStored = im.BitsAllocated
	}
	s := &Source{Image: im, Pixels: px, r: f.Body, ExtendedOffsets: eot != nil}
	if err := im.Check(); err != nil {
		return s, err
	}
	if !isEncapsulated(im.Syntax) {
		if px.IsEncapsulated() {
			return s, fmt.Errorf("%w: encapsulated pixel data in a native syntax", ErrCorrupt)
		}
		need := int64(im.FrameBytes()) * int64(im.Frames)
		if im.BitsAllocated == 1 {
			need = (im.packedBits() + 7) / 8
		}
		if px.ValueLength() < need {
			return s, fmt.Errorf("%w: %d bytes of pixel data for %d frames of %d", ErrCorrupt, px.ValueLength(), im.Frames, im.FrameBytes())
		}
		return s, nil
	}
	if !px.IsEncapsulated() {
		return s, fmt.Errorf("%w: native pixel data in an encapsulated syntax", ErrCorrupt)
	}
	var offsets, lengths []uint64
	if eot != nil && eotl != nil {
		var err error
		if offsets, err = read64(f.Body, eot); err == nil {
			lengths, err = read64(f.Body, eotl)
		}
		if err != nil {
			return s, err
		}
	}
	frames, err := SplitFrames(f.Body, px.Fragments, im.Frames, im.Syntax, offsets, lengths)
	if err != nil {
		return s, err
	}
	s.frames = frames
	return s, nil
}

// intValue reads a US (either byte order) or IS value; a value that is
// not a number is -1, which no geometry check accepts.
func intValue(e *dicomraw.Element) int {
	if !e.Loaded {
		return -1
	}
	switch e.VR {
	case "US", "UN", "SS":
		if len(e.Value) >= 2 {
			if e.Enc.BigEndian {
				return int(binary.BigEndian.Uint16(e.Value))
			}
			return int(binary.LittleEndian.Uint16(e.Value))
		}
	case "IS":
		n, err := strconv.Atoi(strings.Trim(string(e.Value), " \x00"))
		if err == nil && n >= 0 {
			return n
		}
		return -1
	}
	return -1
}

// read64 reads an OV value (the Extended Offset Table and its lengths).
func read64(r io.ReaderAt, e *dicomraw.Element) ([]uint64, error) {
	n := e.ValueLength()
	if e.Length == dicomraw.Undefined || n%8 != 0 || n > 8<<20 {
		return nil, fmt.Errorf("%w: extended offset table of %d bytes", ErrCorrupt, n)
	}
	b := e.Value
	if !e.Loaded {
		b = make([]byte, n)
		if _, err := r.ReadAt(b, e.ValueOffset); err != nil {
			return nil, fmt.Errorf("%w: extended offset table unreadable", ErrCorrupt)
		}
	}
	out := make([]uint64, n/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out, nil
}

// SplitFrames groups the fragments of an encapsulated value (the first is
// the Basic Offset Table) by frame, following PS3.5 A.4: the Extended
// Offset Table when there is one, else the Basic Offset Table when it is
// not empty, else one fragment per frame, all fragments for one frame,
// or — frames over several fragments without a table — a new frame at
// each fragment that starts a codestream (JPEG SOI, JPEG 2000 SOC).
// Anything inconsistent is refused: a frame boundary guessed wrong would
// decode, and mask, the wrong pixels.
func SplitFrames(r io.ReaderAt, frags []dicomraw.Fragment, frames int, ts string, extOffsets, extLengths []uint64) ([][]dicomraw.Fragment, error) {
	if len(frags) < 2 {
		return nil, fmt.Errorf("%w: encapsulated pixel data without fragments", ErrCorrupt)
	}
	bot, items := frags[0], frags[1:]
	// Where each item starts, relative to the first item after the BOT.
	pos := make([]uint64, len(items)+1)
	base := items[0].Offset
	for i, it := range items {
		pos[i] = uint64(it.Offset - base)
	}
	pos[len(items)] = uint64(items[len(items)-1].Offset+8+int64(items[len(items)-1].Length)) - uint64(base)
	byOffsets := func(starts []uint64) ([][]dicomraw.Fragment, error) {
		out := make([][]dicomraw.Fragment, 0, frames)
		k := 0
		for f, st := range starts {
			if k >= len(items) || pos[k] != st {
				return nil, fmt.Errorf("%w: offset table entry %d does not point at a fragment", ErrCorrupt, f+1)
			}
			end := pos[len(items)]
			if f+1 < len(starts) {
				end = starts[f+1]
			}
			j := k
			for j < len(items) && pos[j] < end {
				j++
			}
			if j == k || (j < len(items) && pos[j] != end) {
				return nil, fmt.Errorf("%w: offset table entry %d", ErrCorrupt, f+2)
			}
			out = append(out, items[k:j])
			k = j
		}
		if k != len(items) {
			return nil, fmt.Errorf("%w: fragments after the last frame", ErrCorrupt)
		}
		return out, nil
	}
	switch {
	case extOffsets != nil:
		if len(extOffsets) != frames || len(extLengths) != frames {
			return nil, fmt.Errorf("%w: extended offset table has %d entries for %d frames", ErrCorrupt, len(extOffsets), frames)
		}
		if bot.Length != 0 {
			return nil, fmt.Errorf("%w: both a Basic and an Extended Offset Table", ErrCorrupt)
		}
		return byOffsets(extOffsets)
	case bot.Length > 0:
		if bot.Length != uint32(4*frames) {
			return nil, fmt.Errorf("%w: basic offset table has %d bytes for %d frames", ErrCorrupt, bot.Length, frames)
		}
		b := make([]byte, bot.Length)
		if _, err := r.ReadAt(b, bot.Offset+8); err != nil {
			return nil, fmt.Errorf("%w: basic offset table unreadable", ErrCorrupt)
		}
		starts := make([]uint64, frames)
		for i := range starts {
			starts[i] = uint64(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return byOffsets(starts)
	case len(items) == frames:
		out := make([][]dicomraw.Fragment, frames)
		for i := range items {
			out[i] = items[i : i+1]
		}
		return out, nil
	case frames == 1:
		return [][]dicomraw.Fragment{items}, nil
	case len(items) < frames:
		return nil, fmt.Errorf("%w: %d fragments for %d frames", ErrCorrupt, len(items), frames)
	}
	// More fragments than frames and no table: codestream start markers.
	fam := family(ts)
	if fam != famJPEG && fam != famJLS && fam != famJ2K {
		return nil, fmt.Errorf("%w: %d fragments for %d frames and no offset table", ErrCorrupt, len(items), frames)
	}
	var out [][]dicomraw.Fragment
	var head [4]byte
	for i, it := range items {
		start := false
		if it.Length >= 4 {
			if _, err := r.ReadAt(head[:], it.Offset+8); err != nil {
				return nil, fmt.Errorf("%w: fragment unreadable", ErrCorrupt)
			}
			start = head[0] == 0xFF && (head[1] == 0xD8 || (head[1] == 0x4F && head[2] == 0xFF && head[3] == 0x51))
		}
		switch {
		case i == 0 && !start:
			return nil, fmt.Errorf("%w: first fragment does not start a codestream", ErrCorrupt)
		case start:
			out = append(out, items[i:i+1])
		default:
			out[len(out)-1] = items[i-len(out[len(out)-1]) : i+1]
		}
	}
	if len(out) != frames {
		return nil, fmt.Errorf("%w: %d codestreams for %d frames", ErrCorrupt, len(out), frames)
	}
	return out, nil
}

// FrameData reads the encoded bytes of frame i (encapsulated syntaxes):
// its fragments joined, into buf when it is large enough.
func (s *Source) FrameData(i int, buf []byte) ([]byte, error) {
	if i < 0 || i >= len(s.frames) {
		return nil, fmt.Errorf("%w: frame %d of %d", ErrCorrupt, i+1, len(s.frames))
	}
	n := 0
	for _, fr := range s.frames[i] {
		n += int(fr.Length)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	at := 0
	for _, fr := range s.frames[i] {
		if _, err := s.r.ReadAt(buf[at:at+int(fr.Length)], fr.Offset+8); err != nil {
			return nil, fmt.Errorf("%w: frame %d unreadable", ErrCorrupt, i+1)
		}
		at += int(fr.Length)
	}
	return buf, nil
}

// EncodedFrames is the number of encoded frames found (encapsulated).
func (s *Source) EncodedFrames() int { return len(s.frames) }
