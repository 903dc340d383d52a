package verify

import (
	"bytes"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/dicomdeid/dicomdeid/pipeline/charset"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

type el struct {
	tag   uint32
	vr    string
	val   string
	items [][]el
}

func v(tag uint32, vr, val string) el  { return el{tag: tag, vr: vr, val: val} }
func seq(tag uint32, items ...[]el) el { return el{tag: tag, vr: "SQ", items: items} }

func appendEls(t *testing.T, b []byte, els []el) []byte {
	t.Helper()
	e := dicomraw.Encoding{}
	sorted := append([]el(nil), els...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].tag < sorted[j].tag })
	for _, x := range sorted {
		if x.vr == "SQ" {
			b, _ = dicomraw.AppendHeader(b, dicomraw.Tag(x.tag), "SQ", dicomraw.Undefined, e)
			for _, it := range x.items {
				b, _ = dicomraw.AppendHeader(b, dicomraw.TagItem, "", dicomraw.Undefined, e)
				b = appendEls(t, b, it)
				b, _ = dicomraw.AppendHeader(b, dicomraw.TagItemDelimitation, "", 0, e)
			}
			b, _ = dicomraw.AppendHeader(b, dicomraw.TagSequenceDelimiter, "", 0, e)
			continue
		}
		val := dicomraw.Pad(x.vr, []byte(x.val))
		var err error
		b, err = dicomraw.AppendHeader(b, dicomraw.Tag(x.tag), x.vr, uint32(len(val)), e)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, val...)
	}
	return b
}

