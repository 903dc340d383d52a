package deid

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

const (
	ctClass   = "1.2.840.10008.5.1.4.1.1.2"
	tStudyDt  = 0x00080020
	tSeriesDt = 0x00080021
	tAccNo    = 0x00080050
	tInstName = 0x00080080
	tRefPhys  = 0x00080090
	tStation  = 0x00081010
	tStudyDsc = 0x00081030
	tBirth    = 0x00100030
	tSex      = 0x00100040
	tAge      = 0x00101010
	tWeight   = 0x00101030
	tSerialNo = 0x00181000
	tFoR      = 0x00200052
	tComments = 0x00204000
	tRefImage = 0x00081140
	tRefSOP   = 0x00081155
	tManuf    = 0x00080070
	tPixel    = 0x7FE00010
)

var samplePixels = strings.Repeat("\x01\x02\x03\x04", 64)

// sampleCT is a small CT instance with identifying values where the table
// and its options act, private blocks, an unknown public tag and pixels.
func sampleCT(pid, sop string) []el {
	return []el{
		s(0x00080005, "CS", "ISO_IR 100"),
		s(tagSOPClassUID, "UI", ctClass),
		s(tagSOPInstanceUID, "UI", sop),
		s(tStudyDt, "DA", "20240304"),
		s(tSeriesDt, "DA", "20240305"),
		s(0x00080030, "TM", "101500"),
		s(tAccNo, "SH", "ACC12345"),
		s(0x00080060, "CS", "CT"),
		s(tManuf, "LO", "ACME Medical"),
		s(tInstName, "LO", "St. Nowhere Hospital"),
		s(tRefPhys, "PN", "Hartmann^Chidiebere^^Dr."),
		s(tStation, "SH", "CTSTATION7"),
		s(tStudyDsc, "LO", "CT THORAX WOJCIECHOWSKA"),
		s(tagPatientName, "PN", "Wojciechowska^Aleksandra"),
		s(tagPatientID, "LO", pid),
		s(tBirth, "DA", "19450321"),
		s(tSex, "CS", "F"),
		s(tAge, "AS", "079Y"),
		s(tWeight, "DS", "61.5"),
		s(tSerialNo, "LO", "SN-99887"),
		s(tagStudyInstanceUID, "UI", "1.2.826.0.1.999.1"),
		s(tagSeriesInstanceUID, "UI", "1.2.826.0.1.999.1.2"),
		s(tFoR, "UI", "1.2.826.0.1.999.1.3"),
		s(tComments, "LT", "patient Wojciechowska recalled 21.03.1945 by Dr Hartmann"),
		sq(tRefImage, item(s(0x00081150, "UI", ctClass), s(tRefSOP, "UI", "1.2.826.0.1.999.1.2.7"))),
		s(0x00190010, "LO", "GEMS_ACQU_01"),
		s(0x00191023, "DS", "39.375"),
		s(0x00191099, "LO", "secret wojciechowska"),
		s(0x00330010, "LO", "ACMEPACS_PATIENT_01"),
		s(0x00331001, "LO", "WOJCIECHOWSKA ALEKSANDRA"),
		s(0x00621234, "LO", "unknown public"),
		s(0x00280010, "US", "\x02\x00"),
		s(tPixel, "OW", samplePixels),
	}
}

