package ps315

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/table_e1_1.golden from Rows()")

const goldenPath = "testdata/table_e1_1.golden"

// renderRow is the canonical text form of a row used by the golden file. It
// includes Tag and Mask so that a change of the wildcard representation shows
// up in review, not only a change of the data.
func renderRow(r Row) string {
	var opts []string
	for o := Option(0); o < NumOptions; o++ {
		if c := r.Option[o]; c != CodeNone {
			opts = append(opts, o.Key()+"="+string(c))
		}
	}
	if len(opts) == 0 {
		opts = []string{"-"}
	}
	yn := func(b bool) string {
		if b {
			return "Y"
		}
		return "N"
	}
	line := fmt.Sprintf("%s\t%08X/%08X\t%s\tbasic=%s\t%s\tretired=%s\tin_std=%s",
		r.TagText, r.Tag, r.Mask, r.Name, r.Basic, strings.Join(opts, " "), yn(r.Retired), yn(r.InStdCompIOD))
	if r.PrivateAll {
		line += "\tprivate_all"
	}
	return line
}

func TestGoldenTableE11(t *testing.T) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# PS3.15 %s Table E.1-1, rendered from ps315.Rows(); regenerate with go test -run TestGoldenTableE11 -update\n", Edition)
	for _, r := range Rows() {
		b.WriteString(renderRow(r))
		b.WriteByte('\n')
	}
	if *update {
		if err := os.WriteFile(goldenPath, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		got := strings.Split(b.String(), "\n")
		exp := strings.Split(string(want), "\n")
		for i := 0; i < len(got) || i < len(exp); i++ {
			var g, e string
			if i < len(got) {
				g = got[i]
			}
			if i < len(exp) {
				e = exp[i]
			}
			if g != e {
				t.Fatalf("golden mismatch at line %d:\n got: %q\nwant: %q\n(run with -update if the change is intended)", i+1, g, e)
			}
		}
	}
}

// readCSV reads a data file as maps from column name to cell.
func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		out = append(out, m)
	}
	return out
}