// file builds a Part 10 file and parses it back.
func file(t *testing.T, els ...el) *dicomraw.File {
	t.Helper()
	body := appendEls(t, nil, els)
	src := &dicomraw.File{Syntax: dicomraw.Syntax{UID: dicomraw.ExplicitVRLittleEndian}, Body: bytes.NewReader(body),
		Elements: []*dicomraw.Element{{Tag: 0x00080001, Offset: 0, End: int64(len(body))}}}
	var out bytes.Buffer
	if err := dicomraw.Write(&out, src, []dicomraw.MetaElement{
		{Tag: 0x00020001, VR: "OB", Value: []byte{0, 1}},
		{Tag: 0x00020002, VR: "UI", Value: []byte("1.2.840.10008.5.1.4.1.1.7")},
		{Tag: 0x00020003, VR: "UI", Value: []byte("1.2.826.0.1.3680043.99.1")},
	}); err != nil {
		t.Fatal(err)
	}
	f, err := dicomraw.Parse(bytes.NewReader(out.Bytes()), int64(out.Len()), dicomraw.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const (
	tCharset  = 0x00080005
	tSOP      = 0x00080018
	tInst     = 0x00080080
	tManuf    = 0x00080070
	tStudyDsc = 0x00081030
	tName     = 0x00100010
	tID       = 0x00100020
	tBirth    = 0x00100030
	tComments = 0x00204000
	tRefSeq   = 0x00081140
	tRefSOP   = 0x00081155
	tImgType  = 0x00080008
)

func toL1(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

func utf16le(s string) string {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = append(b, byte(c), byte(c>>8))
	}
	return string(b)
}

func input(charsetTerm, name string) []el {
	if charsetTerm == "ISO_IR 100" {
		name = toL1(name)
	}
	return []el{
		v(tCharset, "CS", charsetTerm),
		v(tSOP, "UI", "1.2.826.0.1.3680043.99.1"),
		v(tManuf, "LO", "TOSHIBA_MEC"),
		v(tInst, "LO", "TOSHIBA"),
		v(tName, "PN", name),
		v(tID, "LO", "MRN0048151623"),
		v(tBirth, "DA", "19450321"),
		v(tImgType, "CS", `ORIGINAL\PRIMARY`),
		seq(tRefSeq, []el{v(0x00081150, "UI", "1.2.840.10008.5.1.4.1.1.2"), v(tRefSOP, "UI", "1.2.826.0.1.3680043.99.7.7")}),
	}
}

func findings(t *testing.T, pol Policy, in, out *dicomraw.File) ([]Finding, []Exemption) {
	t.Helper()
	fs, ex, err := Collect(in, pol).Compile().Scan(out)
	if err != nil {
		t.Fatal(err)
	}
	return fs, ex
}

func TestResidualIdentifiersFound(t *testing.T) {
	in := file(t, input("ISO_IR 100", "Müller^Jürgen")...)
	clean := []el{v(tCharset, "CS", "ISO_IR 100"), v(tSOP, "UI", "2.25.1234567890"), v(tManuf, "LO", "TOSHIBA_MEC"),
		v(tName, "PN", "ANONQWERTY"), v(tImgType, "CS", `ORIGINAL\PRIMARY`)}
	jp, _ := charset.Parse([]string{"", "ISO 2022 IR 87"})
	jpName, _ := jp.Encode("山田^太郎", "PN")
	jpDesc, _ := jp.Encode("CT 山田太郎 造影", "LO")
	cases := []struct {
		name       string
		in         *dicomraw.File
		extra      []el
		wantPath   string // output path of the finding; "" for none
		wantSource string
	}{
		{"clean output", in, nil, "", ""},
		{"surname in a description, other case", in, []el{v(tStudyDsc, "LO", toL1("CT THORAX MÜLLER"))}, "StudyDescription", "PatientName"},
		{"surname in UTF-8 although the file is Latin-1", in, []el{v(tComments, "LT", "seen by müller")}, "ImageComments", "PatientName"},
		{"MRN inside a private value", in, []el{v(0x00190010, "LO", "ACME 1.0"), v(0x00191001, "LO", "ref MRN0048151623 ok")}, "(0019,xx01)", "PatientID"},
		{"name in UTF-16LE in a private OB", in, []el{v(0x00190010, "LO", "ACME 1.0"), v(0x00191002, "OB", "\x01\x02"+utf16le("Jürgen Müller")+"\x00\x00")}, "(0019,xx02)", "PatientName"},
		{"birth date in a comment", in, []el{v(tComments, "LT", "born 19450321.")}, "ImageComments", "PatientBirthDate"},
		{"original UID in a nested reference", in, []el{seq(tRefSeq, []el{v(tRefSOP, "UI", "1.2.826.0.1.3680043.99.7.7")})}, "ReferencedImageSequence[1]/ReferencedSOPInstanceUID", "ReferencedImageSequence[1]/ReferencedSOPInstanceUID"},
		{"name in SR text three levels deep", in, []el{seq(0x0040A730, []el{seq(0x0040A730, []el{seq(0x0040A730, []el{v(0x0040A160, "UT", "Jürgen reported pain")})})})}, "ContentSequence[1]/ContentSequence[1]/ContentSequence[1]/TextValue", "PatientName"},
		{"ISO 2022 name inside a Japanese description", file(t, input(`\ISO 2022 IR 87`, string(jpName))...), []el{v(tStudyDsc, "LO", string(jpDesc))}, "StudyDescription", "PatientName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			els := append(append([]el(nil), clean...), c.extra...)
			if c.in != in {
				els[0] = v(tCharset, "CS", `\ISO 2022 IR 87`)
			}
			fs, _ := findings(t, Policy{}, c.in, file(t, els...))
			if c.wantPath == "" {
				if len(fs) != 0 {
					t.Fatalf("findings on a clean output: %v", fs)
				}
				return
			}
			for _, f := range fs {
				if f.Path == c.wantPath && strings.HasPrefix(f.Source, c.wantSource) {
					if strings.Contains(f.String(), "ller") || strings.Contains(f.String(), "0048151623") {
						t.Errorf("finding carries the value: %s", f)
					}
					return
				}
			}
			t.Errorf("no finding at %s from %s; got %v", c.wantPath, c.wantSource, fs)
		})
	}
}

func TestInputCopyFlagsEverything(t *testing.T) {
	in := file(t, input("ISO_IR 100", "Müller^Jürgen")...)
	fs, _ := findings(t, Policy{}, in, in)
	got := map[string]bool{}
	for _, f := range fs {
		got[f.Source] = true
	}
	for _, want := range []string{"PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "SOPInstanceUID", "ReferencedImageSequence[1]/ReferencedSOPInstanceUID"} {
		if !got[want] {
			t.Errorf("copy of the input: %s not flagged (got %v)", want, got)
		}
	}
}

func TestBoundariesAndCoincidences(t *testing.T) {
	in := file(t, v(tCharset, "CS", "ISO_IR 100"), v(tID, "LO", "48151"), v(tName, "PN", "Lee^Ann"),
		v(tManuf, "LO", "TOSHIBA_MEC"), v(tInst, "LO", "TOSHIBA"))
	cases := []struct {
		name  string
		out   []el
		found bool
	}{
		{"digits inside a longer number", []el{v(0x00181050, "DS", "0.481512")}, false},
		{"digits standing alone", []el{v(tComments, "LT", "id 48151, see")}, true},
		{"short name inside a word", []el{v(tComments, "LT", "asleep")}, false},
		{"short name as a word", []el{v(tComments, "LT", "patient Lee moved")}, true},
		{"institution equal to a kept manufacturer value", []el{v(tManuf, "LO", "TOSHIBA_MEC")}, false},
		{"institution in free text", []el{v(tComments, "LT", "scanned at toshiba")}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := findings(t, Policy{}, in, file(t, append([]el{v(tCharset, "CS", "ISO_IR 100")}, c.out...)...))
			if (len(fs) > 0) != c.found {
				t.Errorf("found=%v, want %v (%v)", len(fs) > 0, c.found, fs)
			}
		})
	}
}

