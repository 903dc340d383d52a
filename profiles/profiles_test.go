package profiles

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// writeFiles writes name -> content into a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuiltins(t *testing.T) {
	var l Loader
	names := l.Builtin()
	if want := []string{"basic", "example-custom", "research", "research-pixels"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Builtin() = %v, want %v", names, want)
	}
	for _, n := range names {
		p, err := l.Load(n)
		if err != nil {
			t.Fatalf("Load(%q): %v", n, err)
		}
		if p.Name != n || p.Source != "builtin:"+n {
			t.Errorf("Load(%q): name %q source %q", n, p.Name, p.Source)
		}
		if p.Description == "" {
			t.Errorf("Load(%q): no description", n)
		}
		if src, ok := BuiltinSource(n); !ok || len(src) == 0 {
			t.Errorf("BuiltinSource(%q) missing", n)
		}
	}
	if _, ok := BuiltinSource("../go"); ok {
		t.Error("BuiltinSource accepted a path")
	}
}

func onOptions(p *rules.Profile) []string {
	var on []string
	for i := ps315.Option(0); i < ps315.NumOptions; i++ {
		if p.Options[i] {
			on = append(on, i.Key())
		}
	}
	return on
}

func TestBuiltinContents(t *testing.T) {
	var l Loader
	basic, err := l.Load("basic")
	if err != nil {
		t.Fatal(err)
	}
	if on := onOptions(basic); len(on) != 0 || len(basic.Rules) != 0 {
		t.Errorf("basic: options %v, %d rules; want none", on, len(basic.Rules))
	}
	if basic.Pseudonyms != rules.DefaultPseudonyms() || basic.DateShift != rules.DefaultDateShift() {
		t.Errorf("basic: pseudonyms %+v date shift %+v; want the defaults", basic.Pseudonyms, basic.DateShift)
	}

	research, err := l.Load("research")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"retain_safe_private", "retain_patient_characteristics", "retain_long_modified_dates", "clean_descriptors"}
	if on := onOptions(research); !reflect.DeepEqual(on, want) {
		t.Errorf("research options = %v, want %v", on, want)
	}
	if len(research.Rules) != 0 || research.DateShift != rules.DefaultDateShift() {
		t.Errorf("research: %d rules, date shift %+v", len(research.Rules), research.DateShift)
	}

	ex, err := l.Load("example-custom")
	if err != nil {
		t.Fatal(err)
	}
	if ex.Options[ps315.CleanDescriptors] || !ex.Options[ps315.RetainLongModifiedDates] {
		t.Errorf("example-custom: options %v", onOptions(ex))
	}
	if ex.DateShift != (rules.DateShift{MinDays: 30, MaxDays: 730}) {
		t.Errorf("example-custom: date shift %+v", ex.DateShift)
	}
	var kinds []string
	for _, r := range ex.Rules {
		if r.Source != "builtin:example-custom" || r.Line == 0 {
			t.Errorf("rule %+v: source/line not set", r)
		}
		kinds = append(kinds, selectorLabel(r.Selector)+" "+string(r.Action))
	}
	wantRules := []string{
		"InstitutionName (0008,0080) replace",
		"AccessionNumber (0008,0050) pseudonym",
		"ImageComments (0020,4000) remove",
		`(0019,xx23) "GEMS_ACQU_01" keep`,
	}
	if !reflect.DeepEqual(kinds, wantRules) {
		t.Errorf("example-custom rules:\n%q\nwant\n%q", kinds, wantRules)
	}
	// A copy of the example, as a user would make it, loads from disk too.
	src, _ := BuiltinSource("example-custom")
	dir := writeFiles(t, map[string]string{"my.yaml": string(src)})
	if err := l.Check(filepath.Join(dir, "my.yaml")); err != nil {
		t.Errorf("copy of example-custom: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	const ok = "name: ok\n"
	tests := []struct {
		name  string
		files map[string]string // "bad.yaml" is loaded
		want  []string          // substrings of the error text
	}{
		{"unknown top-level key",
			map[string]string{"bad.yaml": "name: x\noptionz:\n  retain_uids: true\n"},
			[]string{`bad.yaml:2:1: unknown key "optionz" (want one of name, description, extends`}},
		{"unknown key in rule",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: PatientName\n    acton: keep\n"},
			[]string{`bad.yaml:4:5: rules[0]: unknown key "acton"`, `bad.yaml:3:5: rules[0]: action is required`}},
		{"unknown key in private",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - private: {group: \"0019\", creator: C, element: \"10\", block: \"10\"}\n    action: keep\n"},
			[]string{`bad.yaml:3:57: rules[0].private: unknown key "block"`}},
		{"unknown option",
			map[string]string{"bad.yaml": "name: x\noptions:\n  retain_uid: true\n"},
			[]string{`bad.yaml:3:3: options: unknown option "retain_uid" (want one of retain_safe_private, retain_uids`}},
		{"option not a bool",
			map[string]string{"bad.yaml": "name: x\noptions:\n  retain_uids: yes\n"},
			[]string{`bad.yaml:3:16: options.retain_uids: want true or false`}},
		{"missing name",
			map[string]string{"bad.yaml": "description: x\n"},
			[]string{`bad.yaml:1:1: name: required`}},
		{"bad name",
			map[string]string{"bad.yaml": "name: My Profile\n"},
			[]string{`bad.yaml:1:7: name: "My Profile" is not a valid profile name`}},
		{"duplicate key",
			map[string]string{"bad.yaml": "name: x\nname: y\n"},
			[]string{`bad.yaml:2:1: name: duplicate key "name"`}},
		{"unknown keyword",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: PatientNam\n    action: keep\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: unknown keyword "PatientNam"`}},
		{"name instead of keyword",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: patientname\n    action: keep\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: unknown keyword "patientname"`}},
		{"bad tag syntax",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: \"(0010,001)\"\n    action: keep\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: bad tag "(0010,001)": want a keyword`}},
		{"bad tag characters",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: Patient-Name\n    action: keep\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: bad tag "Patient-Name"`}},
		{"even group in private",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - private: {group: \"0010\", creator: ACME, element: \"10\"}\n    action: keep\n"},
			[]string{`bad.yaml:3:22: rules[0].private.group: group 0010 is even, so public; private groups are odd`}},
		{"reserved private group",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - private: {group: \"0007\", creator: ACME, element: \"10\"}\n    action: keep\n"},
			[]string{`bad.yaml:3:22: rules[0].private.group: group 0007 is not a valid private group`}},
		{"full element in private",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - private: {group: \"0019\", creator: ACME, element: \"1023\"}\n    action: keep\n"},
			[]string{`rules[0].private.element: give only the low byte, "23"`}},
		{"private missing creator",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - private: {group: \"0019\", element: \"10\"}\n    action: keep\n"},
			[]string{`bad.yaml:3:14: rules[0].private: creator is required`}},
		{"tag and private",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: PatientName\n    private: {group: \"0019\", creator: A, element: \"10\"}\n    action: keep\n"},
			[]string{`bad.yaml:4:5: rules[0]: give either tag or private, not both`}},
		{"bad action",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: PatientName\n    action: delete\n"},
			[]string{`bad.yaml:4:13: rules[0].action: unknown action "delete" (want one of remove, empty, dummy, keep, clean, uid, pseudonym, shift, replace)`}},
		{"replace without value",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: InstitutionName\n    action: replace\n"},
			[]string{`bad.yaml:3:5: rules[0]: action replace needs a value`}},
		{"value without replace",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: InstitutionName\n    action: keep\n    value: Site\n"},
			[]string{`bad.yaml:5:5: rules[0].value: value is only allowed with action replace (this rule's action is keep)`}},
		{"replace value too long for VR",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: StationName\n    action: replace\n    value: \"STATION-{hash:10}\"\n"},
			[]string{`bad.yaml:5:12: rules[0].value: template "STATION-{hash:10}" does not fit StationName (0008,1010): renders up to 18 characters, VR SH allows 16`}},
		{"replace hash into UID",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: StudyInstanceUID\n    action: replace\n    value: \"1.2.{hash:8}\"\n"},
			[]string{`rules[0].value: template "1.2.{hash:8}" does not fit StudyInstanceUID (0020,000D): a UI value holds digits and dots only`}},
		{"bad template placeholder",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  other: \"X{hash:0}\"\n"},
			[]string{`bad.yaml:3:10: pseudonyms.other: bad template "X{hash:0}": placeholder {hash:0}: N must be 1..26`}},
		{"bad template unknown placeholder",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  patient_id: \"P{patient_pseudonym}\"\n"},
			[]string{`bad.yaml:3:15: pseudonyms.patient_id: bad template "P{patient_pseudonym}": unknown placeholder {patient_pseudonym}`}},
		{"bad template unclosed",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  other: \"X{hash:4\"\n"},
			[]string{`pseudonyms.other: bad template "X{hash:4": unclosed '{' at offset 1`}},
		{"template without placeholder",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  other: ANON\n"},
			[]string{`bad.yaml:3:10: pseudonyms.other: template "ANON" has no {hash:N} or {digits:N}`}},
		{"template with backslash",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  other: 'A\\{hash:4}'\n"},
			[]string{`pseudonyms.other: bad template "A\\{hash:4}": backslash not allowed`}},
		{"too long patient_id",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  patient_id: \"PATIENT-{hash:26}{hash:26}{digits:20}\"\n"},
			[]string{`bad.yaml:3:15: pseudonyms.patient_id: template "PATIENT-{hash:26}{hash:26}{digits:20}" is too long or invalid for LO: renders up to 80 characters, VR LO allows 64`}},
		{"too long patient_name group",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  patient_name: \"{hash:26}{hash:26}^{digits:20}=X{hash:4}\"\n"},
			[]string{`bad.yaml:3:17: pseudonyms.patient_name: template "{hash:26}{hash:26}^{digits:20}=X{hash:4}" is too long or invalid for PN: renders up to 73 characters in PN component group 1, VR PN allows 64`}},
		{"other too long for a pseudonym rule",
			map[string]string{"bad.yaml": "name: x\npseudonyms:\n  other: \"OTHER-{hash:20}\"\nrules:\n  - tag: AccessionNumber\n    action: pseudonym\n"},
			[]string{`bad.yaml:6:13: rules[0].action: pseudonyms.other "OTHER-{hash:20}" (set at `, `bad.yaml:3) does not fit AccessionNumber (0008,0050): renders up to 26 characters, VR SH allows 16`}},
		{"conflicting date options",
			map[string]string{"bad.yaml": "name: x\nextends: research\noptions:\n  retain_long_full_dates: true\n"},
			[]string{`bad.yaml:4:3: options: retain_long_full_dates and retain_long_modified_dates exclude each other`}},
		{"conflicting date options in one file",
			map[string]string{"bad.yaml": "name: x\noptions:\n  retain_long_modified_dates: true\n  retain_long_full_dates: true\n"},
			[]string{`bad.yaml:4:3: options: retain_long_full_dates and retain_long_modified_dates exclude each other`}},
		{"date shift out of range",
			map[string]string{"bad.yaml": "name: x\ndate_shift: {min_days: -1, max_days: 40000}\n"},
			[]string{`bad.yaml:2:24: date_shift.min_days: -1 is out of range (want 0..36500)`, `bad.yaml:2:38: date_shift.max_days: 40000 is out of range`}},
		{"date shift not an int",
			map[string]string{"bad.yaml": "name: x\ndate_shift:\n  max_days: 1.5\n"},
			[]string{`bad.yaml:3:13: date_shift.max_days: want a whole number of days`}},
		{"date shift min above max",
			map[string]string{"bad.yaml": "name: x\ndate_shift:\n  min_days: 10\n  max_days: 5\n"},
			[]string{`bad.yaml:3:3: date_shift: min_days 10 is greater than max_days 5`}},
		{"date shift min above inherited max",
			map[string]string{"bad.yaml": "name: x\nextends: research\ndate_shift:\n  min_days: 4000\n"},
			[]string{`bad.yaml:4:3: date_shift: resolved min_days 4000 is greater than max_days 3650`}},
		{"extends cycle",
			map[string]string{
				"bad.yaml":   "name: a\nextends: sub/b.yaml\n",
				"sub/b.yaml": "name: b\nextends: ../bad.yaml\n",
			},
			[]string{`b.yaml:2:10: extends: cycle `, `bad.yaml -> `, `b.yaml -> `}},
		{"extends self",
			map[string]string{"bad.yaml": "name: a\nextends: ./bad.yaml\n"},
			[]string{`bad.yaml:2:10: extends: cycle `}},
		{"extends missing file",
			map[string]string{"bad.yaml": "name: a\nextends: nothere.yaml\n"},
			[]string{`bad.yaml:2:10: extends: cannot read `, `nothere.yaml: file does not exist`}},
		{"extends unknown built-in",
			map[string]string{"bad.yaml": "name: a\nextends: reserch\n"},
			[]string{`bad.yaml:2:10: extends: unknown built-in profile "reserch" (built-ins: basic, example-custom, research, research-pixels;`}},
		{"error in parent",
			map[string]string{
				"bad.yaml":    "name: a\nextends: parent.yaml\n",
				"parent.yaml": "name: p\nrules:\n  - tag: PatientName\n    action: nope\n",
			},
			[]string{`parent.yaml:4:13: rules[0].action: unknown action "nope"`}},
		{"uid on a non-UI tag",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: PatientID\n    action: uid\n"},
			[]string{`bad.yaml:4:13: rules[0].action: uid needs a UID attribute (VR UI); PatientID (0010,0020) has VR LO`}},
		{"shift on a non-date tag",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: \"00100020\"\n    action: shift\n"},
			[]string{`bad.yaml:4:13: rules[0].action: shift needs a date or time attribute (VR DA, DT or TM); PatientID (0010,0020) has VR LO`}},
		{"pseudonym on a date",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: StudyDate\n    action: pseudonym\n"},
			[]string{`rules[0].action: pseudonym needs a text attribute`, `StudyDate (0008,0020) has VR DA (use shift)`}},
		{"rule on file meta",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: \"(0002,0010)\"\n    action: keep\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: (0002,0010) is File Meta Information (group 0002)`}},
		{"rule on file meta by keyword",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: TransferSyntaxUID\n    action: keep\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: (0002,0010) is File Meta Information`}},
		{"rule on pixel data",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: PixelData\n    action: remove\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: Pixel Data (7FE0,0010) is handled by the engine`}},
		{"rule on group length",
			map[string]string{"bad.yaml": "name: x\nrules:\n  - tag: \"0008,0000\"\n    action: remove\n"},
			[]string{`bad.yaml:3:10: rules[0].tag: (0008,0000) is a group length`}},
		{"rules not a list",
			map[string]string{"bad.yaml": "name: x\nrules:\n  tag: PatientName\n"},
			[]string{`bad.yaml:3:3: rules: want a list`}},
		{"YAML syntax error",
			map[string]string{"bad.yaml": "name: x\ndescription: a: b\n"},
			[]string{`bad.yaml:2: YAML syntax error: mapping values are not allowed in this context`}},
		{"YAML tab indentation",
			map[string]string{"bad.yaml": "name: x\nrules:\n\t- tag: PatientName\n"},
			[]string{`bad.yaml:3: YAML syntax error: found character that cannot start any token`}},
		{"two documents",
			map[string]string{"bad.yaml": "name: x\n---\nname: y\n"},
			[]string{`bad.yaml:2:1: a profile file holds one YAML document`}},
		{"empty file",
			map[string]string{"bad.yaml": "# nothing\n"},
			[]string{`bad.yaml: empty file`}},
		{"not a mapping",
			map[string]string{"bad.yaml": "- name: x\n"},
			[]string{`bad.yaml:1:1: the file: want a mapping`}},
		{"file does not exist",
			map[string]string{"other.yaml": ok},
			[]string{`bad.yaml: cannot read profile: file does not exist`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			var l Loader
			p, err := l.Load(filepath.Join(dir, "bad.yaml"))
			if err == nil {
				t.Fatalf("no error; loaded %+v", p)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if cerr := l.Check(filepath.Join(dir, "bad.yaml")); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Check disagrees with Load:\n%v\n---\n%v", cerr, err)
			}
		})
	}
}

