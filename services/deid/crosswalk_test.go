package main

import (
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// readCrosswalk reads a crosswalk CSV: its header and rows.
func readCrosswalk(t *testing.T, b []byte) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		t.Fatalf("crosswalk is not CSV: %v", err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "id_old,id_new" {
		t.Fatalf("crosswalk header %v, want id_old,id_new", rows)
	}
	return rows[1:]
}

// TestRunCrosswalk: `deid run --crosswalk FILE.csv` writes, mode 0600,
// one id_old,id_new row per Patient ID, Study, Series and SOP Instance
// UID of the written outputs, and scripts/crosswalk-map maps every output
// back to its input with it (the report's pairing of inputs and outputs
// is the judge). A crosswalk path inside --in or --out, or equal to the
// key file or the report, is refused.
func TestRunCrosswalk(t *testing.T) {
	names := []string{"ct_small_explicit_le.dcm", "mr_small_explicit_be.dcm", "sr_basic_text.dcm", "rtplan_small.dcm",
		"series_ct5n_1.dcm", "series_ct5n_2.dcm", "rtionplan_nometa_explicit_le.dcm", "private_sop_class_philips.dcm"}
	in := copyCorpus(t, names...)
	tmp := t.TempDir()
	key := writeKey(t, tmp, keyA)
	out, report, cw := filepath.Join(tmp, "out"), filepath.Join(tmp, "report.json"), filepath.Join(tmp, "crosswalk.csv")
	code, so, se := runDeid(t, "run", "--in", in, "--out", out, "--profile", "research", "--key-file", key,
		"--report", report, "--crosswalk", cw, "--no-progress")
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s%s", code, so, se)
	}
	st, err := os.Stat(cw)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("crosswalk %v mode %v, want 0600", err, st)
	}
	b, _ := os.ReadFile(cw)
	rows := readCrosswalk(t, b)
	_, rep := readReport(t, report)
	// Four identifiers per instance, shared ones (patient, study, series)
	// once: every written output's SOP Instance UID is there.
	news := map[string]bool{}
	for _, r := range rows {
		news[r[1]] = true
	}
	for _, f := range rep.Files {
		if f.Status == "written" && !news[strings.TrimSuffix(filepath.Base(f.Output), ".dcm")] {
			t.Errorf("output of %s has no crosswalk row", f.Input)
		}
	}
	if !sort.SliceIsSorted(rows, func(a, b int) bool { return rows[a][0] < rows[b][0] }) {
		t.Error("crosswalk rows not sorted")
	}

	// The script maps each output to its input, as the report does.
	cmd := exec.Command("/usr/bin/python3", "../../scripts/crosswalk-map", "--crosswalk", cw, "--anon", out, "--orig", in)
	mapped, err := cmd.Output()
	if err != nil {
		t.Fatalf("crosswalk-map: %v\n%s", err, mapped)
	}
	got := map[string]string{}
	lines, _ := csv.NewReader(strings.NewReader(string(mapped))).ReadAll()
	for _, l := range lines[1:] {
		got[l[0]] = l[1]
	}
	written := 0
	for _, f := range rep.Files {
		if f.Status != "written" {
			continue
		}
		written++
		if got[f.Output] != f.Input {
			t.Errorf("crosswalk-map maps %s to %q, want %s", f.Output, got[f.Output], f.Input)
		}
	}
	if written != len(names) || len(got) != written {
		t.Errorf("%d written, %d mapped", written, len(got))
	}

	// Same key, same inputs: the same crosswalk, byte for byte.
	cw2 := filepath.Join(tmp, "again.csv")
	if code, _, se := runDeid(t, "run", "--in", in, "--out", filepath.Join(tmp, "out2"), "--profile", "research", "--key-file", key,
		"--crosswalk", cw2, "--no-progress", "--workers", "1"); code != exitOK {
		t.Fatalf("second run: %s", se)
	}
	if b2, _ := os.ReadFile(cw2); string(b2) != string(b) {
		t.Error("a second run wrote another crosswalk")
	}

	for _, bad := range []struct{ path, want string }{
		{filepath.Join(in, "cw.csv"), "inside --in"},
		{filepath.Join(out, "cw.csv"), "inside --out"},
		{key, "must not be the --key-file file"},
		{report, "must not be the --report file"},
	} {
		code, _, se := runDeid(t, "run", "--in", in, "--out", out, "--key-file", key, "--report", report, "--crosswalk", bad.path, "--no-progress")
		if code != exitUsage || !strings.Contains(se, bad.want) {
			t.Errorf("--crosswalk %s: exit %d, %q", bad.path, code, se)
		}
	}
	if _, err := os.Stat(filepath.Join(in, "cw.csv")); err == nil {
		t.Error("a refused crosswalk was written")
	}
}

