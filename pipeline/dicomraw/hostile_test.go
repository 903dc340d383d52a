package dicomraw

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile inputs: every one must be refused with the right kind of error,
// never a panic, a hang or an unbounded allocation, and no error message may
// carry a value of the file.

// secret is a value planted in hostile files before their defect; no error
// text may contain it.
const secret = "SECRETNAME^HOSTILE"

// hdr appends an explicit (or implicit) VR little endian element header.
func hdr(b []byte, t Tag, vr string, length uint32, implicit bool) []byte {
	out, err := AppendHeader(b, t, vr, length, Encoding{Implicit: implicit})
	if err != nil {
		panic(err)
	}
	return out
}

// elem appends a whole explicit VR LE element (value padded).
func elem(b []byte, t Tag, vr, v string) []byte {
	p := Pad(vr, []byte(v))
	return append(hdr(b, t, vr, uint32(len(p)), false), p...)
}

// part10 wraps a dataset in a preamble, "DICM" and a File Meta naming ts.
func part10(ts string, body []byte) []byte {
	var meta []byte
	meta = elem(meta, 0x00020001, "OB", "\x00\x01")
	meta = elem(meta, 0x00020002, "UI", "1.2.840.10008.5.1.4.1.1.7")
	meta = elem(meta, 0x00020003, "UI", "2.25.1234567890")
	meta = elem(meta, 0x00020010, "UI", ts)
	out := make([]byte, 128, 132+12+len(meta)+len(body))
	out = append(out, "DICM"...)
	out = hdr(out, 0x00020000, "UL", 4, false)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(meta)))
	out = append(out, meta...)
	return append(out, body...)
}

// base is the start of every hostile dataset: a few ordinary elements and
// a patient name that must never reach an error message.
func base() []byte {
	var b []byte
	b = elem(b, 0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.7")
	b = elem(b, 0x00080018, "UI", "2.25.1234567890")
	b = elem(b, 0x00100010, "PN", secret)
	return b
}

// nested builds n levels of undefined-length sequences, each with one
// undefined-length item, in explicit VR little endian.
func nested(n int) []byte {
	b := base()
	for i := 0; i < n; i++ {
		b = hdr(b, 0x00400275, "SQ", Undefined, false)
		b = hdr(b, TagItem, "", Undefined, false)
	}
	b = elem(b, 0x00100020, "LO", "DEEP")
	for i := 0; i < n; i++ {
		b = hdr(b, TagItemDelimitation, "", 0, false)
		b = hdr(b, TagSequenceDelimiter, "", 0, false)
	}
	return b
}

// manyItems is a sequence with n empty defined-length items.
func manyItems(n int) []byte {
	b := base()
	b = hdr(b, 0x00400275, "SQ", Undefined, false)
	for i := 0; i < n; i++ {
		b = hdr(b, TagItem, "", 0, false)
	}
	return hdr(b, TagSequenceDelimiter, "", 0, false)
}

// manyElements is n ordinary elements.
func manyElements(n int) []byte {
	b := base()
	for i := 0; i < n; i++ {
		b = elem(b, NewTag(0x0009, 0x1000+uint16(i%0xE000)), "LO", "X")
	}
	return b
}

func deflated(t testing.TB, body []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(body) //nolint:errcheck // bytes.Buffer
	w.Close()     //nolint:errcheck
	return part10(DeflatedExplicitVRLE, z.Bytes())
}

func parseBytes(b []byte, lim Limits) (f *File, err error) {
	return Parse(bytes.NewReader(b), int64(len(b)), lim)
}

// checkErr asserts err is a *Error of kind want (any kind when want is
// empty) whose text holds no planted value.
func checkErr(t *testing.T, err error, want ErrorKind, msg string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want a %s error", want)
	}
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v is not a *dicomraw.Error", err, err)
	}
	if want != "" && pe.Kind != want {
		t.Fatalf("kind %s (%v), want %s", pe.Kind, err, want)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
	for _, v := range []string{"SECRET", "HOSTILE", "1234567890", "99.31337"} {
		if strings.Contains(err.Error(), v) {
			t.Fatalf("error %q carries a value of the file", err)
		}
	}
	return pe
}

