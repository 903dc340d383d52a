package dicomraw

import "sync"

// Syntax describes how a transfer syntax encodes the dataset.
type Syntax struct {
	UID       string
	Name      string
	Implicit  bool // implicit VR (tag + 4-byte length, VR from the dictionary)
	BigEndian bool
	Deflated  bool // the dataset after the File Meta is a raw deflate stream
	// Encapsulated means Pixel Data is stored as fragments (compressed or
	// otherwise encoded frames); the dataset itself is explicit VR LE.
	Encapsulated bool
}

// Well-known transfer syntax UIDs used by the parser itself.
const (
	ImplicitVRLittleEndian = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLE   = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian    = "1.2.840.10008.1.2.2"
)

// syntaxes lists every transfer syntax of PS3.6 (2024c) this package can
// read. A UID not listed here is refused: guessing its encoding could
// misparse the file and let identifying values through unseen.
func syntaxes() map[string]Syntax {
	m := map[string]Syntax{
		ImplicitVRLittleEndian: {Name: "Implicit VR Little Endian", Implicit: true},
		ExplicitVRLittleEndian: {Name: "Explicit VR Little Endian"},
		DeflatedExplicitVRLE:   {Name: "Deflated Explicit VR Little Endian", Deflated: true},
		ExplicitVRBigEndian:    {Name: "Explicit VR Big Endian", BigEndian: true},
		// Papyrus 3 Implicit VR Little Endian (retired) encodes like the default.
		"1.2.840.10008.1.20": {Name: "Papyrus 3 Implicit VR Little Endian", Implicit: true},
		// Referenced pixel data (JPIP): the dataset is explicit LE without Pixel Data.
		"1.2.840.10008.1.2.4.94": {Name: "JPIP Referenced"},
		"1.2.840.10008.1.2.4.95": {Name: "JPIP Referenced Deflate", Deflated: true},
		// Deflated Image Frame Compression: frames deflated, dataset explicit LE, encapsulated.
		"1.2.840.10008.1.2.8.1": {Name: "Deflated Image Frame Compression", Encapsulated: true},
	}
	enc := map[string]string{
		"1.2.840.10008.1.2.5":     "RLE Lossless",
		"1.2.840.10008.1.2.4.50":  "JPEG Baseline (Process 1)",
		"1.2.840.10008.1.2.4.51":  "JPEG Extended (Process 2 & 4)",
		"1.2.840.10008.1.2.4.52":  "JPEG Extended (Process 3 & 5)",
		"1.2.840.10008.1.2.4.53":  "JPEG Spectral Selection (Process 6 & 8)",
		"1.2.840.10008.1.2.4.54":  "JPEG Spectral Selection (Process 7 & 9)",
		"1.2.840.10008.1.2.4.55":  "JPEG Full Progression (Process 10 & 12)",
		"1.2.840.10008.1.2.4.56":  "JPEG Full Progression (Process 11 & 13)",
		"1.2.840.10008.1.2.4.57":  "JPEG Lossless (Process 14)",
		"1.2.840.10008.1.2.4.58":  "JPEG Lossless (Process 15)",
		"1.2.840.10008.1.2.4.59":  "JPEG Extended Hierarchical (Process 16 & 18)",
		"1.2.840.10008.1.2.4.60":  "JPEG Extended Hierarchical (Process 17 & 19)",
		"1.2.840.10008.1.2.4.61":  "JPEG Spectral Selection Hierarchical (Process 20 & 22)",
		"1.2.840.10008.1.2.4.62":  "JPEG Spectral Selection Hierarchical (Process 21 & 23)",
		"1.2.840.10008.1.2.4.63":  "JPEG Full Progression Hierarchical (Process 24 & 26)",
		"1.2.840.10008.1.2.4.64":  "JPEG Full Progression Hierarchical (Process 25 & 27)",
		"1.2.840.10008.1.2.4.65":  "JPEG Lossless Hierarchical (Process 28)",
		"1.2.840.10008.1.2.4.66":  "JPEG Lossless Hierarchical (Process 29)",
		"1.2.840.10008.1.2.4.70":  "JPEG Lossless SV1",
		"1.2.840.10008.1.2.4.80":  "JPEG-LS Lossless",
		"1.2.840.10008.1.2.4.81":  "JPEG-LS Near-Lossless",
		"1.2.840.10008.1.2.4.90":  "JPEG 2000 Lossless",
		"1.2.840.10008.1.2.4.91":  "JPEG 2000",
		"1.2.840.10008.1.2.4.92":  "JPEG 2000 Part 2 Lossless",
		"1.2.840.10008.1.2.4.93":  "JPEG 2000 Part 2",
		"1.2.840.10008.1.2.4.100": "MPEG2 MP@ML",
		"1.2.840.10008.1.2.4.101": "MPEG2 MP@HL",
		"1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 HP@4.1",
		"1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD HP@4.1",
		"1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 HP@4.2 2D",
		"1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 HP@4.2 3D",
		"1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 Stereo HP@4.2",
		"1.2.840.10008.1.2.4.107": "HEVC/H.265 Main@5.1",
		"1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10@5.1",
		"1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
		"1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
		"1.2.840.10008.1.2.4.112": "JPEG XL",
		"1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
		"1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
		"1.2.840.10008.1.2.4.203": "HTJ2K",
	}
	for uid, name := range enc {
		m[uid] = Syntax{Name: name, Encapsulated: true}
	}
	for uid, s := range m {
		s.UID = uid
		m[uid] = s
	}
	return m
}

// syntaxTable is the table, built once on first use (every parse looks
// its syntax up) and never changed.
var syntaxTable = sync.OnceValue(syntaxes)

// LookupSyntax returns the encoding of a transfer syntax UID.
func LookupSyntax(uid string) (Syntax, bool) {
	s, ok := syntaxTable()[uid]
	return s, ok
}
