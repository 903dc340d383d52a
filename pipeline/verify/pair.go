package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Merge adds the identifying values of o to s, so that one matcher can
// look for the values of many inputs at once.
func (s *Set) Merge(o *Set) {
	for _, n := range o.needles {
		if i, ok := s.seen[n.text]; ok {
			if n.patient {
				s.needles[i].patient = true
			}
			for _, f := range n.forms {
				if !contains(s.needles[i].forms, f) {
					s.needles[i].forms = append(s.needles[i].forms, f)
				}
			}
			continue
		}
		s.seen[n.text] = len(s.needles)
		s.needles = append(s.needles, n)
	}
	for k, v := range o.exempt {
		s.exempt[k] = v
	}
	for k, v := range o.allowed {
		if _, ok := s.allowed[k]; !ok {
			s.allowed[k] = v
		}
	}
	for k, v := range o.retained {
		if _, ok := s.retained[k]; !ok {
			s.retained[k] = v
		}
	}
	for k, v := range o.charsets {
		s.charsets[k] = v
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// SOPInstanceUID is the top-level SOP Instance UID of f, else its File
// Meta's Media Storage SOP Instance UID, or "".
func SOPInstanceUID(f *dicomraw.File) string {
	for _, list := range [][]*dicomraw.Element{f.Elements, f.Meta} {
		for _, e := range list {
			if (e.Tag == 0x00080018 || e.Tag == 0x00020003) && e.Loaded {
				if v := strings.Trim(string(e.Value), " \x00"); v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// PixelDigest is a SHA-256 of the Pixel Data value as stored (native or
// encapsulated), read in chunks; ok is false without Pixel Data. A
// de-identifier that leaves pixels alone keeps it, so it pairs an output
// with its original when names and UIDs have all changed.
func PixelDigest(f *dicomraw.File) (string, bool, error) {
	for _, e := range f.Elements {
		if e.Tag != dicomraw.TagPixelData {
			continue
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f.Body, e.ValueOffset, e.End-e.ValueOffset)); err != nil {
			return "", false, fmt.Errorf("verify: read pixel data: %w", err)
		}
		return hex.EncodeToString(h.Sum(nil)), true, nil
	}
	return "", false, nil
}
