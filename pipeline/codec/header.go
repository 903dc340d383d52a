package codec

import (
	"encoding/binary"
	"fmt"
)

// StreamInfo is what a codestream's own header says, read in Go before
// any C library sees the bytes: the decoders refuse a frame whose header
// disagrees with the DICOM geometry, so nothing is allocated from a
// hostile header and the output cannot outgrow the declared frame.
type StreamInfo struct {
	Width, Height, Components, Precision int
	Signed                               bool // JPEG 2000 Ssiz sign bit
	// Marker is the JPEG SOF marker (0xC0..0xCF, 0xF7 for JPEG-LS).
	Marker byte
	// Lossy: DCT JPEG, JPEG-LS NEAR > 0, JPEG 2000 9-7 irreversible wavelet.
	Lossy bool
	// Subsampled: a component is sampled at another rate than the others.
	Subsampled bool
	// MCT: JPEG 2000 multiple component transform in use.
	MCT bool
	// Offset of the codestream in the frame (a JP2 file wrapper skipped).
	Offset int
}

func be16(b []byte) int { return int(binary.BigEndian.Uint16(b)) }
func be32(b []byte) int { return int(binary.BigEndian.Uint32(b)) }

// JPEGHeader reads the frame header of a JPEG (ISO 10918) or JPEG-LS
// (ISO 14495) codestream, and for JPEG-LS the NEAR parameter of the
// first scan.
func JPEGHeader(src []byte) (StreamInfo, error) {
	var si StreamInfo
	if len(src) < 4 || src[0] != 0xFF || src[1] != 0xD8 {
		return si, fmt.Errorf("%w: no JPEG start of image", ErrCorrupt)
	}
	sof := false
	for i := 2; ; {
		for i < len(src) && src[i] != 0xFF {
			i++ // tolerate stray bytes between segments, as libjpeg does
		}
		for i < len(src) && src[i] == 0xFF {
			i++ // fill bytes
		}
		if i+2 >= len(src) {
			return si, fmt.Errorf("%w: JPEG header truncated", ErrCorrupt)
		}
		m := src[i]
		i++
		if m == 0xD9 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			if m == 0xD9 {
				return si, fmt.Errorf("%w: JPEG ends before its frame", ErrCorrupt)
			}
			continue
		}
		n := be16(src[i:])
		if n < 2 || i+n > len(src) {
			return si, fmt.Errorf("%w: JPEG segment length", ErrCorrupt)
		}
		seg := src[i+2 : i+n]
		i += n
		switch {
		case (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7:
			if sof {
				return si, fmt.Errorf("%w: two JPEG frame headers", ErrCorrupt)
			}
			if len(seg) < 6 {
				return si, fmt.Errorf("%w: JPEG frame header short", ErrCorrupt)
			}
			si.Marker = m
			si.Precision, si.Height, si.Width, si.Components = int(seg[0]), be16(seg[1:]), be16(seg[3:]), int(seg[5])
			if si.Components == 0 || len(seg) < 6+3*si.Components {
				return si, fmt.Errorf("%w: JPEG frame header without components, or short", ErrCorrupt)
			}
			h0, v0 := seg[7]>>4, seg[7]&15
			for c := 1; c < si.Components; c++ {
				if seg[7+3*c]>>4 != h0 || seg[7+3*c]&15 != v0 {
					si.Subsampled = true
				}
			}
			si.Lossy = m != 0xC3 && m != 0xC7 && m != 0xCB && m != 0xCF && m != 0xF7
			sof = true
			if m != 0xF7 {
				return si, nil
			}
		case m == 0xDA:
			if !sof {
				return si, fmt.Errorf("%w: JPEG scan before the frame header", ErrCorrupt)
			}
			// JPEG-LS scan header: Ns, Ns*(Ci, Tm), NEAR, ILV, Al/Ah.
			if len(seg) < 1 || len(seg) < 1+2*int(seg[0])+1 {
				return si, fmt.Errorf("%w: JPEG-LS scan header short", ErrCorrupt)
			}
			si.Lossy = seg[1+2*int(seg[0])] > 0
			return si, nil
		}
	}
}

