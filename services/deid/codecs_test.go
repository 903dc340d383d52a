package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
)

// `deid version` says which pixel codecs the binary has; a build without
// the C libraries says that it holds back what it cannot decode.
func TestVersionNamesCodecs(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	if !strings.Contains(s, "pixel codecs: ") || !strings.Contains(s, "RLE Lossless (1.2.840.10008.1.2.5)") {
		t.Fatalf("no codec list:\n%s", s)
	}
	if codec.CGO {
		for _, want := range []string{"JPEG-LS Lossless (1.2.840.10008.1.2.4.80): CharLS", "HTJ2K Lossless (1.2.840.10008.1.2.4.201): OpenJPEG",
			"JPEG Lossless SV1 (1.2.840.10008.1.2.4.70): libjpeg-turbo"} {
			if !strings.Contains(s, want) {
				t.Errorf("cgo build lacks %q:\n%s", want, s)
			}
		}
	} else if !strings.Contains(s, "held back") || strings.Contains(s, "CharLS") {
		t.Errorf("pure-Go build does not say what it holds back:\n%s", s)
	}
}