func TestRetainedOnPurposeIsExempt(t *testing.T) {
	in := file(t, input("ISO_IR 100", "Müller^Jürgen")...)
	out := file(t, v(tInst, "LO", "TOSHIBA"), v(tStudyDsc, "LO", "TOSHIBA"))
	var pol Policy
	pol.Options[ps315.RetainInstitutionIdentity] = true
	fs, ex := findings(t, pol, in, out)
	if len(fs) != 0 {
		t.Errorf("institution retained by option, still flagged: %v", fs)
	}
	found := false
	for _, e := range ex {
		if e.Path == "InstitutionName" && strings.Contains(e.Reason, "retain_institution_identity") {
			found = true
		}
	}
	if !found {
		t.Errorf("exemption not reported: %v", ex)
	}
	// Without the option the same output is a leak.
	if fs, _ := findings(t, Policy{}, in, out); len(fs) == 0 {
		t.Error("institution name not flagged without the option")
	}
	// A keep rule on a private attribute exempts it, and only it.
	in2 := file(t, v(0x00190010, "LO", "ACME 1.0"), v(0x00191001, "LO", "Special Protocol Alpha"), v(0x00191002, "LO", "Another Secret Thing"))
	pol2 := Policy{KeepPrivate: map[PrivateKey]bool{{Group: 0x0019, Creator: "ACME 1.0", Element: 0x01}: true}}
	fs, _ = findings(t, pol2, in2, in2)
	if len(fs) != 1 || fs[0].Source != "(0019,xx02)" {
		t.Errorf("private keep rule: findings %v, want only (0019,xx02)", fs)
	}
}

// TestMixedCaseNonASCII: non-ASCII capitals inside a word ("Éléonore")
// match neither the lower- nor the upper-case form; the original spelling
// is looked for too.
func TestMixedCaseNonASCII(t *testing.T) {
	in := file(t, v(tCharset, "CS", "ISO_IR 192"), v(tInst, "LO", "Hôpital Sainte-Éléonore de Lévis"))
	for _, out := range []string{"Hôpital Sainte-Éléonore de Lévis", "HÔPITAL SAINTE-ÉLÉONORE DE LÉVIS", "hôpital sainte-éléonore de lévis"} {
		fs, _ := findings(t, Policy{}, in, file(t, v(tCharset, "CS", "ISO_IR 192"), v(tComments, "LT", "at "+out)))
		if len(fs) == 0 {
			t.Errorf("%q not flagged", out)
		}
	}
}