// TestRowsMatchCSV re-reads the source independently of the generator and
// checks every generated row, using Option.Key (not the generator's own
// column list) to find each option's column.
func TestRowsMatchCSV(t *testing.T) {
	recs := readCSV(t, "data/confidentiality_profile_full.csv")
	rows := Rows()
	if len(rows) != 623 || len(recs) != 623 {
		t.Fatalf("rows: generated %d, csv %d, want 623", len(rows), len(recs))
	}
	for i, rec := range recs {
		r := rows[i]
		if r.TagText != rec["tag"] || r.Name != rec["name"] || string(r.Basic) != rec["basic"] {
			t.Errorf("row %d: got %q %q %q, csv %q %q %q", i, r.TagText, r.Name, r.Basic, rec["tag"], rec["name"], rec["basic"])
		}
		for o := Option(0); o < NumOptions; o++ {
			v, ok := rec[o.Key()]
			if !ok {
				t.Fatalf("csv has no column %q", o.Key())
			}
			if string(r.Option[o]) != v {
				t.Errorf("row %d %s %s: got %q, csv %q", i, rec["tag"], o.Key(), r.Option[o], v)
			}
		}
		if r.Retired != (rec["retired"] == "Y") || r.InStdCompIOD != (rec["in_std_comp_iod"] == "Y") {
			t.Errorf("row %d %s: retired/inStd %v/%v, csv %q/%q", i, rec["tag"], r.Retired, r.InStdCompIOD, rec["retired"], rec["in_std_comp_iod"])
		}
		switch tag := rec["tag"]; {
		case tag == "gggg,eeee":
			if !r.PrivateAll || !r.Matches(0x00090010) || r.Matches(0x00080010) {
				t.Errorf("private row wrong: %+v", r)
			}
		case strings.Contains(tag, "x"):
			if r.PrivateAll || !r.Wildcard() {
				t.Errorf("%s: flags %+v", tag, r)
			}
		default:
			v, err := strconv.ParseUint(strings.Replace(tag, ",", "", 1), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			if r.Tag != uint32(v) || r.Mask != 0xFFFFFFFF || r.PrivateAll {
				t.Errorf("%s: tag %08X mask %08X", tag, r.Tag, r.Mask)
			}
		}
	}
}

// TestCounts checks the per-code counts stated in the provenance of the
// tables (PROVENANCE.md of the shared standard folder).
func TestCounts(t *testing.T) {
	basic := map[Code]int{}
	opt := [NumOptions]map[Code]int{}
	for i := range opt {
		opt[i] = map[Code]int{}
	}
	retired, inStd := 0, 0
	for _, r := range Rows() {
		basic[r.Basic]++
		for o, c := range r.Option {
			if c != CodeNone {
				opt[o][c]++
			}
		}
		if r.Retired {
			retired++
		}
		if r.InStdCompIOD {
			inStd++
		}
	}
	wantBasic := map[Code]int{CodeX: 385, CodeD: 92, CodeU: 55, CodeZ: 42, CodeXD: 22, CodeXZ: 11, CodeXZD: 8, CodeZD: 6, CodeXZUStar: 2}
	if fmt.Sprint(basic) != fmt.Sprint(wantBasic) {
		t.Errorf("basic counts %v, want %v", basic, wantBasic)
	}
	wantOpt := [NumOptions]map[Code]int{
		RetainSafePrivate:            {CodeC: 1},
		RetainUIDs:                   {CodeK: 60},
		RetainDeviceIdentity:         {CodeK: 46, CodeC: 11},
		RetainInstitutionIdentity:    {CodeK: 10},
		RetainPatientCharacteristics: {CodeK: 10, CodeC: 4},
		RetainLongFullDates:          {CodeK: 165},
		RetainLongModifiedDates:      {CodeC: 165},
		CleanDescriptors:             {CodeC: 125},
		CleanStructuredContent:       {CodeC: 3},
		CleanGraphics:                {CodeC: 4},
	}
	for o := Option(0); o < NumOptions; o++ {
		if fmt.Sprint(opt[o]) != fmt.Sprint(wantOpt[o]) {
			t.Errorf("%s counts %v, want %v", o.Key(), opt[o], wantOpt[o])
		}
	}
	if retired != 100 || inStd != 440 {
		t.Errorf("retired %d (want 100), in std comp IOD %d (want 440)", retired, inStd)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name    string
		tag     uint32
		ok      bool
		text    string
		basic   Code
		wantOpt Option
		optCode Code
	}{
		{"patient name", 0x00100010, true, "0010,0010", CodeZ, RetainSafePrivate, CodeNone},
		{"patient id", 0x00100020, true, "0010,0020", CodeZD, RetainSafePrivate, CodeNone},
		{"study instance uid", 0x0020000D, true, "0020,000D", CodeU, RetainUIDs, CodeK},
		{"study date", 0x00080020, true, "0008,0020", CodeZ, RetainLongFullDates, CodeK},
		{"ethnic group code seq (2024c)", 0x00102161, true, "0010,2161", CodeX, RetainPatientCharacteristics, CodeK},
		{"overlay data group 6002", 0x60023000, true, "60xx,3000", CodeX, CleanGraphics, CodeC},
		{"overlay data group 601E", 0x601E3000, true, "60xx,3000", CodeX, CleanGraphics, CodeC},
		{"overlay comments", 0x60004000, true, "60xx,4000", CodeX, CleanGraphics, CodeC},
		{"curve data 5010,0022", 0x50100022, true, "50xx,xxxx", CodeX, CleanGraphics, CodeC},
		{"curve data 501E,3000", 0x501E3000, true, "50xx,xxxx", CodeX, CleanGraphics, CodeC},
		{"overlay odd group", 0x60013000, false, "", "", 0, ""},
		{"overlay group 6020 outside repeating range", 0x60203000, false, "", "", 0, ""},
		{"curve group 5020 outside repeating range", 0x50200022, false, "", "", 0, ""},
		{"overlay rows not in table", 0x60000010, false, "", "", 0, ""},
		{"private creator", 0x00090010, false, "", "", 0, ""},
		{"private element", 0x00191023, false, "", "", 0, ""},
		{"not in table: rows", 0x00280010, false, "", "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := Lookup(tc.tag)
			if ok != tc.ok {
				t.Fatalf("Lookup(%08X) ok=%v, want %v (%+v)", tc.tag, ok, tc.ok, r)
			}
			if !ok {
				return
			}
			if r.TagText != tc.text || r.Basic != tc.basic || r.Option[tc.wantOpt] != tc.optCode {
				t.Errorf("Lookup(%08X) = %s basic %s %s=%q, want %s basic %s %q", tc.tag, r.TagText, r.Basic, tc.wantOpt.Key(), r.Option[tc.wantOpt], tc.text, tc.basic, tc.optCode)
			}
		})
	}
}

