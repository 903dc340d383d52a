package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestProfiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The unknown action is on line 6 of each file.
	badAction := write("bad action.yaml", `name: bad-action
description: a rule with an action that does not exist
extends: research
rules:
  - tag: PatientName
    action: frobnicate
`)
	badTwice := write("two problems.yaml", `name: two
extends: basic
options:
  retain_uids: true
rules:
  - tag: StudyDescription
    action: scramble
  - tag: InstitutionName
    action: keep
    colour: blue
`)
	good := write("good.yaml", `name: good
description: research plus keeping the institution
extends: research
rules:
  - tag: InstitutionName
    action: keep
`)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // regular expressions, each must match
		wantStderr []string
	}{
		{name: "list", args: []string{"list"}, wantCode: exitOK,
			wantStdout: []string{`(?m)^basic\s+\S`, `(?m)^research\s+\S`, `(?m)^example-custom\s+\S`}},
		{name: "show research", args: []string{"show", "research"}, wantCode: exitOK,
			wantStdout: []string{`(?m)^profile research$`, `edition 2024c`,
				`(?m)^\s+on\s+retain_long_modified_dates\b`, `(?m)^\s+on\s+clean_descriptors\b`,
				`(?m)^\s+off\s+retain_uids\b`}},
		{name: "show basic", args: []string{"show", "basic"}, wantCode: exitOK,
			wantStdout: []string{`(?m)^profile basic$`, `(?m)^\s+off\s+retain_long_modified_dates\b`}},
		{name: "show file", args: []string{"show", good}, wantCode: exitOK,
			wantStdout: []string{`(?m)^profile good$`, `InstitutionName`, `(?m)^\s+on\s+clean_descriptors\b`}},
		{name: "show unknown", args: []string{"show", "nosuch"}, wantCode: exitRejected,
			wantStderr: []string{`unknown profile`}},
		{name: "show without name", args: []string{"show"}, wantCode: exitUsage},
		{name: "check good file", args: []string{"check", good}, wantCode: exitOK,
			wantStdout: []string{regexp.QuoteMeta(good) + `: ok`}},
		{name: "check unknown action", args: []string{"check", badAction}, wantCode: exitRejected,
			wantStderr: []string{regexp.QuoteMeta(badAction) + `:6:\d+: .*unknown action "frobnicate"`}},
		{name: "check reports every problem", args: []string{"check", badTwice}, wantCode: exitRejected,
			wantStderr: []string{
				regexp.QuoteMeta(badTwice) + `:7:\d+: .*unknown action "scramble"`,
				regexp.QuoteMeta(badTwice) + `:10:\d+: .*colour`,
			}},
		{name: "check missing file", args: []string{"check", filepath.Join(dir, "absent.yaml")}, wantCode: exitRejected,
			wantStderr: []string{`does not exist`}},
		{name: "check without file", args: []string{"check"}, wantCode: exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runDeid(t, append([]string{"profiles"}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.wantCode, stderr)
			}
			if code != exitOK && stderr == "" {
				t.Error("failure without a message on stderr")
			}
			for _, re := range tc.wantStdout {
				if !regexp.MustCompile(re).MatchString(stdout) {
					t.Errorf("stdout does not match %s:\n%s", re, stdout)
				}
			}
			for _, re := range tc.wantStderr {
				if !regexp.MustCompile(re).MatchString(stderr) {
					t.Errorf("stderr does not match %s:\n%s", re, stderr)
				}
			}
		})
	}
}

// TestProfilesListLoadsEach checks that every listed built-in can be shown
// and used by `deid run --profile`.
func TestProfilesListLoadsEach(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runDeid(t, "profiles", "list")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		names = append(names, strings.Fields(l)[0])
	}
	if strings.Join(names, ",") != "basic,example-custom,research,research-pixels" {
		t.Errorf("built-ins %v, want basic, example-custom, research, research-pixels", names)
	}
	in := makeInputs(t, sampleInputs[:1])
	key := writeKey(t, t.TempDir(), keyA)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			t.Parallel()
			if code, _, stderr := runDeid(t, "profiles", "show", n); code != exitOK {
				t.Errorf("show: exit %d: %s", code, stderr)
			}
			report := filepath.Join(t.TempDir(), "report.json")
			code, _, stderr := runDeid(t, "run", "--in", in, "--out", filepath.Join(t.TempDir(), "out"),
				"--profile", n, "--key-file", key, "--report", report)
			if code != exitOK {
				t.Fatalf("run: exit %d: %s", code, stderr)
			}
			if _, rep := readReport(t, report); rep.Profile != n {
				t.Errorf("report profile %q, want %q", rep.Profile, n)
			}
		})
	}
}
