package main

import (
	"fmt"
	"os"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
)

// The crosswalk of `deid run --crosswalk FILE.csv`: one id_old,id_new row
// per Patient ID, Study, Series and SOP Instance UID of the outputs
// written (MIDI-B's mapping format). It re-identifies every output, so it
// stays on the trusted side: mode 0600, never inside --in or --out, never
// the key file or the report.

// checkCrosswalk refuses a crosswalk path inside the input or output
// tree, or equal to the key file or the report (links resolved).
func checkCrosswalk(c runConfig) error {
	if c.crosswalk == "" {
		return nil
	}
	if c.dryRun {
		return fmt.Errorf("--crosswalk with --dry-run: a dry run writes nothing")
	}
	rc, err := resolvePath(c.crosswalk)
	if err != nil {
		return fmt.Errorf("--crosswalk: %w", err)
	}
	if st, err := os.Stat(rc); err == nil && st.IsDir() {
		return fmt.Errorf("--crosswalk %s is a directory", c.crosswalk)
	}
	for _, d := range []struct{ path, flag, why string }{
		{c.in, "--in", "the input tree is only read"},
		{c.out, "--out", "it re-identifies the outputs"},
	} {
		if d.path == "" {
			continue
		}
		rd, err := resolvePath(d.path)
		if err != nil {
			return fmt.Errorf("%s: %w", d.flag, err)
		}
		if within(rc, rd) {
			return fmt.Errorf("--crosswalk must not be inside %s: %s", d.flag, d.why)
		}
	}
	for _, f := range []struct{ path, flag string }{{c.keyFile, "--key-file"}, {c.report, "--report"}} {
		if f.path == "" {
			continue
		}
		if rf, err := resolvePath(f.path); err == nil && rf == rc {
			return fmt.Errorf("--crosswalk must not be the %s file", f.flag)
		}
	}
	return nil
}

// writeCrosswalk writes the rows of the written outputs, in a temporary
// file of mode 0600 beside path renamed into place, so that no reader
// sees a partial crosswalk and no other user can read it at any moment.
func writeCrosswalk(path string, files []FileOutcome) (int, error) {
	var rows deid.CrosswalkRows
	for _, f := range files {
		if f.Status == "written" {
			rows.Add(f.ids...)
		}
	}
	return rows.Len(), writePrivate(path, rows.WriteCSV)
}