// All problems of a file come back together, in file order.
func TestAllProblemsReported(t *testing.T) {
	dir := writeFiles(t, map[string]string{"bad.yaml": `name: Bad
color: blue
options:
  retain_uids: maybe
rules:
  - tag: PatientNam
    action: keep
  - tag: PatientName
    action: delete
  - tag: PatientID
    action: uid
`})
	var l Loader
	err := l.Check(filepath.Join(dir, "bad.yaml"))
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("want *Error, got %v", err)
	}
	var lines []int
	for _, p := range perr.Problems {
		lines = append(lines, p.Line)
		if !strings.HasSuffix(p.File, "bad.yaml") {
			t.Errorf("problem file %q", p.File)
		}
	}
	if want := []int{1, 2, 4, 6, 9, 11}; !reflect.DeepEqual(lines, want) {
		t.Errorf("problem lines %v, want %v:\n%v", lines, want, err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(perr.Problems) {
		t.Errorf("Error() has %d lines for %d problems", n, len(perr.Problems))
	}
}

func TestLoadUnknownName(t *testing.T) {
	var l Loader
	_, err := l.Load("reserch")
	if err == nil || !strings.Contains(err.Error(), `reserch: unknown profile: not a built-in (basic, example-custom, research, research-pixels)`) {
		t.Errorf("Load(reserch) = %v", err)
	}
}

func TestOverride(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site/base.yaml": `name: base
extends: research
pseudonyms:
  patient_id: "SITE{digits:10}"
date_shift: {min_days: 10, max_days: 20}
rules:
  - tag: PatientAge
    action: remove
  - private: {group: "0019", creator: "GEMS_ACQU_01", element: "23"}
    action: keep
`,
		"project.yaml": `name: project
extends: site/base.yaml
options:
  retain_safe_private: false
pseudonyms:
  other: "P{hash:8}"
date_shift:
  max_days: 400
rules:
  - tag: "(0010,1010)"
    action: keep
  - private: {group: "0019", creator: " gems_acqu_01 ", element: "23"}
    action: remove
  - tag: InstitutionName
    action: replace
    value: "A"
  - tag: InstitutionName
    action: replace
    value: "B"
`,
	})
	var l Loader
	p, err := l.Load(filepath.Join(dir, "project.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The child turned an option off; the rest of research stays.
	want := []string{"retain_patient_characteristics", "retain_long_modified_dates", "clean_descriptors"}
	if on := onOptions(p); !reflect.DeepEqual(on, want) {
		t.Errorf("options %v, want %v", on, want)
	}
	// Field by field: patient_id from the parent, other from the child,
	// patient_name the default; min_days inherited, max_days overridden.
	wantPs := rules.Pseudonyms{PatientID: "SITE{digits:10}", PatientName: rules.DefaultPseudonyms().PatientName, Other: "P{hash:8}"}
	if p.Pseudonyms != wantPs {
		t.Errorf("pseudonyms %+v, want %+v", p.Pseudonyms, wantPs)
	}
	if p.DateShift != (rules.DateShift{MinDays: 10, MaxDays: 400}) {
		t.Errorf("date shift %+v", p.DateShift)
	}
	// Rules: parent first, each with its file and line.
	base, _ := filepath.Abs(filepath.Join(dir, "site", "base.yaml"))
	proj, _ := filepath.Abs(filepath.Join(dir, "project.yaml"))
	var got []string
	for _, r := range p.Rules {
		got = append(got, fmt.Sprintf("%s:%d %s", filepath.Base(r.Source), r.Line, r.Action))
		if r.Source != base && r.Source != proj {
			t.Errorf("rule source %q not absolute", r.Source)
		}
	}
	wantOrder := []string{"base.yaml:7 remove", "base.yaml:9 keep", "project.yaml:10 keep", "project.yaml:12 remove", "project.yaml:14 replace", "project.yaml:17 replace"}
	if !reflect.DeepEqual(got, wantOrder) {
		t.Errorf("rules %v, want %v", got, wantOrder)
	}
	// Later rules win: the child's keyword-less (gggg,eeee) rule over the
	// parent's keyword rule, the child's private rule over the parent's
	// (creators compare as the engine compares them), and within a file the
	// second rule for a tag over the first.
	checks := []struct {
		sel    rules.Selector
		action rules.Action
		value  string
	}{
		{rules.Selector{Tag: 0x00101010}, rules.Keep, ""},
		{rules.Selector{Private: &rules.PrivateSelector{Group: 0x0019, Creator: "GEMS_ACQU_01", Element: 0x23}}, rules.Remove, ""},
		{rules.Selector{Tag: 0x00080080}, rules.Replace, "B"},
	}
	for _, c := range checks {
		r, ok := RuleFor(p, c.sel)
		if !ok || r.Action != c.action || r.Value != c.value {
			t.Errorf("RuleFor(%s) = %+v, %v; want %s %q", selectorLabel(c.sel), r, ok, c.action, c.value)
		}
	}
	if _, ok := RuleFor(p, rules.Selector{Tag: 0x00100010}); ok {
		t.Error("RuleFor(PatientName) found a rule")
	}
	show := Show(p)
	for _, w := range []string{"overridden by rule 3", "overridden by rule 4", "overridden by rule 6", base + ":7", proj + ":17"} {
		if !strings.Contains(show, w) {
			t.Errorf("Show output lacks %q:\n%s", w, show)
		}
	}
}

func TestExtendsDepth(t *testing.T) {
	chain := func(n int) map[string]string {
		files := map[string]string{}
		for i := 0; i < n; i++ {
			files[fmt.Sprintf("p%d.yaml", i)] = fmt.Sprintf("name: p%d\nextends: p%d.yaml\n", i, i+1)
		}
		files[fmt.Sprintf("p%d.yaml", n)] = fmt.Sprintf("name: p%d\nextends: basic\n", n)
		return files
	}
	var l Loader
	// p0 -> p1 -> ... -> p7 -> basic is 8 steps.
	dir := writeFiles(t, chain(7))
	if _, err := l.Load(filepath.Join(dir, "p0.yaml")); err != nil {
		t.Errorf("8 steps: %v", err)
	}
	dir = writeFiles(t, chain(8))
	_, err := l.Load(filepath.Join(dir, "p0.yaml"))
	if err == nil || !strings.Contains(err.Error(), "p8.yaml:2:10: extends: chain from") || !strings.Contains(err.Error(), "longer than 8 steps") {
		t.Errorf("9 steps: %v", err)
	}
	l.MaxDepth = 9
	if _, err := l.Load(filepath.Join(dir, "p0.yaml")); err != nil {
		t.Errorf("9 steps with MaxDepth 9: %v", err)
	}
}

func TestReadFileHook(t *testing.T) {
	files := map[string]string{"/profiles/a.yaml": "name: a\nextends: b.yaml\n", "/profiles/b.yaml": "name: b\nextends: research\n"}
	l := Loader{ReadFile: func(name string) ([]byte, error) {
		s, ok := files[filepath.ToSlash(name)]
		if !ok {
			return nil, os.ErrNotExist
		}
		return []byte(s), nil
	}}
	p, err := l.Load("/profiles/a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "a" || !p.Options[ps315.CleanDescriptors] {
		t.Errorf("loaded %+v", p)
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		in      string
		err     string
		maxLen  int
		nPlaces int
	}{
		{"ANON{hash:12}", "", 16, 1},
		{"{digits:20}", "", 20, 1},
		{"A{hash:1}-{digits:3}B", "", 7, 2},
		{"literal", "", 7, 0},
		{"", "", 0, 0},
		{"{hash:27}", "N must be 1..26", 0, 0},
		{"{digits:21}", "N must be 1..20", 0, 0},
		{"{hash:-1}", "N must be a number", 0, 0},
		{"{hash:+1}", "N must be a number", 0, 0},
		{"{hash}", "unknown placeholder {hash}", 0, 0},
		{"{name:3}", "unknown placeholder {name:3}", 0, 0},
		{"a}b", "'}' without '{' at offset 1", 0, 0},
		{"é{hash:3}", "not allowed (printable ASCII only)", 0, 0},
	}
	for _, tc := range tests {
		tm, err := parseTemplate(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseTemplate(%q) error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("parseTemplate(%q): %v", tc.in, err)
		case tm.maxLen() != tc.maxLen || tm.placeholders != tc.nPlaces:
			t.Errorf("parseTemplate(%q): maxLen %d placeholders %d, want %d %d", tc.in, tm.maxLen(), tm.placeholders, tc.maxLen, tc.nPlaces)
		}
	}
}

func TestParseTagText(t *testing.T) {
	tests := []struct {
		in      string
		tag     uint32
		keyword bool
		bad     bool
	}{
		{"(0010,0010)", 0x00100010, false, false},
		{"0010,0010", 0x00100010, false, false},
		{"(0010, 0010)", 0x00100010, false, false},
		{"00100010", 0x00100010, false, false},
		{"(7fe0,0010)", 0x7FE00010, false, false},
		{"PatientName", 0, true, false},
		{"(0010,0010", 0, false, true},
		{"0010,00100", 0, false, true},
		{"0010001", 0, true, true},
		{"(gggg,0010)", 0, false, true},
		{"Patient Name", 0, false, true},
	}
	for _, tc := range tests {
		tag, kw, err := parseTagText(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (tag != tc.tag || kw != tc.keyword)) {
			t.Errorf("parseTagText(%q) = %08X, %v, %v", tc.in, tag, kw, err)
		}
	}
}

func TestProblemString(t *testing.T) {
	e := &Error{Problems: []Problem{
		{File: "a.yaml", Line: 3, Col: 5, Msg: "x"},
		{File: "a.yaml", Line: 4, Msg: "y"},
		{File: "b.yaml", Msg: "z"},
	}}
	if got, want := e.Error(), "a.yaml:3:5: x\na.yaml:4: y\nb.yaml: z"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestShowGolden(t *testing.T) {
	var l Loader
	p, err := l.Load("research")
	if err != nil {
		t.Fatal(err)
	}
	got := Show(p)
	golden := filepath.Join("testdata", "research.show.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./profiles -run TestShowGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("Show(research) differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
	if Show(p) != got {
		t.Error("Show is not deterministic")
	}
}

func TestPixelRules(t *testing.T) {
	p, err := (&Loader{}).Load("research-pixels")
	if err != nil {
		t.Fatal(err)
	}
	if p.Pixels == nil || len(p.Pixels.Rules) != 3 || !p.Pixels.ScreenRisky || p.Pixels.AcceptUnmatched {
		t.Fatalf("research-pixels: %+v", p.Pixels)
	}
	if r, _ := (&Loader{}).Load("research"); r.Pixels != nil {
		t.Error("research has a pixel policy")
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("r.yaml", "rules:\n  - name: x\n    match: {modality: US, rowz: 3}\n    mask:\n      - [0, 0, 0, 5]\n      - [1, 2, 3]\n  - name: y\n    mask:\n      - [0, 0, 1, 1]\n")
	prof := write("p.yaml", "name: p\nextends: research\nclean_pixel_data:\n  rules: [./r.yaml, nosuchset]\n  screen: maybe\n")
	_, err = (&Loader{}).Load(prof)
	if err == nil {
		t.Fatal("bad pixel rules loaded")
	}
	for _, want := range []string{`unknown key "rowz"`, `"0" is not a valid width`, "want [x, y, width, height]", "match is required",
		`no built-in rule set "nosuchset"`, "clean_pixel_data.screen: want true or false", "r.yaml:3:", "p.yaml:4:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}