// TestLookupAgainstScan compares Lookup with a linear scan of Rows() (exact
// rows first, then wildcard rows, never the private row) over every exact
// tag and every group of the 50xx/60xx ranges.
func TestLookupAgainstScan(t *testing.T) {
	all := Rows()
	scan := func(tag uint32) (Row, bool) {
		if tag&0x00010000 != 0 {
			return Row{}, false
		}
		for _, r := range all {
			if !r.Wildcard() && r.Tag == tag {
				return r, true
			}
		}
		for _, r := range all {
			if r.Wildcard() && !r.PrivateAll && r.Matches(tag) {
				return r, true
			}
		}
		return Row{}, false
	}
	var tags []uint32
	for _, r := range all {
		tags = append(tags, r.Tag, r.Tag|1, r.Tag+0x10000)
	}
	for g := uint32(0x4FF0); g <= 0x6110; g++ {
		for _, e := range []uint32{0x0000, 0x0010, 0x0022, 0x3000, 0x3001, 0x4000, 0xFFFF} {
			tags = append(tags, g<<16|e)
		}
	}
	for _, tag := range tags {
		got, gok := Lookup(tag)
		want, wok := scan(tag)
		if gok != wok || got != want {
			t.Fatalf("Lookup(%08X) = %v %q, scan = %v %q", tag, gok, got.TagText, wok, want.TagText)
		}
	}
	// The repeating groups are exactly the even groups 0x00-0x1E above the base.
	for g := uint32(0x5000); g <= 0x50FF; g++ {
		_, ok := Lookup(g<<16 | 0x0022)
		if want := g&1 == 0 && g <= 0x501E; ok != want {
			t.Errorf("group %04X: found %v, want %v", g, ok, want)
		}
	}
}

func TestPrivateRow(t *testing.T) {
	r := PrivateRow()
	if !r.PrivateAll || r.TagText != "gggg,eeee" || r.Basic != CodeX || r.Option[RetainSafePrivate] != CodeC {
		t.Fatalf("PrivateRow() = %+v", r)
	}
	for _, tag := range []uint32{0x00090010, 0x00191023, 0x7FE11010} {
		if !r.Matches(tag) {
			t.Errorf("private row does not match %08X", tag)
		}
	}
	for _, tag := range []uint32{0x00080010, 0x7FE00010} {
		if r.Matches(tag) {
			t.Errorf("private row matches even group %08X", tag)
		}
	}
}

func TestRowsIsCopy(t *testing.T) {
	a := Rows()
	a[0].Name = "changed"
	a[0].Option[RetainUIDs] = CodeX
	if b := Rows(); b[0].Name == "changed" || b[0].Option[RetainUIDs] == CodeX {
		t.Fatal("Rows() exposes the package table")
	}
	s := SafePrivates()
	s[0].Creator = "changed"
	if SafePrivates()[0].Creator == "changed" {
		t.Fatal("SafePrivates() exposes the package table")
	}
	c := ContentCodes()
	c[0].Meaning = "changed"
	if ContentCodes()[0].Meaning == "changed" {
		t.Fatal("ContentCodes() exposes the package table")
	}
}

func TestSafePrivates(t *testing.T) {
	recs := readCSV(t, "data/safe_private_attributes.csv")
	all := SafePrivates()
	if len(all) != 479 || len(recs) != 479 {
		t.Fatalf("safe privates: generated %d, csv %d, want 479", len(all), len(recs))
	}
	creators := map[string]int{}
	for i, rec := range recs {
		s := all[i]
		tag := fmt.Sprintf("%04X,xx%02X", s.Group, s.Element)
		if tag != rec["tag"] || s.Creator != rec["private_creator"] || s.VR != rec["vr"] || s.VM != rec["vm"] || s.Meaning != rec["meaning"] {
			t.Errorf("row %d: %+v, csv %v", i, s, rec)
		}
		creators[s.Creator]++
		// Every row must be reachable, including with the padding and case
		// variants seen in real files.
		for _, c := range []string{s.Creator, s.Creator + " ", strings.ToUpper(s.Creator), strings.ToLower(s.Creator) + "\x00", " " + s.Creator} {
			got, ok := LookupSafePrivate(s.Group, c, s.Element)
			if !ok || got != s {
				t.Errorf("LookupSafePrivate(%04X, %q, %02X) = %+v, %v", s.Group, c, s.Element, got, ok)
			}
		}
	}
	if len(creators) != 20 || creators["Philips Imaging DD 001"] != 184 || creators["GEMS_ACQU_01"] != 4 {
		t.Errorf("creators: %d distinct, Philips Imaging DD 001 %d, GEMS_ACQU_01 %d", len(creators), creators["Philips Imaging DD 001"], creators["GEMS_ACQU_01"])
	}
}

