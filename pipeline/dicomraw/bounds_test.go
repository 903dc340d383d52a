package dicomraw

import (
	"bytes"
	"compress/flate"
	"errors"
	"runtime"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/bombs"
)

// Memory and disk bounds of Parse: a deflated dataset inflates into a
// scratch file, never into memory; a deflate bomb is refused after a few
// megabytes; what a parse holds is charged to its budget, and an element
// bomb is refused once it holds more than the budget allows. The bounds
// are measured in the process: bytes allocated during the parse (an upper
// bound of what it held at any time) and bytes written to the scratch file.

// recScratch is a scratch file that counts what is written to it.
type recScratch struct {
	Scratch
	written int64
	closed  int
}

func (s *recScratch) Write(b []byte) (int, error) {
	n, err := s.Scratch.Write(b)
	s.written += int64(n)
	return n, err
}

func (s *recScratch) Close() error {
	s.closed++
	return s.Scratch.Close()
}

func withScratch(t *testing.T, lim Limits) (Limits, *recScratch) {
	t.Helper()
	rec := &recScratch{}
	lim.Scratch = func() (Scratch, error) {
		sc, err := TempScratch(t.TempDir())
		rec.Scratch = sc
		return rec, err
	}
	return lim, rec
}

// allocated is the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

func TestDeflateBombsAreRefusedEarly(t *testing.T) {
	for _, c := range []struct {
		name     string
		inflated int64
	}{
		{"4.2 MB to 4 GiB", 4 << 30},
		{"1 MB to 1000 MiB", 1000 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := bombs.Deflate("2.25.1", c.inflated)
			lim, sc := withScratch(t, Limits{})
			var err error
			alloc := allocated(func() { _, err = parseBytes(in, lim) })
			checkErr(t, err, ErrLimit, "inflates to more than 200 times its deflated size")
			if sc.written > RatioFloor+64<<10 {
				t.Errorf("%d bytes inflated before the refusal, want at most %d", sc.written, RatioFloor+64<<10)
			}
			if alloc > 2<<20 {
				t.Errorf("%d bytes allocated to refuse the bomb, want under 2 MiB", alloc)
			}
			if sc.closed != 1 {
				t.Errorf("scratch file closed %d times, want once", sc.closed)
			}
		})
	}
}

func TestDeflatedDatasetIsReadFromItsScratchFile(t *testing.T) {
	in := bombs.Deflate("2.25.1", 24<<20)
	lim, sc := withScratch(t, Limits{MaxInflateRatio: -1})
	var f *File
	var err error
	alloc := allocated(func() { f, err = parseBytes(in, lim) })
	if err != nil {
		t.Fatal(err)
	}
	if f.Body != Scratch(sc) || f.BodyEnd != 24<<20 || sc.written != 24<<20 {
		t.Fatalf("body %T of %d bytes, %d written to the scratch file; want the scratch file's 24 MiB", f.Body, f.BodyEnd, sc.written)
	}
	if alloc > 2<<20 {
		t.Fatalf("%d bytes allocated for a 24 MiB dataset, want under 2 MiB: it is inflated into memory", alloc)
	}
	// The 24 MiB value is copied from the scratch file, not loaded.
	var out bytes.Buffer
	if err := Write(&out, f, []MetaElement{{Tag: TagTransferSyntaxUID, VR: "UI", Value: []byte(DeflatedExplicitVRLE)}}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f.Close()
	if sc.closed != 1 {
		t.Fatalf("scratch file closed %d times, want once", sc.closed)
	}
	back, err := parseBytes(out.Bytes(), Limits{MaxInflateRatio: -1})
	if err != nil || back.BodyEnd != 24<<20 {
		t.Fatalf("written back: %v", err)
	}
	back.Close()
}

func TestDeflatedSizeAndRatioLimits(t *testing.T) {
	in := bombs.Deflate("2.25.1", 20<<20)
	_, err := parseBytes(in, Limits{MaxInflated: 16 << 20, MaxInflateRatio: -1})
	checkErr(t, err, ErrLimit, "inflates beyond 16777216 bytes")
	_, err = parseBytes(in, Limits{MaxInflateRatio: 2000})
	if err != nil {
		t.Fatalf("a 20 MiB dataset at ~1000:1 under a ratio limit of 2000: %v", err)
	}
	// Below RatioFloor any ratio is accepted: small datasets of zeros
	// compress as well as they like.
	if _, err := parseBytes(bombs.Deflate("2.25.1", RatioFloor-1<<20), Limits{}); err != nil {
		t.Fatalf("a dataset below the ratio floor: %v", err)
	}
}

func TestDeflateStreamCutShortIsRefused(t *testing.T) {
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestSpeed)
	w.Write(manyElements(2000)) //nolint:errcheck
	w.Close()                   //nolint:errcheck
	cut := z.Bytes()[:z.Len()/2]
	lim, sc := withScratch(t, Limits{})
	_, err := parseBytes(part10(DeflatedExplicitVRLE, cut), lim)
	checkErr(t, err, ErrMalformed, "cannot be inflated")
	if sc.closed != 1 {
		t.Fatalf("scratch file closed %d times on failure, want once", sc.closed)
	}
}

