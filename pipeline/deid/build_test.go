package deid

import (
	"bytes"
	"context"
	"fmt"
	"github.com/dicomdeid/dicomdeid/pipeline/ocr"
	stdimage "image"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/profiles"
)

// el is an element of a synthetic test dataset.
type el struct {
	tag   uint32
	vr    string
	val   string
	items [][]el
}

func s(tag uint32, vr, v string) el       { return el{tag: tag, vr: vr, val: v} }
func sq(tag uint32, items ...[]el) el     { return el{tag: tag, vr: "SQ", items: items} }
func item(els ...el) []el                 { return els }
func enc(implicit bool) dicomraw.Encoding { return dicomraw.Encoding{Implicit: implicit} }
func sortEls(els []el) []el {
	sort.SliceStable(els, func(i, j int) bool { return els[i].tag < els[j].tag })
	return els
}
func tsOf(implicit bool) string {
	if implicit {
		return dicomraw.ImplicitVRLittleEndian
	}
	return dicomraw.ExplicitVRLittleEndian
}

func appendEls(t testing.TB, b []byte, els []el, e dicomraw.Encoding) []byte {
	t.Helper()
	var err error
	for _, x := range sortEls(append([]el(nil), els...)) {
		if x.vr == "SQ" {
			b, err = dicomraw.AppendHeader(b, dicomraw.Tag(x.tag), "SQ", dicomraw.Undefined, e)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range x.items {
				b, _ = dicomraw.AppendHeader(b, dicomraw.TagItem, "", dicomraw.Undefined, e)
				b = appendEls(t, b, it, e)
				b, _ = dicomraw.AppendHeader(b, dicomraw.TagItemDelimitation, "", 0, e)
			}
			b, _ = dicomraw.AppendHeader(b, dicomraw.TagSequenceDelimiter, "", 0, e)
			continue
		}
		v := dicomraw.Pad(x.vr, []byte(x.val))
		b, err = dicomraw.AppendHeader(b, dicomraw.Tag(x.tag), x.vr, uint32(len(v)), e)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, v...)
	}
	return b
}

// buildFile makes a Part 10 file from els.
func buildFile(t testing.TB, implicit bool, els []el) []byte {
	t.Helper()
	var sop, class string
	for _, x := range els {
		switch x.tag {
		case tagSOPInstanceUID:
			sop = x.val
		case tagSOPClassUID:
			class = x.val
		}
	}
	var out bytes.Buffer
	f := &dicomraw.File{Syntax: dicomraw.Syntax{UID: tsOf(implicit), Implicit: implicit}, Body: bytes.NewReader(nil)}
	body := appendEls(t, nil, els, enc(implicit))
	f.Body = bytes.NewReader(body)
	// One opaque element carrying the whole body keeps Write's copy path.
	f.Elements = []*dicomraw.Element{{Tag: 0x00080001, Offset: 0, End: int64(len(body))}}
	if err := dicomraw.Write(&out, f, []dicomraw.MetaElement{
		{Tag: 0x00020001, VR: "OB", Value: []byte{0, 1}},
		{Tag: 0x00020002, VR: "UI", Value: []byte(class)},
		{Tag: 0x00020003, VR: "UI", Value: []byte(sop)},
		{Tag: 0x00020010, VR: "UI", Value: []byte(tsOf(implicit))},
	}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func testKey(t testing.TB, fill byte) pseudonym.Key {
	t.Helper()
	k, err := pseudonym.ParseKey([]byte(strings.Repeat(fmt.Sprintf("%02x", fill), 40)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func profileWith(name string, opts ...ps315.Option) *rules.Profile {
	p := &rules.Profile{Name: name, Pseudonyms: rules.DefaultPseudonyms(), DateShift: rules.DefaultDateShift()}
	for _, o := range opts {
		p.Options[o] = true
	}
	return p
}

// builtinProfile loads a shipped profile from profiles/, so the corpus runs
// exactly what users run.
func builtinProfile(t testing.TB, name string) *rules.Profile {
	t.Helper()
	p, err := (&profiles.Loader{}).Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func basicProfile() *rules.Profile { return profileWith("basic") }

func researchProfile() *rules.Profile {
	return profileWith("research", ps315.RetainLongModifiedDates, ps315.RetainPatientCharacteristics,
		ps315.RetainSafePrivate, ps315.CleanDescriptors)
}

func newEngine(t testing.TB, p *rules.Profile, keyFill byte) *Engine {
	t.Helper()
	e, err := New(Config{Profile: p, Key: testKey(t, keyFill), OCR: blindReader{}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// deidBytes runs the engine on an in-memory file.
func deidBytes(t testing.TB, e *Engine, in []byte) ([]byte, *Result) {
	t.Helper()
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var out bytes.Buffer
	if _, err := j.WriteTo(&out); err != nil {
		t.Fatalf("write: %v", err)
	}
	return out.Bytes(), j.Result()
}

// parsed is an output read back for assertions.
type parsed struct {
	f   *dicomraw.File
	raw []byte
}

func parse(t testing.TB, b []byte) parsed {
	t.Helper()
	f, err := dicomraw.Parse(bytes.NewReader(b), int64(len(b)), dicomraw.Limits{})
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	return parsed{f: f, raw: b}
}

// find walks a path of tags (sequence tags take the first item).
func (p parsed) find(path ...uint32) *dicomraw.Element {
	els := p.f.Elements
	for i, tg := range path {
		var hit *dicomraw.Element
		for _, e := range els {
			if uint32(e.Tag) == tg {
				hit = e
			}
		}
		if hit == nil {
			return nil
		}
		if i == len(path)-1 {
			return hit
		}
		if len(hit.Items) == 0 {
			return nil
		}
		els = hit.Items[0].Elements
	}
	return nil
}

func (p parsed) str(path ...uint32) (string, bool) {
	e := p.find(path...)
	if e == nil {
		return "", false
	}
	return strings.TrimRight(string(e.Value), " \x00"), true
}

func (p parsed) metaStr(tag uint32) string {
	for _, e := range p.f.Meta {
		if uint32(e.Tag) == tag {
			return strings.TrimRight(string(e.Value), " \x00")
		}
	}
	return ""
}

// corpusDir is the shared corpus beside the repository.
func corpusDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("../../../shared/corpus")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err != nil {
		t.Fatalf("shared corpus not found at %s (tests read ../shared/corpus): %v", d, err)
	}
	return d
}

// writeVerified plans in with e and writes it through the verifier, as
// the service and deid run do; the test fails if either refuses.
func writeVerified(t testing.TB, e *Engine, in []byte) (*Job, []byte) {
	t.Helper()
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var out spool
	if _, _, err := j.WriteVerified(&out); err != nil {
		t.Fatalf("verified write: %v", err)
	}
	return j, out.Bytes()
}

// blindReader is an OCR that reads no text: the engine's tests of header
// work examine the pixels (the stroke test finds nothing in their
// synthetic images) without Tesseract. The burned-in text tests use the
// real one.
type blindReader struct{}

func (blindReader) Read(ctx context.Context, img *stdimage.Gray, psm ocr.PSM) ([]ocr.Line, error) {
	return nil, nil
}
