package verify

import (
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// A private attribute's path names a known creator as Table E.3.10-1
// spells it, never with the bytes the file wrote around it (a leading
// NUL matched after normalisation and went into finding paths).
func TestPrivatePathNamesCreatorAsTheTable(t *testing.T) {
	const tag = dicomraw.Tag(0x00191008)
	cases := []struct{ creator, want string }{
		{"SIEMENS MR HEADER", `(0019,"SIEMENS MR HEADER",08)`},
		{"\x00SIEMENS MR HEADER", `(0019,"SIEMENS MR HEADER",08)`},
		{" \x00siemens mr header\x00", `(0019,"SIEMENS MR HEADER",08)`},
		{"\u00a0SIEMENS MR HEADER\t", `(0019,"SIEMENS MR HEADER",08)`},
		{"SIEMENS\x00MR HEADER", "(0019,xx08)"},
		{"ACME PRIVATE", "(0019,xx08)"},
		{"", "(0019,xx08)"},
	}
	for _, c := range cases {
		if got := attrName(tag, map[uint32]string{0x0019<<8 | 0x10: c.creator}); got != c.want {
			t.Errorf("creator %q: path %q, want %q", c.creator, got, c.want)
		}
	}
}
