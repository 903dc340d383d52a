package bombs

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"io"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// body is the deflate stream of a bomb (after its File Meta).
func body(t *testing.T, b []byte) []byte {
	t.Helper()
	gl := binary.LittleEndian.Uint32(b[140:144])
	return b[144+gl:]
}

func inflatedSize(t *testing.T, b []byte) int64 {
	t.Helper()
	r := flate.NewReader(bytes.NewReader(body(t, b)))
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		t.Fatalf("the bomb does not inflate: %v", err)
	}
	return n
}

func TestDeflateInflatesToItsSize(t *testing.T) {
	for _, n := range []int64{1000, 3 << 20, 64<<20 + 5} {
		b := Deflate("2.25.1", n)
		if got := inflatedSize(t, b); got != n {
			t.Fatalf("Deflate(%d) inflates to %d bytes", n, got)
		}
		if n >= 1<<20 && int64(len(b))*500 > n {
			t.Fatalf("Deflate(%d) is %d bytes: a ratio below 500:1", n, len(b))
		}
	}
}

func TestDeflateOverFourGiBSplitsValues(t *testing.T) {
	// Only the size: inflating 4 GiB here would take the test's time.
	b := Deflate("2.25.1", 4<<30)
	if len(b) > 5<<20 || len(b) < 3<<20 {
		t.Fatalf("a 4 GiB bomb is %d bytes, want about 4.2 MB", len(b))
	}
}

func TestBombsParseAsDICOMWhenSmall(t *testing.T) {
	for name, tc := range map[string]struct {
		b    []byte
		want int
	}{
		// 5 File Meta elements, 7 ordinary ones and a private creator.
		"elements": {Elements("2.25.2", 5000), 13 + 5000},
		"items":    {Items("2.25.3", 5000), 13 + 1 + 5000 + 1}, // and its delimiter
		"deflate":  {Deflate("2.25.4", 1<<20), 13 + 1},
		// A sequence of 1000 items of 3 elements, and its delimiter.
		"values": {Values("2.25.6", 1000), 12 + 1 + 4*1000 + 1},
	} {
		f, err := dicomraw.Parse(bytes.NewReader(tc.b), int64(len(tc.b)), dicomraw.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Count != tc.want {
			t.Fatalf("%s: %d elements and items, want %d", name, f.Count, tc.want)
		}
	}
}

func TestElementBombIsSmall(t *testing.T) {
	b := Elements("2.25.5", 5_000_000)
	if len(b) > 100<<10 {
		t.Fatalf("5 million elements take %d bytes, want under 100 KiB", len(b))
	}
	if got := inflatedSize(t, b); got < 40_000_000 {
		t.Fatalf("inflates to %d bytes", got)
	}
}