func TestHostileInputs(t *testing.T) {
	absurdOB := hdr(base(), 0x00091010, "OB", 0xFFFFFFF0, false)
	absurdOB = append(absurdOB, make([]byte, 64)...)
	absurdImplicit := hdr(nil, 0x00100010, "", uint32(len(secret)), true)
	absurdImplicit = append(absurdImplicit, secret...)
	absurdImplicit = hdr(absurdImplicit, 0x00100020, "", 0xFFFFFFF0, true)
	absurdImplicit = append(absurdImplicit, "ABCDEFGH"...)
	bigValue := hdr(base(), 0x00091010, "OB", 4096, false)
	bigValue = append(bigValue, make([]byte, 4096)...)
	absurdItem := hdr(base(), 0x00400275, "SQ", Undefined, false)
	absurdItem = hdr(absurdItem, TagItem, "", 0xFFFFFFF0, false)
	absurdItem = append(absurdItem, make([]byte, 32)...)
	absurdSeq := hdr(base(), 0x00400275, "SQ", 0xFFFFFFF0, false)
	absurdSeq = append(absurdSeq, make([]byte, 32)...)
	absurdFrag := hdr(base(), TagPixelData, "OB", Undefined, false)
	absurdFrag = hdr(absurdFrag, TagItem, "", 0, false)
	absurdFrag = hdr(absurdFrag, TagItem, "", 0xFFFFFFF0, false)
	absurdFrag = append(absurdFrag, make([]byte, 32)...)
	bogusZZ := append(base(), 0x10, 0x00, 0x30, 0x00, 'Z', 'Z', 2, 0, 'A', 'B')
	bogusNul := append(base(), 0x10, 0x00, 0x30, 0x00, 0, 0, 2, 0, 'A', 'B')
	undefinedUT := hdr(base(), 0x00204000, "UT", Undefined, false)
	undefinedUT = append(undefinedUT, make([]byte, 16)...)
	topItem := hdr(base(), TagItem, "", 0, false)
	delimInDefined := hdr(base(), 0x00400275, "SQ", 8, false)
	delimInDefined = hdr(delimInDefined, TagSequenceDelimiter, "", 0, false)
	itemInFragments := hdr(base(), TagPixelData, "OB", Undefined, false)
	itemInFragments = hdr(itemInFragments, 0x00100010, "PN", 0, false)
	// A private OB value shaped like sequences nested past the limit.
	deepPrivate := func() []byte {
		var inner []byte
		for i := 0; i < 40; i++ {
			it := append(hdr(nil, TagItem, "", uint32(len(inner)), true), inner...)
			inner = append(hdr(nil, 0x00091010, "", uint32(len(it)), true), it...)
		}
		it := append(hdr(nil, TagItem, "", uint32(len(inner)), true), inner...)
		b := elem(base(), 0x00090010, "LO", "CREATOR")
		b = hdr(b, 0x00091010, "OB", uint32(len(it)), false)
		return append(b, it...)
	}()

	cases := []struct {
		name string
		in   []byte
		lim  Limits
		kind ErrorKind
		msg  string
	}{
		{"empty input", nil, Limits{}, ErrNotDICOM, ""},
		{"text file", []byte("hello, this is not DICOM at all, " + secret), Limits{}, ErrNotDICOM, ""},
		{"DICM without meta", append(make([]byte, 128), "DICMxxxxxxxxxxxxxxx"...), Limits{}, ErrMalformed, "no File Meta"},
		{"file size over limit", part10(ExplicitVRLittleEndian, base()), Limits{MaxFileSize: 100}, ErrLimit, "file size"},
		{"absurd OB length", part10(ExplicitVRLittleEndian, absurdOB), Limits{}, ErrTruncated, "value length 4294967280"},
		{"absurd length implicit", part10(ImplicitVRLittleEndian, absurdImplicit), Limits{}, ErrTruncated, "value length 4294967280"},
		{"absurd length bare implicit", absurdImplicit, Limits{}, ErrTruncated, "value length 4294967280"},
		{"absurd item length", part10(ExplicitVRLittleEndian, absurdItem), Limits{}, ErrTruncated, "item length 4294967280"},
		{"absurd sequence length", part10(ExplicitVRLittleEndian, absurdSeq), Limits{}, ErrTruncated, "value length 4294967280"},
		{"absurd fragment length", part10(JPEG2000Syntax, absurdFrag), Limits{}, ErrTruncated, "fragment"},
		{"value over MaxValueLength", part10(ExplicitVRLittleEndian, bigValue), Limits{MaxValueLength: 1024}, ErrLimit, "value length 4096 exceeds the limit of 1024"},
		{"bogus VR ZZ", part10(ExplicitVRLittleEndian, bogusZZ), Limits{}, ErrMalformed, `invalid VR bytes "ZZ"`},
		{"bogus VR NUL NUL", part10(ExplicitVRLittleEndian, bogusNul), Limits{}, ErrMalformed, `invalid VR bytes "??"`},
		{"undefined length UT", part10(ExplicitVRLittleEndian, undefinedUT), Limits{}, ErrMalformed, "undefined length on VR UT"},
		{"item at top level", part10(ExplicitVRLittleEndian, topItem), Limits{}, ErrMalformed, "item or delimiter"},
		{"delimiter in defined sequence", part10(ExplicitVRLittleEndian, delimInDefined), Limits{}, ErrMalformed, "sequence delimiter"},
		{"element in fragments", part10(JPEG2000Syntax, itemInFragments), Limits{}, ErrMalformed, "inside an encapsulated value"},
		{"unknown transfer syntax", part10("1.2.999.31337.1", base()), Limits{}, ErrUnsupported, "<non-standard UID>"},
		{"deep nesting", part10(ExplicitVRLittleEndian, nested(100_000)), Limits{}, ErrLimit, "nested deeper than 32"},
		{"deep private OB sequences", part10(ExplicitVRLittleEndian, deepPrivate), Limits{}, ErrLimit, "nested deeper"},
		{"many items", part10(ExplicitVRLittleEndian, manyItems(5000)), Limits{MaxElements: 1000}, ErrLimit, "more than 1000 elements and items"},
		{"many elements", part10(ExplicitVRLittleEndian, manyElements(5000)), Limits{MaxElements: 1000}, ErrLimit, "more than 1000 elements and items"},
		{"deflate bomb", deflated(t, append(hdr(base(), 0x00091010, "OB", 4<<20, false), make([]byte, 4<<20)...)), Limits{MaxInflated: 1 << 20}, ErrLimit, "inflates beyond 1048576 bytes"},
		{"corrupt deflate", part10(DeflatedExplicitVRLE, []byte("\xff\xff\xff\xff"+secret)), Limits{}, ErrMalformed, "cannot be inflated"},
		{"time limit", part10(ExplicitVRLittleEndian, manyElements(20_000)), Limits{MaxDuration: time.Nanosecond}, ErrLimit, "parsing took longer than the limit of 1ns"},
		{"time limit while inflating", deflated(t, manyElements(20_000)), Limits{MaxDuration: time.Nanosecond}, ErrLimit, "parsing took longer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseBytes(c.in, c.lim)
			if err == nil {
				t.Fatalf("accepted (%d elements), want %s", len(f.Elements), c.kind)
			}
			checkErr(t, err, c.kind, c.msg)
		})
	}
}

