package deid

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/charset"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// TestReferencesConsistentAcrossFiles: a presentation state and the image it
// references, de-identified separately (as two workers would), still point
// at each other.
func TestReferencesConsistentAcrossFiles(t *testing.T) {
	dir := corpusDir(t)
	e := newEngine(t, builtinProfile(t, "research"), 7)
	img, _ := os.ReadFile(filepath.Join(dir, "cr_referenced_by_gsps.dcm"))
	ps, _ := os.ReadFile(filepath.Join(dir, "gsps_referencing_cr.dcm"))
	imgOut, _ := deidBytes(t, e, img)
	psOut, _ := deidBytes(t, newEngine(t, builtinProfile(t, "research"), 7), ps)
	pi, pp := parse(t, imgOut), parse(t, psOut)
	sop, _ := pi.str(tagSOPInstanceUID)
	series, _ := pi.str(tagSeriesInstanceUID)
	study, _ := pi.str(tagStudyInstanceUID)
	origSOP, _ := parse(t, img).str(tagSOPInstanceUID)
	if !strings.HasPrefix(sop, "2.25.") || sop == origSOP {
		t.Fatalf("image SOP Instance UID not mapped: %q", sop)
	}
	// Referenced Series Sequence > Referenced Image Sequence > Referenced SOP Instance UID
	ref, ok := pp.str(0x00081115, tRefImage, tRefSOP)
	if !ok || ref != sop {
		t.Errorf("GSPS references %q, image is %q", ref, sop)
	}
	if rs, _ := pp.str(0x00081115, tagSeriesInstanceUID); rs != series {
		t.Errorf("GSPS referenced series %q, image series %q", rs, series)
	}
	if st, _ := pp.str(tagStudyInstanceUID); st != study {
		t.Errorf("GSPS study %q, image study %q", st, study)
	}
	// Every UID at any depth of the references maps like the top level:
	// the same input UID anywhere gives the same output UID.
	const uid = "1.2.826.0.1.999.42.7"
	deep := buildFile(t, false, []el{
		s(tagSOPClassUID, "UI", ctClass),
		s(tagSOPInstanceUID, "UI", uid),
		sq(0x00081115, item(sq(tRefImage, item(sq(0x00089124, item(sq(0x00082112, item(s(tRefSOP, "UI", uid))))))))),
		s(tFoR, "UI", uid),
	})
	out, _ := deidBytes(t, e, deep)
	pd := parse(t, out)
	top, _ := pd.str(tagSOPInstanceUID)
	for _, path := range [][]uint32{{tFoR}, {0x00081115, tRefImage, 0x00089124, 0x00082112, tRefSOP}} {
		if got, ok := pd.str(path...); !ok || got != top {
			t.Errorf("%X: %q, want %q", path, got, top)
		}
	}
}