// capBudget refuses charges past its limit and records the total.
type capBudget struct{ limit, used int64 }

var errOverBudget = errors.New("over the test budget")

func (b *capBudget) Charge(n int64) error {
	b.used += n
	if b.used > b.limit {
		return errOverBudget
	}
	return nil
}

func TestBudgetRefusesElementBombs(t *testing.T) {
	for name, in := range map[string][]byte{
		"5 million elements": bombs.Elements("2.25.1", 5_000_000),
		"5 million items":    bombs.Items("2.25.1", 5_000_000),
	} {
		t.Run(name, func(t *testing.T) {
			// The bombs inflate about 700:1, which the ratio limit refuses
			// at 8 MiB already: off here, to see the budget at work.
			b := &capBudget{limit: 16 << 20}
			var err error
			alloc := allocated(func() { _, err = parseBytes(in, Limits{Budget: b, MaxInflateRatio: -1}) })
			pe := checkErr(t, err, ErrLimit, "over the test budget")
			if pe.Offset == 0 {
				t.Error("the refusal names no offset")
			}
			// What was allocated: the charged tree, the growth of its
			// lists, the reader's and inflater's buffers.
			if alloc > 2*16<<20+4<<20 {
				t.Errorf("%d bytes allocated under a 16 MiB budget", alloc)
			}
		})
	}
}

// The charges cover what the tree holds: the live heap after a parse is
// no more than what the parse charged.
func TestBudgetChargesCoverTheTree(t *testing.T) {
	for name, in := range map[string][]byte{
		"elements with values": part10(ExplicitVRLittleEndian, manyElements(100_000)),
		"items":                part10(ExplicitVRLittleEndian, manyItems(100_000)),
		"big values":           part10(ExplicitVRLittleEndian, bigValues(64, 300_000)),
	} {
		t.Run(name, func(t *testing.T) {
			b := &capBudget{limit: 1 << 40}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			f, err := parseBytes(in, Limits{Budget: b})
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			if live > b.used {
				t.Fatalf("the tree holds %d bytes, the parse charged %d", live, b.used)
			}
			runtime.KeepAlive(f)
		})
	}
}

// bigValues is n private OB values of size bytes each, loaded by the
// parser (under MaxValueInMemory).
func bigValues(n, size int) []byte {
	b := elem(base(), 0x00090010, "LO", "CREATOR")
	for i := 0; i < n; i++ {
		b = hdr(b, NewTag(0x0009, 0x1000+uint16(i)), "OB", uint32(size), false)
		b = append(b, bytes.Repeat([]byte{byte(i)}, size)...)
	}
	return b
}

// A scratch file that cannot be made is the system's failure, not the
// file's: a *ScratchError, not a *Error, so that a service tries again
// rather than quarantining the file.
func TestNoScratchFileIsNotTheFilesFault(t *testing.T) {
	lim := Limits{Scratch: func() (Scratch, error) { return nil, errors.New("no space left on device") }}
	_, err := parseBytes(bombs.Deflate("2.25.1", 1<<20), lim)
	var se *ScratchError
	var pe *Error
	if !errors.As(err, &se) || errors.As(err, &pe) {
		t.Fatalf("got %T %v, want a *ScratchError", err, err)
	}
}