// TestPseudonymBatch: `deid pseudonym --batch` maps many Patient IDs and
// UIDs at once, in the crosswalk's format, to the same values deid run's
// crosswalk holds; a patient missing from a project's lookup table gets
// an empty id_new and exit 1, named by row; a header it cannot read is
// refused.
func TestPseudonymBatch(t *testing.T) {
	names := []string{"ct_small_explicit_le.dcm", "mr_small_explicit_be.dcm", "rtplan_small.dcm"}
	in := copyCorpus(t, names...)
	tmp := t.TempDir()
	key := writeKey(t, tmp, keyA)
	cw := filepath.Join(tmp, "cw.csv")
	if code, _, se := runDeid(t, "run", "--in", in, "--out", filepath.Join(tmp, "out"), "--profile", "research", "--key-file", key,
		"--crosswalk", cw, "--no-progress"); code != 0 {
		t.Fatalf("run: %s", se)
	}
	b, _ := os.ReadFile(cw)
	want := map[string]string{}
	for _, r := range readCrosswalk(t, b) {
		want[r[0]] = r[1]
	}
	batch := "patient_id,uid\n"
	var olds []string
	for _, n := range names {
		data, _ := os.ReadFile(filepath.Join(in, n))
		pid, sop := topValue(t, data, 0x00100020), topValue(t, data, 0x00080018)
		batch += pid + "," + sop + "\n"
		olds = append(olds, pid, sop)
	}
	bf := filepath.Join(tmp, "batch.csv")
	os.WriteFile(bf, []byte(batch), 0o600)
	out := filepath.Join(tmp, "mapped.csv")
	code, _, se := runDeid(t, "pseudonym", "--key-file", key, "--profile", "research", "--batch", bf, "--out", out)
	if code != exitOK {
		t.Fatalf("pseudonym --batch: exit %d %s", code, se)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("--out %v, want mode 0600", err)
	}
	mb, _ := os.ReadFile(out)
	got := readCrosswalk(t, mb)
	if len(got) != len(olds) {
		t.Fatalf("%d rows for %d values", len(got), len(olds))
	}
	for i, r := range got {
		if r[0] != olds[i] || r[1] != want[r[0]] || r[1] == "" {
			t.Errorf("row %d maps to %q, deid run's crosswalk says %q", i+2, r[1], want[r[0]])
		}
	}

	// A project with a lookup table: the second patient is not in it.
	projDir := filepath.Join(tmp, "projects")
	lookup := filepath.Join(tmp, "lookup.csv")
	os.WriteFile(lookup, []byte("patient_id,research_id\nALPHA-1,RESEARCH-001\n"), 0o600)
	if code, _, se := runDeid(t, "project", "create", "gamma", "--lookup", lookup, "--projects", projDir); code != 0 {
		t.Fatalf("project create: %s", se)
	}
	os.WriteFile(bf, []byte("patient_id\nALPHA-1\nBRAVO-2\n"), 0o600)
	code, so, se := runDeid(t, "pseudonym", "--project", "gamma", "--projects", projDir, "--batch", bf)
	if code != exitRejected || so != "id_old,id_new\nALPHA-1,RESEARCH-001\nBRAVO-2,\n" || !strings.Contains(se, "rows #3") || strings.Contains(se, "BRAVO") {
		t.Errorf("lookup table: exit %d\n%s%s", code, so, se)
	}
	os.WriteFile(bf, []byte("name,patient_id\nx,1\n"), 0o600)
	if code, _, se := runDeid(t, "pseudonym", "--key-file", key, "--batch", bf); code != exitUsage || !strings.Contains(se, "column 1") {
		t.Errorf("unknown column: exit %d %s", code, se)
	}
}