func TestBasicProfileActions(t *testing.T) {
	e := newEngine(t, basicProfile(), 1)
	in := buildFile(t, false, sampleCT("PID-0001", "1.2.826.0.1.999.1.2.8"))
	out, res := deidBytes(t, e, in)
	p := parse(t, out)
	checks := []struct {
		name string
		tag  uint32
		want string // "" = empty, "-" = absent, "*" = present & changed
	}{
		{"StudyDate emptied (Z)", tStudyDt, ""},
		{"SeriesDate dummied (X/D)", tSeriesDt, "19000101"},
		{"AccessionNumber emptied", tAccNo, ""},
		{"InstitutionName dummy (X/Z/D)", tInstName, "*"},
		{"ReferringPhysicianName emptied", tRefPhys, ""},
		{"StudyDescription removed", tStudyDsc, "-"},
		{"PatientName pseudonym", tagPatientName, "*"},
		{"PatientID pseudonym", tagPatientID, "*"},
		{"BirthDate emptied", tBirth, ""},
		{"Sex emptied", tSex, ""},
		{"Age removed", tAge, "-"},
		{"Weight removed", tWeight, "-"},
		{"ImageComments removed", tComments, "-"},
		{"Manufacturer kept", tManuf, "ACME Medical"},
		{"private removed", 0x00191023, "-"},
		{"private creator removed", 0x00190010, "-"},
		{"private text removed", 0x00331001, "-"},
		{"unknown public removed", 0x00621234, "-"},
		{"modality kept", 0x00080060, "CT"},
		{"identity removed", tagPatientIdentityRem, "YES"},
		{"temporal info", tagLongTemporalModified, "REMOVED"},
	}
	orig := parse(t, in)
	for _, c := range checks {
		got, ok := p.str(c.tag)
		was, _ := orig.str(c.tag)
		switch c.want {
		case "-":
			if ok {
				t.Errorf("%s: still present", c.name)
			}
		case "*":
			if !ok || got == "" || got == was {
				t.Errorf("%s: got %q (present %v)", c.name, got, ok)
			}
		default:
			if !ok || got != c.want {
				t.Errorf("%s: got %q (present %v), want %q", c.name, got, ok, c.want)
			}
		}
	}
	if _, known := dicomraw.Lookup(0x00621234); known {
		t.Fatal("test tag (0062,1234) is in the dictionary; pick another unknown tag")
	}
	if res.Counts.UnknownPublicRemoved != 1 {
		t.Errorf("unknown public removed = %d, want 1", res.Counts.UnknownPublicRemoved)
	}
	// UIDs mapped, references consistent, meta consistent.
	sop, _ := p.str(tagSOPInstanceUID)
	if !strings.HasPrefix(sop, "2.25.") || p.metaStr(0x00020003) != sop {
		t.Errorf("SOP Instance UID %q / meta %q", sop, p.metaStr(0x00020003))
	}
	if p.metaStr(0x00020012) != ImplementationClassUID {
		t.Errorf("implementation class UID %q", p.metaStr(0x00020012))
	}
	if cls, _ := p.str(tagSOPClassUID); cls != ctClass {
		t.Errorf("SOP Class UID changed to %q", cls)
	}
	if ref, _ := p.str(tRefImage, tRefSOP); ref != e.pz.UID("1.2.826.0.1.999.1.2.7") {
		t.Errorf("referenced SOP not mapped consistently: %q", ref)
	}
	if cls, _ := p.str(tRefImage, 0x00081150); cls != ctClass {
		t.Errorf("referenced SOP class changed: %q", cls)
	}
	// Pixel data byte-identical.
	if px := p.find(tPixel); px == nil || string(out[px.ValueOffset:px.End]) != samplePixels {
		t.Error("pixel data changed")
	}
	// Code sequence: basic profile only.
	seq := p.find(tagDeidMethodCodeSeq)
	if seq == nil || len(seq.Items) != 1 {
		t.Fatalf("code sequence: %+v", seq)
	}
	// No identifying value left anywhere in the bytes.
	for _, v := range []string{"Wojciechowska", "WOJCIECHOWSKA", "PID-0001", "ACC12345", "Hartmann", "CTSTATION7", "SN-99887", "19450321", "20240304", "St. Nowhere", "1.2.826.0.1.999"} {
		if bytes.Contains(out, []byte(v)) {
			t.Errorf("output still contains %q", v)
		}
	}
}

