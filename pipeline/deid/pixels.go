package deid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/pixels"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// Text burned into pixels is out of the header's reach: names, dates and
// IDs on ultrasound banners and screen captures. Images the profile has
// masking rules for are masked (Clean Pixel Data), whatever their
// transfer syntax when the build has its decoder; images that declare
// burned-in annotation, and images of the classes that often carry it
// (when the profile screens them), are held back otherwise, never passed
// through unmasked.

const (
	tagBurnedInAnnotation  = 0x00280301
	tagPhotometric         = 0x00280004
	tagPlanarConfiguration = 0x00280006
	tagLossyCompression    = 0x00282110
	tagLossyRatio          = 0x00282112
	tagLossyMethod         = 0x00282114
	// CleanPixelDataCode is CID 7050's code for the option.
	CleanPixelDataCode    = "113101"
	cleanPixelDataMeaning = "Clean Pixel Data Option"
)

// image is what the pixel rules look at.
type image struct {
	modality, manufacturer, model, imageType, sopClass, burnedIn, photometric string
	rows, columns, frames, samples, bitsAllocated, planar                     int
}

func (j *Job) imageOf(sopClass string) image {
	return image{
		modality: strings.ToUpper(j.topString(0x00080060)), manufacturer: j.topString(0x00080070),
		model: j.topString(0x00081090), imageType: j.topString(0x00080008), sopClass: sopClass,
		burnedIn: strings.ToUpper(j.topString(tagBurnedInAnnotation)), photometric: j.topString(0x00280004),
		rows: j.topInt(0x00280010), columns: j.topInt(0x00280011), frames: max(j.topInt(0x00280008), 1),
		samples: j.topInt(0x00280002), bitsAllocated: j.topInt(0x00280100), planar: j.topInt(0x00280006),
	}
}

// topInt reads a top-level US (in the file's byte order) or IS value.
func (j *Job) topInt(t uint32) int { return topIntOf(j.f.Elements, t) }

// topIntOf reads the US (in the file's byte order) or IS value of tag t
// among els.
func topIntOf(els []*dicomraw.Element, t uint32) int {
	for _, e := range els {
		if uint32(e.Tag) != t || !e.Loaded {
			continue
		}
		switch e.VR {
		case "US", "UN":
			if len(e.Value) >= 2 {
				if e.Enc.BigEndian {
					return int(binary.BigEndian.Uint16(e.Value))
				}
				return int(binary.LittleEndian.Uint16(e.Value))
			}
		case "IS":
			n, _ := strconv.Atoi(strings.Trim(string(e.Value), " \x00"))
			return n
		}
	}
	return 0
}

// matches tells whether a rule selects the image.
func (im image) matches(m rules.PixelMatch) bool {
	any := func(pats []string, v string) bool {
		if len(pats) == 0 {
			return true
		}
		for _, p := range pats {
			if ok, _ := path.Match(strings.ToUpper(p), strings.ToUpper(v)); ok {
				return true
			}
		}
		return false
	}
	return any(m.Modality, im.modality) && any(m.Manufacturer, im.manufacturer) &&
		any(m.ManufacturerModelName, im.model) && any(m.ImageType, im.imageType) &&
		any(m.SOPClassUID, im.sopClass) && (m.Rows == 0 || m.Rows == im.rows) && (m.Columns == 0 || m.Columns == im.columns)
}