// JPEG2000Syntax is an encapsulated transfer syntax for fragment cases.
const JPEG2000Syntax = "1.2.840.10008.1.2.4.90"

// The same files within their limits parse: the refusals above are the
// limits', not the builders'.
func TestHostileBuildersParseWithinLimits(t *testing.T) {
	for name, in := range map[string][]byte{
		"nesting 30": part10(ExplicitVRLittleEndian, nested(30)),
		"items":      part10(ExplicitVRLittleEndian, manyItems(5000)),
		"elements":   part10(ExplicitVRLittleEndian, manyElements(5000)),
		"deflated":   deflated(t, manyElements(5000)),
	} {
		if _, err := parseBytes(in, Limits{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parseBytes(part10(ExplicitVRLittleEndian, nested(33)), Limits{MaxDepth: 40}); err != nil {
		t.Errorf("nesting 33 with MaxDepth 40: %v", err)
	}
}

// TestHostileTruncated cuts small corpus files at every offset (every 7th
// in the larger one): each cut is refused, except one that falls exactly
// between two top-level elements, which leaves a shorter but complete file.
func TestHostileTruncated(t *testing.T) {
	dir := corpusDir(t)
	for _, c := range []struct {
		name string
		step int
	}{
		{"ct_small_explicit_le.dcm", 7},
		{"charset_sq_inherit.dcm", 1},
		{"deflated_with_sq.dcm", 1},
		{"private_sq_undefined_length.dcm", 1},
		{"private_sq_vr_un.dcm", 1},
		{"rtstruct_small_nometa.dcm", 1},
		{"meta_no_group_length.dcm", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, c.name))
			if err != nil {
				t.Fatal(err)
			}
			full, err := parseBytes(data, Limits{})
			if err != nil {
				t.Fatalf("whole file: %v", err)
			}
			complete := map[int64]bool{}
			for _, e := range full.Meta {
				complete[e.End] = true
			}
			if !full.Syntax.Deflated {
				for _, e := range full.Elements {
					complete[e.End] = true
				}
			}
			refused := 0
			for cut := 0; cut < len(data); cut += c.step {
				f, err := parseBytes(data[:cut], Limits{})
				if err == nil {
					if !complete[int64(cut)] {
						t.Fatalf("cut at %d (not an element boundary) accepted", cut)
					}
					if f.Syntax.UID != full.Syntax.UID && !full.SyntaxInferred {
						t.Fatalf("cut at %d changed the syntax", cut)
					}
					continue
				}
				refused++
				pe := checkErr(t, err, "", "")
				switch pe.Kind {
				case ErrTruncated, ErrMalformed, ErrNotDICOM:
				default:
					t.Fatalf("cut at %d: kind %s (%v)", cut, pe.Kind, err)
				}
				if int64(cut) > full.BodyStart+8 && !full.Syntax.Deflated && pe.Kind != ErrTruncated {
					t.Fatalf("cut at %d inside the dataset: kind %s (%v), want truncated", cut, pe.Kind, err)
				}
			}
			if refused == 0 {
				t.Fatal("no cut refused")
			}
		})
	}
}

