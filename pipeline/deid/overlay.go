package deid

import (
	"context"
	"errors"
	stdimage "image"
	"io"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/burnin"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// Overlays (60xx groups) are bitmaps a viewer draws over the image: a
// profile with Clean Graphics keeps them, and a device may have written
// the patient's name into one as easily as into the pixels. Each kept
// overlay is read like a screen (every frame, strictly). One that shows
// text the profile masks goes whole, its group removed: an overlay is
// annotation, not image, and removing it is what the Basic Profile does
// anyway. One that shows none is kept byte for byte.

// overlayGroups are the overlay groups PS3.3 C.9.2 allows: 6000-601E, even.
const (
	overlayFirst = 0x6000
	overlayLast  = 0x601E
)

// isOverlayData reports Overlay Data (60xx,3000) of an overlay group.
func isOverlayData(t dicomraw.Tag) bool {
	g := t.Group()
	return g >= overlayFirst && g <= overlayLast && g&1 == 0 && t.Element() == 0x3000
}

// examineOverlays reads every overlay the plan keeps; see above.
func (j *Job) examineOverlays() error {
	if j.eng.text == nil {
		return nil // the profile opted out of reading pixels: the report says so
	}
	for g := uint16(overlayFirst); g <= overlayLast; g += 2 {
		data := j.topElement(uint32(g)<<16 | 0x3000)
		if data == nil || data.Op == dicomraw.OpRemove {
			continue
		}
		text, err := j.overlayShowsText(g, data)
		if err != nil {
			return err
		}
		rep := j.pixelReport()
		rep.OverlaysRead++
		if !text {
			continue
		}
		for _, e := range j.f.Elements {
			if e.Tag.Group() == g && e.Op != dicomraw.OpRemove {
				e.Op = dicomraw.OpRemove
				j.res.Counts.Removed++
			}
		}
		j.res.Counts.OverlayGroupsRemoved++
		rep.OverlaysRemoved++
		j.note("("+dicomraw.Hex(uint64(g), 4)+",xxxx)", rules.Remove, "overlay shows burned-in text")
	}
	return nil
}

// overlayShowsText reads overlay group g, whose Overlay Data is data:
// true when a frame of it shows text to mask, or text the check finds.
// An overlay that cannot be read as one (its geometry missing or
// contradicting its data) counts as showing text: it goes.
func (j *Job) overlayShowsText(g uint16, data *dicomraw.Element) (bool, error) {
	ov, ok := overlayOf(j.f.Elements, g, data)
	if !ok {
		return true, nil
	}
	if !j.eng.text.CanRead() {
		return false, reject("pixels", "an overlay kept by Clean Graphics must be read for burned-in text and this build or machine has no OCR (%s): held back, not passed unread", j.eng.ocrWhy)
	}
	// The overlay's bytes and one frame's grey image.
	if err := j.charge(data.ValueLength() + 2*int64(ov.rows)*int64(ov.cols)); err != nil {
		return false, err
	}
	if err := ov.load(j.f.Body, data); err != nil {
		return false, reject("pixels", "an overlay kept by Clean Graphics could not be read: held back")
	}
	ctx, cancel := context.WithDeadline(context.Background(), j.deadline.Add(min(time.Duration(ov.frames)*2*time.Second, 10*time.Minute)))
	defer cancel()
	exam := j.eng.text.Image(j.textIdentifiers(), true)
	gray := stdimage.NewGray(stdimage.Rect(0, 0, ov.cols, ov.rows))
	for f := 0; f < ov.frames; f++ {
		ov.frame(f, gray)
		rs, err := exam.Analyze(ctx, gray, true)
		if err != nil {
			return false, j.textRefusal(err)
		}
		if len(rs) > 0 {
			return true, nil
		}
		fs, err := exam.Check(ctx, gray, true)
		if err != nil {
			return false, j.textRefusal(err)
		}
		if len(fs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// overlay is one overlay group's bitmap (PS3.3 C.9.2).
type overlay struct {
	rows, cols, frames int
	raw                []byte // Overlay Data
	swap               bool   // OW in a big endian file: each word's bytes swapped
}

// overlayOf is group g's overlay, whose Overlay Data is data (not yet
// loaded); false when its geometry is missing or contradicts its data.
func overlayOf(els []*dicomraw.Element, g uint16, data *dicomraw.Element) (overlay, bool) {
	base := uint32(g) << 16
	ov := overlay{rows: topIntOf(els, base|0x0010), cols: topIntOf(els, base|0x0011), frames: max(topIntOf(els, base|0x0015), 1)}
	bits := int64(ov.rows) * int64(ov.cols) * int64(ov.frames)
	if ov.rows <= 0 || ov.cols <= 0 || data.Length == dicomraw.Undefined || bits > 8*data.ValueLength() {
		return ov, false
	}
	for _, e := range els {
		if uint32(e.Tag) == base|0x0100 && topIntOf(els, base|0x0100) != 1 {
			return ov, false // Bits Allocated other than 1: retired overlays in pixel data
		}
	}
	// Overlay Data is a bit stream, least significant bit first, in 16-bit
	// words when OW.
	ov.swap = data.VR == "OW" && data.Enc.BigEndian
	return ov, true
}

// load reads the overlay's bytes: at least as many as its frames' bits.
func (ov *overlay) load(body io.ReaderAt, data *dicomraw.Element) error {
	if data.Loaded {
		ov.raw = data.Value
	} else {
		ov.raw = make([]byte, data.ValueLength())
		n, err := body.ReadAt(ov.raw, data.ValueOffset)
		if err != nil && err != io.EOF {
			return err
		}
		ov.raw = ov.raw[:n]
	}
	if bits := int64(ov.rows) * int64(ov.cols) * int64(ov.frames); 8*int64(len(ov.raw)) < bits {
		return errors.New("overlay data shorter than its frames")
	}
	return nil
}

// frame draws frame f of the overlay into gray (cols x rows): white on
// black.
func (ov *overlay) frame(f int, gray *stdimage.Gray) {
	first := int64(f) * int64(ov.rows) * int64(ov.cols)
	for p := range gray.Pix[:ov.rows*ov.cols] {
		b := first + int64(p)
		i := b >> 3
		if ov.swap {
			i ^= 1
		}
		gray.Pix[p] = 0
		// An odd-length OW's last byte has no pair to swap with.
		if i < int64(len(ov.raw)) && ov.raw[i]>>(b&7)&1 == 1 {
			gray.Pix[p] = 255
		}
	}
}

// auditOverlays is AuditPixels for the overlays of f.
func auditOverlays(ctx context.Context, f *dicomraw.File, exam *burnin.Image, a *PixelAudit) error {
	for g := uint16(overlayFirst); g <= overlayLast; g += 2 {
		var data *dicomraw.Element
		for _, e := range f.Elements {
			if uint32(e.Tag) == uint32(g)<<16|0x3000 {
				data = e
			}
		}
		if data == nil {
			continue
		}
		ov, ok := overlayOf(f.Elements, g, data)
		if !ok || ov.load(f.Body, data) != nil {
			a.Findings = append(a.Findings, burnin.Finding{Kind: "an overlay that cannot be read"})
			continue
		}
		gray := stdimage.NewGray(stdimage.Rect(0, 0, ov.cols, ov.rows))
		for i := 0; i < ov.frames; i++ {
			ov.frame(i, gray)
			fs, err := exam.Check(ctx, gray, true)
			if err != nil {
				return err
			}
			for _, fd := range fs {
				fd.Kind = "overlay " + fd.Kind
				a.Findings = append(a.Findings, fd)
			}
		}
		a.Overlays++
	}
	return nil
}

// topElement is the top-level element with tag t, or nil.
func (j *Job) topElement(t uint32) *dicomraw.Element {
	for _, e := range j.f.Elements {
		if uint32(e.Tag) == t {
			return e
		}
	}
	return nil
}

// pixelReport is the job's pixel report, made when the image had none
// (no pixel data of its own to examine).
func (j *Job) pixelReport() *PixelReport {
	if j.res.Pixels == nil {
		j.res.Pixels = &PixelReport{}
		if j.eng.text != nil {
			j.res.Pixels.Mode = string(j.eng.text.Mode())
		}
	}
	return j.res.Pixels
}