func TestLookupSafePrivate(t *testing.T) {
	tests := []struct {
		name    string
		group   uint16
		creator string
		elem    uint8
		ok      bool
	}{
		{"exact with LO padding", 0x0019, "GEMS_ACQU_01 ", 0x23, true},
		{"exact", 0x0019, "GEMS_ACQU_01", 0x23, true},
		{"lower case", 0x0019, "gems_acqu_01", 0x23, true},
		{"philips upper case", 0x2001, "PHILIPS IMAGING DD 001", 0x0A, true},
		{"philips as in table", 0x2001, "Philips Imaging DD 001", 0x0A, true},
		{"wrong element", 0x0019, "GEMS_ACQU_01", 0x25, false},
		{"wrong group", 0x0021, "GEMS_ACQU_01", 0x23, false},
		{"unknown creator", 0x0019, "GEMS_ACQU_02", 0x23, false},
		{"inner space differs", 0x2001, "Philips  Imaging DD 001", 0x0A, false},
		{"empty creator", 0x0019, "", 0x23, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := LookupSafePrivate(tc.group, tc.creator, tc.elem)
			if ok != tc.ok {
				t.Fatalf("LookupSafePrivate(%04X, %q, %02X) = %+v, %v; want ok=%v", tc.group, tc.creator, tc.elem, s, ok, tc.ok)
			}
			if ok && (s.Group != tc.group || s.Element != tc.elem || NormalizeCreator(s.Creator) != NormalizeCreator(tc.creator)) {
				t.Errorf("got %+v", s)
			}
		})
	}
}

func TestContentCodes(t *testing.T) {
	recs := readCSV(t, "data/clean_structured_content_codes.csv")
	all := ContentCodes()
	if len(all) != 211 || len(recs) != 211 {
		t.Fatalf("content codes: generated %d, csv %d, want 211", len(all), len(recs))
	}
	for i, rec := range recs {
		c := all[i]
		if c.Meaning != rec["code_meaning"] || c.Value != rec["code_value"] || c.Scheme != rec["coding_scheme_designator"] ||
			c.ValueType != rec["value_type"] || string(c.Basic) != rec["basic"] ||
			c.Retired != (rec["retired"] == "Y") || c.InStdTemplate != (rec["in_std_template"] == "Y") {
			t.Errorf("row %d: %+v, csv %v", i, c, rec)
		}
		for o := Option(0); o < NumOptions; o++ {
			if string(c.Option[o]) != rec[o.Key()] { // absent columns read as ""
				t.Errorf("row %d %s: %q, csv %q", i, o.Key(), c.Option[o], rec[o.Key()])
			}
		}
		if got, ok := LookupContentCodeType(c.Scheme, c.Value, c.ValueType); !ok || got != c {
			t.Errorf("LookupContentCodeType(%s, %s, %s) = %+v, %v", c.Scheme, c.Value, c.ValueType, got, ok)
		}
		if got, ok := LookupContentCode(c.Scheme, c.Value); !ok || got.Value != c.Value || got.Scheme != c.Scheme {
			t.Errorf("LookupContentCode(%s, %s) = %+v, %v", c.Scheme, c.Value, got, ok)
		}
	}
}

func TestLookupContentCode(t *testing.T) {
	tests := []struct {
		name, scheme, value, valueType string
		ok                             bool
		basic                          Code
		opt                            Option
		optCode                        Code
	}{
		{"accession number", "DCM", "121022", "", true, CodeX, RetainUIDs, CodeNone},
		{"padded value", "DCM ", "121022 ", "", true, CodeX, RetainUIDs, CodeNone},
		{"acquisition date", "DCM", "126201", "", true, CodeX, RetainLongFullDates, CodeK},
		{"duplicate: first row (IMAGE)", "DCM", "121112", "", true, CodeD, RetainUIDs, CodeK},
		{"duplicate: typed WAVEFORM", "DCM", "121112", "WAVEFORM", true, CodeX, RetainUIDs, CodeK},
		{"clinical report TEXT", "SCT", "371524004", "TEXT", true, CodeX, CleanDescriptors, CodeC},
		{"wrong value type", "DCM", "121022", "CODE", false, "", 0, ""},
		{"scheme is case sensitive", "dcm", "121022", "", false, "", 0, ""},
		{"unknown", "DCM", "999999", "", false, "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c ContentCode
			var ok bool
			if tc.valueType == "" {
				c, ok = LookupContentCode(tc.scheme, tc.value)
			} else {
				c, ok = LookupContentCodeType(tc.scheme, tc.value, tc.valueType)
			}
			if ok != tc.ok {
				t.Fatalf("got %+v, %v; want ok=%v", c, ok, tc.ok)
			}
			if ok && (c.Basic != tc.basic || c.Option[tc.opt] != tc.optCode) {
				t.Errorf("got basic %s %s=%q, want %s %q", c.Basic, tc.opt.Key(), c.Option[tc.opt], tc.basic, tc.optCode)
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	tags := []uint32{0x00100010, 0x00280010, 0x60023000, 0x00191023}
	for i := 0; i < b.N; i++ {
		Lookup(tags[i%len(tags)])
	}
}