func TestOptions(t *testing.T) {
	in := buildFile(t, false, sampleCT("PID-0001", "1.2.826.0.1.999.1.2.8"))
	orig := parse(t, in)
	cases := []struct {
		opt  ps315.Option
		code string
		keep []uint32 // must be unchanged
		gone []uint32 // must be absent or changed
	}{
		{ps315.RetainUIDs, "113110", []uint32{tagSOPInstanceUID, tagStudyInstanceUID, tFoR}, nil},
		{ps315.RetainDeviceIdentity, "113109", []uint32{tStation, tSerialNo}, []uint32{tInstName}},
		{ps315.RetainInstitutionIdentity, "113112", []uint32{tInstName}, []uint32{tStation}},
		{ps315.RetainPatientCharacteristics, "113108", []uint32{tSex, tAge, tWeight}, []uint32{tBirth}},
		{ps315.RetainLongFullDates, "113106", []uint32{tStudyDt, tSeriesDt}, nil},
		{ps315.RetainSafePrivate, "113111", []uint32{0x00190010, 0x00191023}, []uint32{0x00191099, 0x00331001}},
	}
	for _, c := range cases {
		t.Run(c.opt.Key(), func(t *testing.T) {
			e := newEngine(t, profileWith("t", c.opt), 2)
			out, _ := deidBytes(t, e, in)
			p := parse(t, out)
			for _, tg := range c.keep {
				want, _ := orig.str(tg)
				if got, ok := p.str(tg); !ok || got != want {
					t.Errorf("%08X: got %q, want kept %q", tg, got, want)
				}
			}
			for _, tg := range c.gone {
				was, _ := orig.str(tg)
				if got, ok := p.str(tg); ok && got == was {
					t.Errorf("%08X kept", tg)
				}
			}
			if !hasCode(p, c.code) {
				t.Errorf("code %s missing from the method code sequence", c.code)
			}
		})
	}
}

func hasCode(p parsed, code string) bool {
	seq := p.find(tagDeidMethodCodeSeq)
	if seq == nil {
		return false
	}
	for _, it := range seq.Items {
		for _, e := range it.Elements {
			if uint32(e.Tag) == tagCodeValue && strings.TrimSpace(string(e.Value)) == code {
				return true
			}
		}
	}
	return false
}

func TestModifiedDatesKeepIntervalsPerPatient(t *testing.T) {
	e := newEngine(t, profileWith("t", ps315.RetainLongModifiedDates), 3)
	a, _ := deidBytes(t, e, buildFile(t, false, sampleCT("PID-A", "1.2.826.0.1.999.9.1")))
	b, _ := deidBytes(t, e, buildFile(t, false, sampleCT("PID-A", "1.2.826.0.1.999.9.2")))
	c, _ := deidBytes(t, e, buildFile(t, false, sampleCT("PID-C", "1.2.826.0.1.999.9.3")))
	pa, pb, pc := parse(t, a), parse(t, b), parse(t, c)
	sa, _ := pa.str(tStudyDt)
	sr, _ := pa.str(tSeriesDt)
	sb, _ := pb.str(tStudyDt)
	sc, _ := pc.str(tStudyDt)
	if sa == "20240304" || sa == "" {
		t.Fatalf("study date not shifted: %q", sa)
	}
	if sa != sb {
		t.Errorf("same patient shifted differently: %s vs %s", sa, sb)
	}
	if sa == sc {
		t.Errorf("different patients got the same shift (%s); possible but unlikely", sa)
	}
	if d1, d2 := days(t, sa), days(t, sr); d2-d1 != 1 {
		t.Errorf("interval study->series changed: %d days", d2-d1)
	}
	if v, _ := pa.str(tagLongTemporalModified); v != "MODIFIED" {
		t.Errorf("Longitudinal Temporal Information Modified = %q", v)
	}
	if !hasCode(pa, "113107") {
		t.Error("modified dates code missing")
	}
}