// risky names why an image is of a class that often carries burned-in
// text, or "" when it is not.
func (im image) risky() string {
	switch {
	case im.modality == "US" || strings.HasPrefix(im.sopClass, "1.2.840.10008.5.1.4.1.1.6.") || im.sopClass == "1.2.840.10008.5.1.4.1.1.3.1":
		return "an ultrasound"
	case strings.HasPrefix(im.sopClass, "1.2.840.10008.5.1.4.1.1.7"):
		return "a secondary capture"
	case im.modality == "XC" || im.modality == "ES" || im.modality == "SC":
		return "a photographic or screen capture"
	}
	if v := strings.Split(im.imageType, `\`); len(v) >= 2 && strings.TrimSpace(v[1]) == "SECONDARY" {
		return "a SECONDARY (derived after the examination)"
	}
	return ""
}

// planPixels decides what happens to the pixels: masked, passed, or the
// file held back (a Rejection of kind "pixels").
func (j *Job) planPixels(sopClass string) error {
	var px *dicomraw.Element
	for _, e := range j.f.Elements {
		if e.Tag == dicomraw.TagPixelData || e.Tag == 0x7FE00008 || e.Tag == 0x7FE00009 {
			px = e
		}
	}
	if px == nil || px.Op == dicomraw.OpRemove { // no pixels, or a rule removed them
		return nil
	}
	pol := j.eng.prof.Pixels
	im := j.imageOf(sopClass)
	var rects []pixels.Rect
	if pol != nil {
		for _, r := range pol.Rules {
			if im.matches(r.Match) {
				for _, rc := range r.Rects {
					rects = append(rects, pixels.Rect{X: rc.X, Y: rc.Y, W: rc.W, H: rc.H})
				}
			}
		}
	}
	var paint []pixels.Rect // text found in the pixels, painted over
	switch {
	case j.eng.text == nil:
		// The profile opted out of reading pixels: the report says so.
		j.res.Pixels = &PixelReport{Why: "the profile opted out of examining pixels for burned-in text (burned_in_text: off)", Mode: "off", FramesTotal: im.frames}
	case px.Tag != dicomraw.TagPixelData:
		// Float and double float pixel data are parametric maps, not
		// screens: computed values that no device writes text into.
		j.res.Pixels = &PixelReport{Why: "float pixel data (a parametric map) is not examined", Mode: string(j.eng.text.Mode()), FramesTotal: im.frames}
	default:
		found, err := j.examineText(im, rects)
		if err != nil {
			return err
		}
		paint = found
		j.pixelsExamined = j.res.Pixels != nil && j.res.Pixels.Examined
	}
	mask := pixels.Mask{Zero: rects, Paint: paint}
	if mask.Empty() {
		if j.pixelsExamined {
			return nil // read, nothing to mask: the pixels are kept as they are
		}
		if im.burnedIn == "YES" && (pol == nil || !pol.AcceptBurnedIn) {
			return reject("pixels", "the image declares Burned In Annotation YES and no masking rule of the profile matches it: held back, not passed with text in its pixels")
		}
		if pol != nil && pol.ScreenRisky && !pol.AcceptUnmatched {
			if why := im.risky(); why != "" {
				return reject("pixels", "%s image (%s, %dx%d) that no masking rule of the profile matches: its pixels may show names, so it is held back (add a rule, or accept_unmatched in the profile)",
					why, im.modality, im.columns, im.rows)
			}
		}
		return nil
	}
	if j.res.Pixels != nil {
		j.res.Pixels.Masked = true
	}
	if px.Tag != dicomraw.TagPixelData {
		return reject("pixels", "float pixel data cannot be masked: held back")
	}
	g := pixels.Geometry{Rows: im.rows, Columns: im.columns, Frames: im.frames, SamplesPerPixel: im.samples,
		BitsAllocated: im.bitsAllocated, PlanarConfiguration: im.planar}
	src := j.f.Body
	switch {
	case !j.f.Syntax.Encapsulated:
		if err := g.Check(); err != nil {
			return reject("pixels", "pixels to mask but %v: held back", err)
		}
		if err := j.chargeFrame(g); err != nil {
			return err
		}
		length := px.ValueLength()
		if px.Length == dicomraw.Undefined || length < int64(g.FrameBytes())*int64(g.Frames) {
			return reject("pixels", "pixel data shorter than its %d frames: held back", g.Frames)
		}
		off := px.ValueOffset
		px.Op, px.NewLength = dicomraw.OpStream, px.Length
		px.Stream = func(w io.Writer) error {
			return pixels.MaskNative(w, io.NewSectionReader(src, off, length), length, g, mask)
		}
	case j.f.Syntax.UID == codec.RLELossless && !j.hasExtendedOffsets() && len(paint) == 0:
		// Zeroing works plane by plane on RLE's byte segments; painting
		// needs whole samples, and goes through the decoder below.
		if err := g.Check(); err != nil {
			return reject("pixels", "pixels to mask but %v: held back", err)
		}
		if err := j.chargeFrame(g); err != nil {
			return err
		}
		frames, err := rleFrames(px, g.Frames)
		if err != nil {
			return reject("pixels", "%v: held back", err)
		}
		px.Op, px.NewLength = dicomraw.OpStream, dicomraw.Undefined
		px.Stream = func(w io.Writer) error { return writeMaskedRLE(w, src, frames, g, rects) }
	default:
		if err := j.planDecoded(px, mask); err != nil {
			return err
		}
	}
	j.pixelsMasked = true
	return nil
}

// chargeFrame charges the job's memory budget for the frame a mask
// holds while it masks: the frame, and as much again twice for what it
// is decoded from and encoded to (RLE's plane and copy, a codec's
// buffers).
func (j *Job) chargeFrame(g pixels.Geometry) error {
	return j.charge(3 * int64(g.FrameBytes()))
}

func (j *Job) hasExtendedOffsets() bool {
	for _, e := range j.f.Elements {
		if uint32(e.Tag) == codec.TagExtendedOffsets {
			return true
		}
	}
	return false
}

// planDecoded masks compressed pixels: each frame is decoded, masked and
// encoded again losslessly: in the input's syntax when the input was
// lossless and the build has its encoder, otherwise as RLE Lossless,
// which every DICOM reader decodes. The header follows what the
// pixels became: the transfer syntax, Photometric Interpretation (JPEG
// colour and JPEG 2000 YBR_ICT/RCT decode to RGB), Planar Configuration
// (interleaved), Lossy Image Compression (kept "01", its ratio and method
// kept or added, when the input had lost information) and the offset
// tables (an empty Basic Offset Table, no Extended Offset Table).
func (j *Job) planDecoded(px *dicomraw.Element, mask pixels.Mask) error {
	src, err := codec.FromFile(j.f)
	if err != nil {
		return reject("pixels", "pixels to mask but %v: held back", err)
	}
	fr, err := j.eng.codecs.Open(src)
	if errors.Is(err, codec.ErrUnsupported) {
		return reject("pixels", "pixels to mask, but %s cannot be decoded by this build (%s): held back, not passed unmasked", j.f.Syntax.Name, j.eng.codecs.Build)
	}
	if err != nil {
		return reject("pixels", "pixels to mask but %v: held back", err)
	}
	in, out := src.Image, fr.Output()
	if in.BitsAllocated == 1 {
		return reject("pixels", "pixels to mask but 1 bits allocated (packed bits) cannot be masked: held back")
	}
	g := pixels.Geometry{Rows: out.Rows, Columns: out.Columns, Frames: out.Frames, SamplesPerPixel: out.SamplesPerPixel,
		BitsAllocated: out.BitsAllocated, PlanarConfiguration: out.PlanarConfiguration}
	if err := g.Check(); err != nil {
		return reject("pixels", "pixels to mask but %v: held back", err)
	}
	if err := j.chargeFrame(g); err != nil {
		return err
	}
	// Whether the input had lost information: its syntax and its first
	// frame's codestream (JPEG 2000 and JPEG-LS may be lossless), or what
	// the header already says.
	lossy := strings.TrimSpace(j.topString(tagLossyCompression)) == "01"
	var encoded int64
	for f := 0; f < src.EncodedFrames(); f++ {
		b, err := src.FrameData(f, nil)
		if err != nil {
			return reject("pixels", "pixels to mask but %v: held back", err)
		}
		encoded += int64(len(b))
		if f == 0 && codec.StreamLossy(in.Syntax, b) {
			lossy = true
		}
	}
	// The output syntax: the input's when it was lossless and the build
	// has its encoder (deflated frames; JPEG-LS with CharLS), else RLE.
	outTS, enc := codec.RLELossless, codec.Encoder(codec.EncoderFunc(codec.EncodeRLE))
	encIm := out
	if e, ok := j.eng.codecs.Encoder(in.Syntax); ok && !lossy {
		outTS, enc = in.Syntax, e
		if in.Syntax == codec.JPEGLSLossless {
			// JPEG-LS is written with the precision it had: every decoded
			// (and masked) sample fits in it.
			b, _ := src.FrameData(0, nil)
			si, err := codec.JPEGHeader(b)
			if err != nil {
				return reject("pixels", "pixels to mask but %v: held back", err)
			}
			encIm.BitsStored = si.Precision
		}
	}
	px.Op, px.NewLength = dicomraw.OpStream, dicomraw.Undefined
	px.Stream = func(w io.Writer) error { return writeEncoded(w, fr, out, encIm, enc, g, mask) }
	j.outSyntax = outTS
	j.res.TransferSyntax = outTS
	if out.Photometric != in.Photometric {
		j.setTop(tagPhotometric, "CS", out.Photometric)
	}
	if out.SamplesPerPixel > 1 && in.PlanarConfiguration != out.PlanarConfiguration {
		j.setTopBinary(tagPlanarConfiguration, "US", []byte{byte(out.PlanarConfiguration), 0})
	}
	for _, e := range j.f.Elements {
		if uint32(e.Tag) == codec.TagExtendedOffsets || uint32(e.Tag) == codec.TagExtendedLengths {
			e.Op = dicomraw.OpRemove
		}
	}
	if lossy {
		j.setTop(tagLossyCompression, "CS", "01")
		if j.topString(tagLossyRatio) == "" && encoded > 0 {
			ratio := float64(out.FrameBytes()) * float64(out.Frames) / float64(encoded)
			j.setTop(tagLossyRatio, "DS", strconv.FormatFloat(ratio, 'f', 2, 64))
		}
		if j.topString(tagLossyMethod) == "" {
			j.setTop(tagLossyMethod, "CS", codec.LossyMethod(in.Syntax))
		}
	}
	return nil
}

// writeEncoded writes the items of an encapsulated value: an empty Basic
// Offset Table, each frame decoded, masked and encoded, then the
// delimiter. One frame is in memory at a time.
func writeEncoded(w io.Writer, fr *codec.Frames, out, encIm codec.Image, enc codec.Encoder, g pixels.Geometry, mask pixels.Mask) error {
	if err := writeItem(w, dicomraw.TagItem, 0); err != nil {
		return err
	}
	frame := make([]byte, out.FrameBytes())
	var buf []byte
	for f := 0; f < out.Frames; f++ {
		if err := fr.Frame(f, frame); err != nil {
			return err
		}
		g.Apply(frame, mask)
		var err error
		if buf, err = enc.Encode(buf[:0], frame, encIm); err != nil {
			return err
		}
		if err := writeItem(w, dicomraw.TagItem, uint32(len(buf))); err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return writeItem(w, dicomraw.TagSequenceDelimiter, 0)
}

// writeItem writes an item (or delimiter) header of an encapsulated value.
func writeItem(w io.Writer, tag dicomraw.Tag, n uint32) error {
	var hdr [8]byte
	binary.LittleEndian.PutUint16(hdr[0:], tag.Group())
	binary.LittleEndian.PutUint16(hdr[2:], tag.Element())
	binary.LittleEndian.PutUint32(hdr[4:], n)
	_, err := w.Write(hdr[:])
	return err
}

// rleFrames groups an RLE value's fragments by frame: one each, or all of
// them for a single frame.
func rleFrames(px *dicomraw.Element, frames int) ([][]dicomraw.Fragment, error) {
	if len(px.Fragments) < 2 {
		return nil, fmt.Errorf("RLE pixel data without fragments")
	}
	frags := px.Fragments[1:] // the first item is the Basic Offset Table
	switch {
	case len(frags) == frames:
		out := make([][]dicomraw.Fragment, frames)
		for i := range frags {
			out[i] = frags[i : i+1]
		}
		return out, nil
	case frames == 1:
		return [][]dicomraw.Fragment{frags}, nil
	}
	return nil, fmt.Errorf("%d RLE fragments for %d frames", len(frags), frames)
}

// writeMaskedRLE writes the items of an encapsulated value: an empty
// Basic Offset Table, then each frame masked, then the delimiter. One
// frame is in memory at a time.
func writeMaskedRLE(w io.Writer, src io.ReaderAt, frames [][]dicomraw.Fragment, g pixels.Geometry, rects []pixels.Rect) error {
	item := func(tag dicomraw.Tag, n uint32) error { return writeItem(w, tag, n) }
	if err := item(dicomraw.TagItem, 0); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, frame := range frames {
		buf.Reset()
		for _, fr := range frame {
			if _, err := io.Copy(&buf, io.NewSectionReader(src, fr.Offset+8, int64(fr.Length))); err != nil {
				return err
			}
		}
		masked, err := pixels.MaskRLEFrame(buf.Bytes(), g, rects)
		if err != nil {
			return err
		}
		if err := item(dicomraw.TagItem, uint32(len(masked))); err != nil {
			return err
		}
		if _, err := w.Write(masked); err != nil {
			return err
		}
	}
	return item(dicomraw.TagSequenceDelimiter, 0)
}