// A cached compilation serves another file with the same needles, and
// its findings still name that file's attributes.
func TestCompileCachedNamesTheFilesOwnAttributes(t *testing.T) {
	cache := NewCache(8)
	pol := Policy{}
	outEl := []el{v(tSOP, "UI", "2.25.99"), v(tComments, "LT", "seen: Kowalski Jan, MRN0048151623")}
	inA := file(t, v(tSOP, "UI", "1.2.826.0.1.3680043.99.1"), v(tName, "PN", "Kowalski^Jan"), v(tID, "LO", "MRN0048151623"))
	inB := file(t, v(tSOP, "UI", "1.2.826.0.1.3680043.99.2"), v(tName, "PN", "Kowalski^Jan"), v(tID, "LO", "MRN0048151623"),
		v(0x00101001, "PN", "Kowalski^Jan")) // Other Patient Names: same needles, another source
	out := file(t, outEl...)
	for _, in := range []*dicomraw.File{inA, inB, inA} {
		set := Collect(in, pol)
		want, _, err := set.Compile().Scan(out)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := Collect(in, pol).CompileCached(cache).Scan(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("cached findings %v, want %v", got, want)
		}
	}
	if len(cache.m) != 1 {
		t.Errorf("%d compiled lists cached, want 1 (the three files share their needles)", len(cache.m))
	}
	// One needle more is another list: its own compilation, which finds it.
	inC := file(t, v(tSOP, "UI", "1.2.826.0.1.3680043.99.3"), v(tName, "PN", "Kowalski^Jan"), v(tID, "LO", "MRN0048151623"),
		v(0x00101001, "PN", "Nowak^Ewa"))
	outC := file(t, v(tSOP, "UI", "2.25.98"), v(tComments, "LT", "seen: Nowak"))
	got, _, err := Collect(inC, pol).CompileCached(cache).Scan(outC)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Source != "OtherPatientNames" {
		t.Errorf("findings %v, want Nowak from OtherPatientNames", got)
	}
	if len(cache.m) != 2 {
		t.Errorf("%d compiled lists cached, want 2", len(cache.m))
	}
}

// A safe private attribute is exempt under Retain Safe Private only when
// it is written as the list says (GEMS_ACQU_01 element 0x23 is a DS): the
// same element holding text under another VR is looked at like any other
// private value.
func TestSafePrivateExemptOnlyWithItsVR(t *testing.T) {
	pol := Policy{}
	pol.Options[ps315.RetainSafePrivate] = true
	creator := v(0x00190010, "LO", "GEMS_ACQU_01")
	for _, c := range []struct {
		vr, val string
		flagged bool
	}{
		{"DS", "39.375", false},
		{"LO", "Kowalczyk Zbigniew", true},
	} {
		in := file(t, creator, v(0x00191023, c.vr, c.val))
		out := file(t, creator, v(0x00191023, c.vr, c.val))
		fs, _ := findings(t, pol, in, out)
		if (len(fs) > 0) != c.flagged {
			t.Errorf("VR %s: findings %v, want flagged %v", c.vr, fs, c.flagged)
		}
	}
}

