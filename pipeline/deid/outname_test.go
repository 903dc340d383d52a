package deid

import (
	"bytes"
	"path"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

func TestValidUID(t *testing.T) {
	for s, want := range map[string]bool{
		"1.2.840.10008.1.2.1":              true,
		"0":                                true,
		"2.25.0.1":                         true,
		"1.2.3." + strings.Repeat("9", 58): true, // 64 characters
		"1.2.3." + strings.Repeat("9", 59): false,
		"":                                 false,
		"1..2":                             false,
		".1.2":                             false,
		"1.2.":                             false,
		"1.02.3":                           false, // a leading zero
		"../../victim":                     false,
		"1.2/3":                            false,
		"1.2.3\x00":                        false,
		"1.2.3 ":                           false,
		"١.٢":                              false, // Arabic-Indic digits are not digits here
	} {
		if got := ValidUID(s); got != want {
			t.Errorf("ValidUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestOutputNameStaysInsideItsFolder(t *testing.T) {
	e := newEngine(t, basicProfile(), 3)
	other := newEngine(t, basicProfile(), 4)
	for _, r := range []Result{
		{StudyUID: "1.2.3", SeriesUID: "1.2.3.4", SOPInstanceUID: "../../victim"},
		{StudyUID: "..", SeriesUID: "/etc", SOPInstanceUID: "1.2.3.4.5"},
		{StudyUID: "1.2.3", SeriesUID: "", SOPInstanceUID: "a\\b"},
		{StudyUID: "DOE^JANE", SeriesUID: "1.2", SOPInstanceUID: "1.2.3"},
	} {
		name, hashed := e.outputName(&r)
		if !hashed {
			t.Errorf("%+v: not named by a hash", r)
		}
		checkName(t, name)
		for _, v := range []string{"victim", "etc", "DOE", "JANE", `\`} {
			if strings.Contains(name, v) {
				t.Errorf("name %q carries %q", name, v)
			}
		}
		if again, _ := e.outputName(&r); again != name {
			t.Errorf("name %q then %q: not a function of the input", name, again)
		}
		if o, _ := other.outputName(&r); o == name {
			t.Errorf("two keys name %+v alike: the hash is not keyed", r)
		}
	}
	name, hashed := e.outputName(&Result{StudyUID: "1.2.3", SOPInstanceUID: "2.25.7"})
	if hashed || name != "1.2.3/no-series/2.25.7.dcm" {
		t.Fatalf("valid UIDs named %q (hashed %v)", name, hashed)
	}
}

func checkName(t *testing.T, name string) {
	t.Helper()
	parts := strings.Split(name, "/")
	if path.Clean(name) != name || path.IsAbs(name) || len(parts) != 3 || !strings.HasSuffix(name, ".dcm") {
		t.Fatalf("name %q is not <study>/<series>/<sop>.dcm", name)
	}
	for i, p := range parts {
		if i == 2 {
			p = strings.TrimSuffix(p, ".dcm")
		}
		if !ValidUID(p) && !strings.HasPrefix(p, "hashed-") && p != "no-study" && p != "no-series" {
			t.Fatalf("name %q: component %q", name, p)
		}
		if strings.ContainsAny(p, `/\`) || p == "." || p == ".." {
			t.Fatalf("name %q: component %q", name, p)
		}
	}
}

// With Retain UIDs, the input's own UIDs name the output, so a SOP
// Instance UID of "../../victim" reaches the engine's Result: its Name
// is a keyed hash.
func TestRetainedUIDThatIsAPathIsHashed(t *testing.T) {
	e := newEngine(t, profileWith("retain", ps315.RetainUIDs), 5)
	els := sampleCT("PID-1", "../../victim")
	in := buildFile(t, false, els)
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r := j.Result()
	if r.SOPInstanceUID != "../../victim" || !r.NameHashed {
		t.Fatalf("SOP Instance UID %q, hashed %v", r.SOPInstanceUID, r.NameHashed)
	}
	checkName(t, r.Name)
}

// FuzzOutputName: whatever the UIDs, the name is three clean components
// that stay inside the folder they are joined to.
func FuzzOutputName(f *testing.F) {
	e := newEngine(f, basicProfile(), 6)
	f.Add("1.2.3", "1.2.3.4", "../../victim")
	f.Add("", "", "")
	f.Add("..", "/", "1.2\x00")
	f.Fuzz(func(t *testing.T, study, series, sop string) {
		name, _ := e.outputName(&Result{StudyUID: study, SeriesUID: series, SOPInstanceUID: sop})
		checkName(t, name)
	})
}
