package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/uidreg"
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

// HeaderPrint is the part of a file's header that de-identification
// leaves as it is: the non-empty top-level values of public attributes
// that PS3.15 Table E.1-1 does not list and that are neither text, nor
// dates and times, nor instance UIDs (image geometry, acquisition
// numbers, codes, the SOP class), by tag, as stored. An output that
// carries the same values as one original, and no value that original
// lacks, was made from it (or from an original with the same header,
// which is then checked too): it pairs outputs whose UIDs, names and
// pixels have all changed, without a key.
type HeaderPrint map[uint32]string

// Header returns the HeaderPrint of f.
func Header(f *dicomraw.File) HeaderPrint {
	p := HeaderPrint{}
	for _, e := range f.Elements {
		t := e.Tag
		if t.IsPrivate() || t.Element() == 0 || t.Group() == 0x0002 || t.Group() == 0x0012 || t.Group() >= 0x7F00 ||
			t == 0x00280303 || t == 0x00280301 || e.Items != nil || !e.Loaded {
			continue
		}
		if _, listed := ps315.Lookup(uint32(t)); listed {
			continue
		}
		vr := e.VR
		if vr == "UN" || vr == "" {
			vr = dicomraw.DictVR(t)
		}
		switch vr {
		case "LO", "SH", "ST", "LT", "UT", "UC", "PN", "AE", "UR", "DA", "TM", "DT", "UN", "":
			continue
		case "UI":
			if !uidreg.ClassAttribute(uint32(t)) {
				continue
			}
		}
		v := trim(e.Value)
		if len(v) == 0 {
			continue
		}
		p[uint32(t)] = string(v)
	}
	return p
}

// within reports whether every value of p is o's too.
func (p HeaderPrint) within(o HeaderPrint) bool {
	for t, v := range p {
		if ov, ok := o[t]; !ok || ov != v {
			return false
		}
	}
	return true
}

// HeaderIndex finds the originals whose header an output's HeaderPrint
// is part of.
type HeaderIndex struct {
	prints []HeaderPrint
	byPair map[string][]int // tag and value -> originals holding it
}

// NewHeaderIndex returns an empty index.
func NewHeaderIndex() *HeaderIndex { return &HeaderIndex{byPair: map[string][]int{}} }

// Add indexes the print of original number i.
func (x *HeaderIndex) Add(i int, p HeaderPrint) {
	for len(x.prints) <= i {
		x.prints = append(x.prints, nil)
	}
	x.prints[i] = p
	for t, v := range p {
		k := pairKey(t, v)
		x.byPair[k] = append(x.byPair[k], i)
	}
}

func pairKey(t uint32, v string) string {
	return string([]byte{byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t)}) + v
}

// MinHeaderValues is the fewest values a HeaderPrint must have to pair a
// file; MaxHeaderMatches the most originals it may then match (more, and
// the header says too little to tell them apart).
const (
	MinHeaderValues  = 3
	MaxHeaderMatches = 16
)

// Match returns the originals whose print holds all of p, or nil when p
// is too small or matches too many.
func (x *HeaderIndex) Match(p HeaderPrint) []int {
	if len(p) < MinHeaderValues {
		return nil
	}
	// Start from the value fewest originals share.
	var best []int
	first := true
	for t, v := range p {
		c := x.byPair[pairKey(t, v)]
		if len(c) == 0 {
			return nil
		}
		if first || len(c) < len(best) {
			best, first = c, false
		}
	}
	var out []int
	for _, i := range best {
		if p.within(x.prints[i]) {
			out = append(out, i)
			if len(out) > MaxHeaderMatches {
				return nil
			}
		}
	}
	return out
}