// TestCharsetsKeptAndCleaned: values in ISO 2022 (Japanese) and GB18030
// that the profile keeps are byte-identical; a description that contains
// the patient's name in the same encoding loses it and stays decodable.
func TestCharsetsKeptAndCleaned(t *testing.T) {
	cases := []struct {
		charset, name, nameInDesc, keptText string
	}{
		{`\ISO 2022 IR 87`, "ヤマダ^タロウ=山田^太郎", "山田", "造影剤あり"},
		{`GB18030`, "Wang^XiaoDong=王^小东", "王小东", "增强扫描"},
		{`ISO_IR 100`, "Müller^Jürgen", "Müller", "Kontrastmittel ja"},
	}
	for _, c := range cases {
		t.Run(c.charset, func(t *testing.T) {
			cs, err := charset.Parse(strings.Split(c.charset, `\`))
			if err != nil {
				t.Fatal(err)
			}
			encode := func(text, vr string) string {
				b, err := cs.Encode(text, vr)
				if err != nil {
					t.Fatalf("encode %q: %v", text, err)
				}
				return string(b)
			}
			name := encode(c.name, "PN")
			desc := encode("CT "+c.nameInDesc+" "+c.keptText, "LO")
			kept := encode(c.keptText, "LO")
			in := buildFile(t, false, []el{
				s(0x00080005, "CS", c.charset),
				s(tagSOPClassUID, "UI", ctClass),
				s(tagSOPInstanceUID, "UI", "1.2.826.0.1.999.5.1"),
				s(tStudyDsc, "LO", desc),
				s(tagPatientName, "PN", name),
				s(tagPatientID, "LO", "PID-77"),
				s(0x00080070, "LO", kept), // Manufacturer: not in Table E.1-1, kept
			})
			e := newEngine(t, profileWith("t", ps315.CleanDescriptors), 1)
			out, _ := deidBytes(t, e, in)
			p := parse(t, out)
			orig := parse(t, in)
			a, b := orig.find(0x00080070), p.find(0x00080070)
			if b == nil || !bytes.Equal(in[a.Offset:a.End], out[b.Offset:b.End]) {
				t.Error("kept Manufacturer not byte-identical")
			}
			got, ok := p.str(tStudyDsc)
			if !ok {
				t.Fatal("study description removed; Clean Descriptors keeps it cleaned")
			}
			text := cs.Decode([]byte(got), "LO")
			if strings.Contains(text, c.nameInDesc) || strings.Contains(got, encode(c.nameInDesc, "LO")) {
				t.Errorf("name left in the description: %q", text)
			}
			if !strings.Contains(text, c.keptText) {
				t.Errorf("description lost its other words: %q", text)
			}
			if pn, _ := p.str(tagPatientName); strings.Contains(pn, encode(c.nameInDesc, "LO")) {
				t.Error("patient name not replaced")
			}
		})
	}
}

// TestPrivateBlocksByCreator: a safe private attribute is found through its
// creator wherever the block sits (here block 0x11, not 0x10); another
// creator's element with the same number is removed, and so is the safe
// element written with another VR than the list's (not interpreted).
func TestPrivateBlocksByCreator(t *testing.T) {
	in := buildFile(t, false, []el{
		s(tagSOPClassUID, "UI", ctClass),
		s(tagSOPInstanceUID, "UI", "1.2.826.0.1.999.6.1"),
		s(0x00190010, "LO", "SOMEONE ELSE"),
		s(0x00190011, "LO", "GEMS_ACQU_01"),
		s(0x00191023, "DS", "11.5"),   // SOMEONE ELSE, element 0x23: not safe
		s(0x00191123, "DS", "39.375"), // GEMS_ACQU_01, element 0x23: safe
		s(0x00191199, "LO", "name"),   // GEMS_ACQU_01, element 0x99: not listed
		s(0x00190012, "LO", "GEMS_ACQU_01"),
		s(0x00191223, "LO", "Kowalczyk"), // the safe element, not written as its DS: removed
	})
	if _, ok := ps315.LookupSafePrivate(0x0019, "GEMS_ACQU_01", 0x23); !ok {
		t.Fatal("test assumes (0019,xx23) GEMS_ACQU_01 is in Table E.3.10-1")
	}
	out, res := deidBytes(t, newEngine(t, profileWith("t", ps315.RetainSafePrivate), 1), in)
	p := parse(t, out)
	want := map[uint32]bool{0x00190011: true, 0x00191123: true, 0x00190010: false, 0x00191023: false, 0x00191199: false,
		0x00190012: false, 0x00191223: false}
	for tag, present := range want {
		if got := p.find(tag) != nil; got != present {
			t.Errorf("(%04X,%04X) present=%v, want %v", tag>>16, tag&0xFFFF, got, present)
		}
	}
	if res.Counts.PrivateKept != 1 || res.Counts.PrivateRemoved != 3 {
		t.Errorf("private kept/removed = %d/%d, want 1/3", res.Counts.PrivateKept, res.Counts.PrivateRemoved)
	}
	// Without the option every private element and creator goes.
	out, _ = deidBytes(t, newEngine(t, basicProfile(), 1), in)
	for _, e := range parse(t, out).f.Elements {
		if e.Tag.IsPrivate() {
			t.Errorf("basic kept private %s", e.Tag)
		}
	}
}

// TestLargePixelDataStreams: a 150 MB pixel data value is copied from the
// source, not loaded: the bytes allocated while planning and writing stay
// a small fraction of the file, and the pixels arrive bit-identical.
func TestLargePixelDataStreams(t *testing.T) {
	const pixelLen = 150 << 20
	head := buildFile(t, false, []el{
		s(tagSOPClassUID, "UI", ctClass),
		s(tagSOPInstanceUID, "UI", "1.2.826.0.1.999.8.1"),
		s(tagPatientName, "PN", "Large^File"),
		s(tagPatientID, "LO", "PID-LARGE"),
	})
	path := filepath.Join(t.TempDir(), "large.dcm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := dicomraw.AppendHeader(head, dicomraw.TagPixelData, "OW", pixelLen, enc(false))
	if _, err := f.Write(hdr); err != nil {
		t.Fatal(err)
	}
	// A recognisable pattern at both ends; the middle is a sparse hole.
	pattern := bytes.Repeat([]byte{0xA5, 0x5A, 0x01, 0x02}, 1024)
	f.Write(pattern)
	if err := f.Truncate(int64(len(hdr)) + pixelLen); err != nil {
		t.Fatal(err)
	}
	f.WriteAt(pattern, int64(len(hdr))+pixelLen-int64(len(pattern)))
	st, _ := f.Stat()

	e := newEngine(t, builtinProfile(t, "research"), 1)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	j, err := e.Plan(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	h := &tailHasher{}
	n, err := j.WriteTo(h)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	f.Close()
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d MB to de-identify a %d MB file; pixel data must stream", alloc>>20, st.Size()>>20)
	}
	if n < pixelLen || !bytes.Equal(h.tail, pattern) {
		t.Errorf("output %d bytes, tail pattern intact %v", n, bytes.Equal(h.tail, pattern))
	}
	if !bytes.Contains(h.head, append(binary.LittleEndian.AppendUint32(nil, pixelLen), pattern[:64]...)) {
		t.Error("pixel data header or first bytes changed")
	}
}

// tailHasher keeps the first 64 KB and the last bytes written.
type tailHasher struct {
	head, tail []byte
}

func (h *tailHasher) Write(p []byte) (int, error) {
	if len(h.head) < 64<<10 {
		n := min(len(p), 64<<10-len(h.head))
		h.head = append(h.head, p[:n]...)
	}
	keep := 4096
	h.tail = append(h.tail, p...)
	if len(h.tail) > keep {
		h.tail = append(h.tail[:0], h.tail[len(h.tail)-keep:]...)
	}
	return len(p), nil
}

// TestPrivateRuleFollowsCreator: a rule on a private attribute applies
// through its creator only, and its keyed value does not depend on where
// the block sits in a given file.
func TestPrivateRuleFollowsCreator(t *testing.T) {
	p := profileWith("t")
	p.Rules = []rules.Rule{{
		Selector: rules.Selector{Private: &rules.PrivateSelector{Group: 0x0029, Creator: "ACME RESEARCH", Element: 0x01}},
		Action:   rules.Replace, Value: "SUBJ-{hash:6}",
	}}
	e := newEngine(t, p, 3)
	file := func(block uint32, other string) []byte {
		return buildFile(t, false, []el{
			s(tagSOPClassUID, "UI", ctClass),
			s(tagSOPInstanceUID, "UI", "1.2.826.0.1.999.9.9"),
			s(0x00290000|block, "LO", "ACME RESEARCH"),
			s(0x00290000|block<<8|0x01, "LO", "subject 17"),
			s(0x00290000|(block+1), "LO", other),
			s(0x00290000|(block+1)<<8|0x01, "LO", "subject 17"),
		})
	}
	out1, _ := deidBytes(t, e, file(0x10, "SOMEONE ELSE"))
	out2, _ := deidBytes(t, e, file(0x20, "SOMEONE ELSE"))
	v1, ok1 := parse(t, out1).str(0x00291001)
	v2, ok2 := parse(t, out2).str(0x00292001)
	if !ok1 || !ok2 || v1 != v2 || !strings.HasPrefix(v1, "SUBJ-") || len(v1) != 11 {
		t.Errorf("replaced values %q (%v) and %q (%v): want one SUBJ- value", v1, ok1, v2, ok2)
	}
	// The same element number under another creator is not selected.
	if _, ok := parse(t, out1).str(0x00291101); ok {
		t.Error("element of another creator kept by a rule for ACME RESEARCH")
	}
}