func days(t *testing.T, da string) int {
	t.Helper()
	out, ok := shiftDA(da, 0)
	if !ok || out != da {
		t.Fatalf("bad date %q", da)
	}
	y, m, d := atoi(da[:4]), atoi(da[4:6]), atoi(da[6:])
	// days from civil (Howard Hinnant)
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestCleanDescriptorsRedactsIdentifiers(t *testing.T) {
	e := newEngine(t, profileWith("t", ps315.CleanDescriptors), 4)
	out, res := deidBytes(t, e, buildFile(t, false, sampleCT("PID-0001", "1.2.826.0.1.999.1.2.8")))
	p := parse(t, out)
	desc, ok := p.str(tStudyDsc)
	if !ok || !strings.HasPrefix(desc, "CT THORAX") || strings.Contains(strings.ToLower(desc), "wojciech") {
		t.Errorf("study description %q (present %v)", desc, ok)
	}
	com, ok := p.str(tComments)
	if !ok || strings.Contains(com, "Wojciechowska") || strings.Contains(com, "21.03.1945") || strings.Contains(com, "Hartmann") {
		t.Errorf("image comments not cleaned: %q", com)
	}
	if !strings.Contains(com, "recalled") {
		t.Errorf("image comments lost its innocuous words: %q", com)
	}
	if res.Counts.TextRedactions < 4 {
		t.Errorf("redactions = %d", res.Counts.TextRedactions)
	}
}

func TestStructuredContentAndGraphics(t *testing.T) {
	sr := []el{
		s(0x00080005, "CS", "ISO_IR 100"),
		s(tagSOPClassUID, "UI", "1.2.840.10008.5.1.4.1.1.88.11"),
		s(tagSOPInstanceUID, "UI", "1.2.826.0.1.5.5"),
		s(tagPatientName, "PN", "Strzelecka^Jadwiga"),
		s(tagPatientID, "LO", "P77"),
		sq(tagContentSequence,
			item(s(0x0040A040, "CS", "TEXT"), sq(tagConceptNameCodeSeq, item(s(tagCodeValue, "SH", "121071"), s(tagCodingSchemeDesig, "SH", "DCM"), s(tagCodeMeaning, "LO", "Finding"))),
				s(0x0040A160, "UT", "Mass seen; Jadwiga Strzelecka to return")),
			item(s(0x0040A040, "CS", "PNAME"), sq(tagConceptNameCodeSeq, item(s(tagCodeValue, "SH", "121008"), s(tagCodingSchemeDesig, "SH", "DCM"), s(tagCodeMeaning, "LO", "Person Observer Name"))),
				s(0x0040A123, "PN", "Szczepanski^Przemyslaw")),
		),
		sq(0x00700001, item(sq(0x00700008, item(s(0x00700006, "ST", "Strzelecka left lung"))))),
	}
	in := buildFile(t, false, sr)
	// Basic: Content Sequence is D: free text becomes a dummy, names pseudonyms.
	out, _ := deidBytes(t, newEngine(t, basicProfile(), 5), in)
	p := parse(t, out)
	if txt, ok := p.str(tagContentSequence, 0x0040A160); !ok || txt != "ANONYMIZED" {
		t.Errorf("basic: SR text %q", txt)
	}
	if g, ok := p.str(0x00700001, 0x00700008, 0x00700006); !ok || g != "ANONYMIZED" {
		t.Errorf("basic: graphic text %q", g)
	}
	// Clean Structured Content alone: Table E.3.4-1 says X/D for a Finding
	// (121071), C only with Clean Descriptors.
	out, _ = deidBytes(t, newEngine(t, profileWith("t", ps315.CleanStructuredContent), 5), in)
	p = parse(t, out)
	if txt, ok := p.str(tagContentSequence, 0x0040A160); ok && txt != "ANONYMIZED" {
		t.Errorf("clean structured content alone: SR text %q", txt)
	}
	// Clean Structured Content + Clean Descriptors + Clean Graphics: text
	// kept minus identifiers.
	out, _ = deidBytes(t, newEngine(t, profileWith("t", ps315.CleanStructuredContent, ps315.CleanDescriptors, ps315.CleanGraphics), 5), in)
	p = parse(t, out)
	if txt, _ := p.str(tagContentSequence, 0x0040A160); !strings.HasPrefix(txt, "Mass seen") || strings.Contains(txt, "Strzelecka") {
		t.Errorf("clean SR text %q", txt)
	}
	if g, _ := p.str(0x00700001, 0x00700008, 0x00700006); !strings.Contains(g, "left lung") || strings.Contains(g, "Strzelecka") {
		t.Errorf("clean graphic text %q", g)
	}
	if !hasCode(p, "113104") || !hasCode(p, "113103") {
		t.Error("option codes missing")
	}
	for _, v := range []string{"Strzelecka", "Szczepanski", "Jadwiga"} {
		if bytes.Contains(out, []byte(v)) {
			t.Errorf("SR output still contains %q", v)
		}
	}
}

func TestRulesOverrideTable(t *testing.T) {
	p := basicProfile()
	p.Rules = []rules.Rule{
		{Selector: rules.Selector{Tag: tManuf}, Action: rules.Remove},
		{Selector: rules.Selector{Tag: tStudyDsc}, Action: rules.Keep},
		{Selector: rules.Selector{Tag: tInstName}, Action: rules.Replace, Value: "Site {hash:4}"},
		{Selector: rules.Selector{Private: &rules.PrivateSelector{Group: 0x0019, Creator: "gems_acqu_01", Element: 0x23}}, Action: rules.Keep},
	}
	out, _ := deidBytes(t, newEngine(t, p, 6), buildFile(t, false, sampleCT("PID-0001", "1.2.826.0.1.999.1.2.8")))
	q := parse(t, out)
	if _, ok := q.str(tManuf); ok {
		t.Error("rule remove ignored")
	}
	if d, _ := q.str(tStudyDsc); d != "CT THORAX WOJCIECHOWSKA" {
		t.Errorf("rule keep ignored: %q", d)
	}
	if n, _ := q.str(tInstName); !strings.HasPrefix(n, "Site ") || len(n) != 9 {
		t.Errorf("replace template: %q", n)
	}
	if v, ok := q.str(0x00191023); !ok || v != "39.375" {
		t.Errorf("private keep rule via creator: %q %v", v, ok)
	}
	if v, ok := q.str(0x00190010); !ok || v != "GEMS_ACQU_01" {
		t.Errorf("creator of a kept private element must stay: %q %v", v, ok)
	}
	if _, ok := q.str(0x00191099); ok {
		t.Error("other element of the kept block not removed")
	}
}

func TestNoKeyNoEngine(t *testing.T) {
	if _, err := New(Config{Profile: basicProfile()}); err == nil {
		t.Fatal("engine built without a key")
	}
}

func TestImplicitAndDeterminism(t *testing.T) {
	in := buildFile(t, true, sampleCT("PID-9", "1.2.826.0.1.999.4.4"))
	e := newEngine(t, researchProfile(), 7)
	a, _ := deidBytes(t, e, in)
	b, _ := deidBytes(t, newEngine(t, researchProfile(), 7), in)
	if !bytes.Equal(a, b) {
		t.Fatal("same key and input gave different bytes")
	}
	c, _ := deidBytes(t, newEngine(t, researchProfile(), 8), in)
	pa, pc := parse(t, a), parse(t, c)
	ua, _ := pa.str(tagStudyInstanceUID)
	uc, _ := pc.str(tagStudyInstanceUID)
	ia, _ := pa.str(tagPatientID)
	ic, _ := pc.str(tagPatientID)
	if ua == uc || ia == ic {
		t.Error("different keys gave linkable outputs")
	}
	if !pa.f.Syntax.Implicit {
		t.Error("transfer syntax changed")
	}
	if v, ok := pa.str(0x00191023); !ok || v != "39.375" {
		t.Errorf("research keeps safe private (implicit VR): %q %v", v, ok)
	}
}