// A kept private creator is a vendor's published block name: text of the
// file that happens to be part of it (a removed private value holding
// "GEMS_ACQU") is no leak. A creator the table and the profile do not
// name could hold anything, and is scanned like any value.
func TestKeptCreatorHoldsNoLeak(t *testing.T) {
	removed := []el{v(0x00290010, "LO", "ACME 1.0"), v(0x00291001, "LO", "GEMS_ACQU")}
	for _, c := range []struct {
		name    string
		pol     Policy
		group   uint32
		creator string
		flagged bool
	}{
		{"safe private creator", Policy{}, 0x0019, "GEMS_ACQU_01", false},
		{"padded, other case", Policy{}, 0x0019, "gems_acqu_01 ", false},
		{"creator of a keep rule", Policy{KeepPrivate: map[PrivateKey]bool{{Group: 0x0019, Creator: "MY GEMS_ACQU BLOCK", Element: 0x01}: true}},
			0x0019, "MY GEMS_ACQU BLOCK", false},
		{"creator nobody names", Policy{}, 0x0019, "GEMS_ACQU_99", true},
		{"known creator in another group", Policy{}, 0x0031, "GEMS_ACQU_01", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.pol.Options[ps315.RetainSafePrivate] = true
			creator := v(c.group<<16|0x0010, "LO", c.creator)
			kept := v(c.group<<16|0x1023, "DS", "39.375")
			in := file(t, append([]el{creator, kept}, removed...)...)
			out := file(t, creator, kept)
			fs, ex := findings(t, c.pol, in, out)
			if (len(fs) > 0) != c.flagged {
				t.Fatalf("findings %v, want flagged %v", fs, c.flagged)
			}
			if !c.flagged && !slices.ContainsFunc(ex, func(e Exemption) bool { return strings.Contains(e.Reason, "private creator") }) {
				t.Errorf("the creator's match is not listed as exempt: %v", ex)
			}
		})
	}
}

// TestProductNames: a value of the file that is its product's name whole
// (Manufacturer, Manufacturer's Model Name, a private creator) names a
// product, not a person: an AI result's Content Creator's Name equal to
// its vendor is not looked for, and a staff name that is a word of the
// Manufacturer survives there (not elsewhere). The patient's own data
// never passes as a product name.
func TestProductNames(t *testing.T) {
	cases := []struct {
		name string
		in   []el
		out  []el
		want []string // finding paths
	}{
		{"content creator is the product",
			[]el{v(tManuf, "LO", "ACME AI"), v(0x00700084, "PN", "ACME AI")},
			[]el{v(tManuf, "LO", "ACME AI"), v(0x00700081, "LO", "ACME AI nodule findings")}, nil},
		{"content creator is a published private creator",
			[]el{v(0x00190010, "LO", "GEMS_ACQU_01"), v(0x00700084, "PN", "GEMS_ACQU_01")},
			[]el{v(0x00700081, "LO", "by GEMS_ACQU_01")}, nil},
		{"content creator is an unknown private creator",
			[]el{v(0x00290010, "LO", "Hartmann^Chidiebere"), v(0x00700084, "PN", "Hartmann^Chidiebere")},
			[]el{v(0x00700081, "LO", "by Hartmann")}, []string{"ContentDescription"}},
		{"operator's surname inside the Manufacturer",
			[]el{v(tManuf, "LO", "Smithson Medical"), v(0x00081070, "PN", "Smithson^Anna")},
			[]el{v(tManuf, "LO", "Smithson Medical"), v(0x00700081, "LO", "done by Smithson")}, []string{"ContentDescription"}},
		{"patient's name is the product",
			[]el{v(tManuf, "LO", "ACME AI"), v(tName, "PN", "ACME AI")},
			[]el{v(tManuf, "LO", "ACME AI"), v(0x00700081, "LO", "ACME AI nodule findings")}, []string{"ContentDescription", "Manufacturer"}},
		{"patient's surname inside the Manufacturer",
			[]el{v(tManuf, "LO", "Smithson Medical"), v(tName, "PN", "Smithson^Anna")},
			[]el{v(tManuf, "LO", "Smithson Medical")}, []string{"Manufacturer"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := findings(t, Policy{}, file(t, c.in...), file(t, c.out...))
			var got []string
			for _, f := range fs {
				if !slices.Contains(got, f.Path) {
					got = append(got, f.Path)
				}
			}
			slices.Sort(got)
			if !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("findings in %v, want %v", got, c.want)
			}
		})
	}
}
