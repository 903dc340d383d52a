package codec

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Hostile and damaged pixel data: every failure is an error of a known
// kind (never a panic, never more memory than the declared frame).

// encapsulated lays out items (the first is the Basic Offset Table) as
// an encapsulated value and returns the reader and its fragments.
func encapsulated(items ...[]byte) (*bytes.Reader, []dicomraw.Fragment) {
	var buf []byte
	var frags []dicomraw.Fragment
	for _, it := range items {
		frags = append(frags, dicomraw.Fragment{Offset: int64(len(buf)), Length: uint32(len(it))})
		buf = binary.LittleEndian.AppendUint32(buf, uint32(dicomraw.TagItem))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(it)))
		buf = append(buf, it...)
	}
	return bytes.NewReader(buf), frags
}

func bot(offsets ...uint32) []byte {
	var b []byte
	for _, o := range offsets {
		b = binary.LittleEndian.AppendUint32(b, o)
	}
	return b
}

func TestSplitFrames(t *testing.T) {
	soi := []byte{0xFF, 0xD8, 0xFF, 0xE0, 1, 2} // starts a JPEG codestream
	mid := []byte{9, 9, 9, 9}                   // continues one
	cases := []struct {
		name   string
		items  [][]byte
		frames int
		ext    []uint64
		want   []int // fragments per frame; nil: refused
	}{
		{"one fragment per frame", [][]byte{nil, soi, soi, soi}, 3, nil, []int{1, 1, 1}},
		{"one frame in several fragments", [][]byte{nil, soi, mid, mid}, 1, nil, []int{3}},
		{"basic offset table", [][]byte{bot(0, 26), soi, mid, soi}, 2, nil, []int{2, 1}},
		{"basic offset table entry not at a fragment", [][]byte{bot(0, 20), soi, mid, soi}, 2, nil, nil},
		{"basic offset table of the wrong size", [][]byte{bot(0), soi, soi}, 2, nil, nil},
		{"basic offset table out of order", [][]byte{bot(14, 0), soi, soi}, 2, nil, nil},
		{"no table, codestream markers", [][]byte{nil, soi, mid, soi, mid, mid}, 2, nil, []int{2, 3}},
		{"no table, too many codestreams", [][]byte{nil, soi, soi, soi, mid}, 2, nil, nil},
		{"no table, first fragment not a codestream", [][]byte{nil, mid, soi, soi}, 2, nil, nil},
		{"fewer fragments than frames", [][]byte{nil, soi}, 2, nil, nil},
		{"no fragment at all", [][]byte{nil}, 1, nil, nil},
		{"extended offset table", [][]byte{nil, soi, mid, soi}, 2, []uint64{0, 26}, []int{2, 1}},
		{"extended and basic offset tables", [][]byte{bot(0, 26), soi, mid, soi}, 2, []uint64{0, 26}, nil},
		{"extended offset table of the wrong count", [][]byte{nil, soi, soi}, 2, []uint64{0}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, frags := encapsulated(c.items...)
			var lengths []uint64
			if c.ext != nil {
				lengths = make([]uint64, len(c.ext))
			}
			got, err := SplitFrames(r, frags, c.frames, JPEGBaseline, c.ext, lengths)
			if c.want == nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("want refused as corrupt, got %v (%d frames)", err, len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d frames, want %d", len(got), len(c.want))
			}
			for i, n := range c.want {
				if len(got[i]) != n {
					t.Errorf("frame %d: %d fragments, want %d", i+1, len(got[i]), n)
				}
			}
		})
	}
	// RLE has no start marker: several fragments per frame without a
	// table cannot be split, and are refused.
	r, frags := encapsulated(nil, soi, mid, soi)
	if _, err := SplitFrames(r, frags, 2, RLELossless, nil, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("RLE without a table: %v", err)
	}
}

func TestRLEHostile(t *testing.T) {
	im := Image{Rows: 16, Columns: 16, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 16, Syntax: RLELossless}
	frame := make([]byte, im.FrameBytes())
	for i := range frame {
		frame[i] = byte(i * 7)
	}
	good, err := EncodeRLE(nil, frame, im)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, im.FrameBytes())
	if err := DecodeRLE(dst, good, im); err != nil || !bytes.Equal(dst, frame) {
		t.Fatalf("round trip: %v", err)
	}
	bomb := append([]byte(nil), good[:64]...)
	for i := 0; i < 1000; i++ {
		bomb = append(bomb, 0x9D, 0xAA) // 100 copies each: the third crosses the plane
	}
	binary.LittleEndian.PutUint32(bomb[8:], uint32(64+1000))
	wrongSegments := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(wrongSegments, 3)
	badOffset := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(badOffset[4:], 1<<30)
	for name, in := range map[string][]byte{
		"truncated":           good[:len(good)/2],
		"header only":         good[:64],
		"shorter than header": good[:10],
		"runs beyond a plane": bomb,
		"segment count":       wrongSegments,
		"segment offset":      badOffset,
	} {
		if err := DecodeRLE(dst, in, im); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Eight-bit geometry for 16-bit data: the segment count disagrees.
	im8 := im
	im8.BitsAllocated, im8.BitsStored = 8, 8
	if err := DecodeRLE(make([]byte, im8.FrameBytes()), good, im8); !errors.Is(err, ErrCorrupt) {
		t.Errorf("wrong bits allocated: %v", err)
	}
}