// TestHostileRandom feeds seeded random bytes, bare and behind a valid
// preamble and File Meta, and random mutations of a real file.
func TestHostileRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(20240611))
	seed, err := os.ReadFile(filepath.Join(corpusDir(t), "charset_sq_inherit.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[ErrorKind]int{}
	accepted := 0
	for i := 0; i < 1500; i++ {
		var in []byte
		switch i % 3 {
		case 0:
			in = make([]byte, rng.Intn(4097))
			rng.Read(in)
		case 1:
			body := make([]byte, rng.Intn(4097))
			rng.Read(body)
			in = part10(ExplicitVRLittleEndian, body)
		default:
			in = append([]byte(nil), seed...)
			for k := rng.Intn(8) + 1; k > 0; k-- {
				switch rng.Intn(3) {
				case 0:
					in[rng.Intn(len(in))] = byte(rng.Intn(256))
				case 1:
					if len(in) < 8 {
						continue
					}
					p := rng.Intn(len(in) - 4)
					binary.LittleEndian.PutUint32(in[p:], []uint32{0xFFFFFFFF, 0xFFFFFFF0, 0x7FFFFFFF, 0, 0xFFFEE000, 0xFFFEE0DD}[rng.Intn(6)])
				default:
					in = in[:rng.Intn(len(in))+1]
				}
			}
		}
		f, err := parseBytes(in, Limits{})
		if err != nil {
			kinds[checkErr(t, err, "", "").Kind]++
			continue
		}
		accepted++
		// Whatever parses must write and parse back.
		var out bytes.Buffer
		if err := Write(&out, f, []MetaElement{{Tag: TagTransferSyntaxUID, VR: "UI", Value: []byte(f.Syntax.UID)}}); err != nil {
			t.Fatalf("input %d: parsed but does not write: %v", i, err)
		}
		if _, err := parseBytes(out.Bytes(), Limits{}); err != nil {
			t.Fatalf("input %d: written output does not parse: %v", i, err)
		}
	}
	t.Logf("accepted %d, refused %v", accepted, kinds)
}

// failingReader returns the bytes before failAt, then fails with the kind
// of error os.File gives, which names the file's path.
type failingReader struct {
	data   []byte
	failAt int64
}

func (r failingReader) ReadAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > r.failAt {
		n := 0
		if off < r.failAt {
			n = copy(b, r.data[off:r.failAt])
		}
		return n, &fs.PathError{Op: "read", Path: "/data/" + secret + "/image.dcm", Err: syscall.EIO}
	}
	return copy(b, r.data[off:]), nil
}

// A read error is reported without the path it names.
func TestHostileReadError(t *testing.T) {
	in := part10(ExplicitVRLittleEndian, manyElements(100))
	_, err := Parse(failingReader{in, 400}, int64(len(in)), Limits{})
	checkErr(t, err, ErrMalformed, "read error: read: input/output error")
	d := deflated(t, manyElements(100))
	_, err = Parse(failingReader{d, int64(len(d) - 10)}, int64(len(d)), Limits{})
	checkErr(t, err, ErrMalformed, "cannot be inflated: read: input/output error")
}