// J2KHeader reads the SIZ and COD segments of a JPEG 2000 (or HTJ2K)
// codestream; a JP2 file wrapper, which some writers put in DICOM
// against PS3.5 A.4.4, is looked through to its codestream box.
func J2KHeader(src []byte) (StreamInfo, error) {
	var si StreamInfo
	if len(src) >= 12 && be32(src) == 12 && string(src[4:8]) == "jP  " {
		off, err := jp2Codestream(src)
		if err != nil {
			return si, err
		}
		si.Offset = off
		src = src[off:]
	}
	if len(src) < 4 || be16(src) != 0xFF4F || be16(src[2:]) != 0xFF51 {
		return si, fmt.Errorf("%w: no JPEG 2000 SOC and SIZ", ErrCorrupt)
	}
	lsiz := 0
	if len(src) >= 6 {
		lsiz = be16(src[4:])
	}
	if lsiz < 41 || 4+lsiz > len(src) {
		return si, fmt.Errorf("%w: JPEG 2000 SIZ truncated", ErrCorrupt)
	}
	siz := src[6 : 4+lsiz]
	xs, ys, xo, yo := be32(siz[2:]), be32(siz[6:]), be32(siz[10:]), be32(siz[14:])
	si.Components = be16(siz[34:])
	if xo >= xs || yo >= ys || si.Components == 0 || len(siz) < 36+3*si.Components {
		return si, fmt.Errorf("%w: JPEG 2000 SIZ inconsistent", ErrCorrupt)
	}
	si.Width, si.Height = xs-xo, ys-yo
	for c := 0; c < si.Components; c++ {
		ssiz, xr, yr := siz[36+3*c], siz[37+3*c], siz[38+3*c]
		p := int(ssiz&0x7F) + 1
		if c == 0 {
			si.Precision, si.Signed = p, ssiz&0x80 != 0
		} else if p != si.Precision {
			return si, fmt.Errorf("%w: JPEG 2000 components of different precision", ErrCorrupt)
		}
		if xr != 1 || yr != 1 {
			si.Subsampled = true
		}
	}
	// Main header markers up to the first tile: COD says MCT and wavelet.
	for i := 4 + lsiz; i+4 <= len(src); {
		m := be16(src[i:])
		if m == 0xFF90 || m == 0xFF93 { // SOT, SOD: main header ends
			break
		}
		n := be16(src[i+2:])
		if m>>8 != 0xFF || n < 2 || i+2+n > len(src) {
			return si, fmt.Errorf("%w: JPEG 2000 main header", ErrCorrupt)
		}
		if m == 0xFF52 && n >= 12 {
			cod := src[i+4 : i+2+n]
			si.MCT = cod[4] != 0
			si.Lossy = cod[9] == 0 // 9-7 irreversible
		}
		i += 2 + n
	}
	return si, nil
}

// jp2Codestream finds the contiguous codestream box of a JP2 file.
func jp2Codestream(src []byte) (int, error) {
	for i := 0; i+8 <= len(src); {
		l := int64(binary.BigEndian.Uint32(src[i:]))
		typ := string(src[i+4 : i+8])
		hdr := int64(8)
		switch l {
		case 0:
			l = int64(len(src) - i)
		case 1:
			if i+16 > len(src) {
				return 0, fmt.Errorf("%w: JP2 box truncated", ErrCorrupt)
			}
			l, hdr = int64(binary.BigEndian.Uint64(src[i+8:])), 16
		}
		if typ == "jp2c" {
			return i + int(hdr), nil
		}
		if l < hdr || l > int64(len(src)-i) {
			return 0, fmt.Errorf("%w: JP2 box length", ErrCorrupt)
		}
		i += int(l)
	}
	return 0, fmt.Errorf("%w: JP2 file without a codestream", ErrCorrupt)
}

// CheckStream refuses a codestream whose header disagrees with the DICOM
// geometry: size, number of components, precision beyond the bits
// allocated (a 16-bit codestream cannot be put in 8-bit pixels).
func CheckStream(si StreamInfo, in Image) error {
	switch {
	case si.Width != in.Columns || si.Height != in.Rows:
		return fmt.Errorf("%w: codestream is %dx%d, the attributes say %dx%d", ErrCorrupt, si.Width, si.Height, in.Columns, in.Rows)
	case si.Components != in.SamplesPerPixel:
		return fmt.Errorf("%w: codestream has %d components, the attributes say %d samples", ErrCorrupt, si.Components, in.SamplesPerPixel)
	case si.Precision < 1 || si.Precision > in.BitsAllocated || si.Precision > 16:
		return fmt.Errorf("%w: codestream precision %d in %d bits allocated", ErrCorrupt, si.Precision, in.BitsAllocated)
	}
	return nil
}

// StreamLossy tells whether a frame of syntax ts lost information when
// it was compressed: always for DCT JPEG, per the codestream's header
// for JPEG-LS (NEAR) and JPEG 2000 (irreversible wavelet), never for
// the lossless syntaxes. A header that cannot be read counts as lossy.
func StreamLossy(ts string, frame []byte) bool {
	switch ts {
	case JPEGBaseline, JPEGExtended:
		return true
	case JPEGLSNear:
		si, err := JPEGHeader(frame)
		return err != nil || si.Lossy
	case J2K, HTJ2K:
		si, err := J2KHeader(frame)
		return err != nil || si.Lossy
	}
	return false
}