func TestDeflatedFrameBomb(t *testing.T) {
	im := Image{Rows: 64, Columns: 64, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8, Syntax: DeflatedFrames}
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(make([]byte, 256<<20)) // 256 MiB of zeros in ~250 KB
	w.Close()
	dst := make([]byte, im.FrameBytes())
	if err := decodeDeflatedFrame(dst, z.Bytes(), im); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("deflate bomb: %v", err)
	}
	z.Reset()
	w.Reset(&z)
	w.Write(make([]byte, 100)) // less than the frame
	w.Close()
	if err := decodeDeflatedFrame(dst, z.Bytes(), im); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short deflated frame: %v", err)
	}
}

func TestGeometryRefused(t *testing.T) {
	ok := Image{Rows: 8, Columns: 8, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 12, Syntax: JPEGLosslessSV1}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Image){
		"no rows":            func(im *Image) { im.Rows = 0 },
		"negative frames":    func(im *Image) { im.Frames = -1 },
		"two samples":        func(im *Image) { im.SamplesPerPixel = 2 },
		"12 bits allocated":  func(im *Image) { im.BitsAllocated = 12 },
		"stored > allocated": func(im *Image) { im.BitsStored = 17 },
		"planar 2":           func(im *Image) { im.PlanarConfiguration = 2 },
		"frame over 1 GiB": func(im *Image) {
			im.Rows, im.Columns, im.SamplesPerPixel, im.BitsAllocated, im.BitsStored = 65535, 65535, 3, 32, 32
		},
		"packed RGB":   func(im *Image) { im.BitsAllocated, im.BitsStored, im.SamplesPerPixel = 1, 1, 3 },
		"native 4:2:2": func(im *Image) { im.Photometric, im.Syntax, im.SamplesPerPixel = "YBR_FULL_422", ExplicitVRLE, 3 },
	} {
		im := ok
		mut(&im)
		if err := im.Check(); !errors.Is(err, ErrGeometry) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A codestream whose own header disagrees with the DICOM geometry is
// refused before any decoder allocates from it.
func TestStreamHeaderAgainstGeometry(t *testing.T) {
	// SOF1, 12-bit, 65535 rows, 65535 columns, one component.
	huge := []byte{0xFF, 0xD8, 0xFF, 0xC1, 0, 11, 12, 0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0x11, 0}
	im := Image{Rows: 64, Columns: 64, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 12, Syntax: JPEGExtended}
	si, err := JPEGHeader(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckStream(si, im); !errors.Is(err, ErrCorrupt) {
		t.Errorf("65535x65535 stream in a 64x64 image: %v", err)
	}
	deep := Image{Rows: 65535, Columns: 65535, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 8, BitsStored: 8}
	if err := CheckStream(si, deep); !errors.Is(err, ErrCorrupt) {
		t.Errorf("12-bit stream in 8-bit pixels: %v", err)
	}
	// SIZ of a JPEG 2000 stream: 3 components where the image has 1.
	siz := []byte{0xFF, 0x4F, 0xFF, 0x51, 0, 47, 0, 0, 0, 0, 0, 64, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 64, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 7, 1, 1, 7, 1, 1, 7, 1, 1}
	si, err = J2KHeader(siz)
	if err != nil {
		t.Fatal(err)
	}
	im.BitsAllocated, im.BitsStored = 8, 8
	if err := CheckStream(si, im); !errors.Is(err, ErrCorrupt) {
		t.Errorf("3-component stream in a 1-sample image: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":           nil,
		"no SOI":          {0x00, 0x01, 0x02, 0x03},
		"segment overrun": {0xFF, 0xD8, 0xFF, 0xC0, 0xFF, 0xF0, 1},
		"EOI first":       {0xFF, 0xD8, 0xFF, 0xD9, 0, 0},
	} {
		if _, err := JPEGHeader(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("JPEG %s: %v", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"SIZ short": siz[:20],
		"offsets":   append(append([]byte(nil), siz[:16]...), 0xFF, 0xFF, 0xFF, 0xFF),
	} {
		if _, err := J2KHeader(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("J2K %s: %v", name, err)
		}
	}
}

// The lossless encoders of every build give back the frame they encoded.
func TestEncodersRoundTrip(t *testing.T) {
	set := Default()
	for _, im := range []Image{
		{Rows: 7, Columns: 5, Frames: 1, SamplesPerPixel: 1, BitsAllocated: 16, BitsStored: 12},
		{Rows: 4, Columns: 9, Frames: 1, SamplesPerPixel: 3, BitsAllocated: 8, BitsStored: 8, Photometric: "RGB"},
	} {
		for _, ts := range []string{RLELossless, DeflatedFrames, JPEGLSLossless} {
			enc, ok := set.Encoder(ts)
			if !ok {
				if ts == JPEGLSLossless && CGO {
					t.Fatalf("the cgo build has no JPEG-LS encoder")
				}
				continue
			}
			im.Syntax = ts
			frame := make([]byte, im.FrameBytes())
			for i := range frame {
				frame[i] = byte(i * 13)
				if im.BitsAllocated == 16 && i%2 == 1 {
					frame[i] &= 0x0F // 12 bits
				}
			}
			b, err := enc.Encode(nil, frame, im)
			if err != nil {
				t.Fatalf("%s: %v", ts, err)
			}
			if len(b)%2 != 0 {
				t.Errorf("%s: odd item length %d", ts, len(b))
			}
			c, _ := set.Lookup(ts)
			back := make([]byte, len(frame))
			if err := c.Dec.Decode(back, b, im); err != nil || !bytes.Equal(back, frame) {
				t.Errorf("%s %d samples of %d bits: round trip differs (%v)", ts, im.SamplesPerPixel, im.BitsStored, err)
			}
		}
	}
}
