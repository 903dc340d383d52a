package main

import (
	"fmt"
	"os"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/safefile"
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
	// A link is refused outright, dangling or not: the crosswalk
	// re-identifies every output, and a link puts it wherever whoever
	// made the link wants.
	if fi, err := os.Lstat(c.crosswalk); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("--crosswalk %s is a symbolic link: give the real path", c.crosswalk)
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
	for _, f := range []struct{ path, flag string }{{c.keyFile, "--key-file"}, {c.report, "--report"}, {c.profile, "--profile"}} {
		if f.path == "" {
			continue
		}
		if rf, err := resolvePath(f.path); err == nil && rf == rc || safefile.SameFile(f.path, c.crosswalk) {
			return fmt.Errorf("--crosswalk must not be the %s file", f.flag)
		}
	}
	if err := safefile.Check(c.crosswalk, crosswalkOptions(c)); err != nil {
		return fmt.Errorf("--crosswalk %s: %w", c.crosswalk, pathlessErr(err))
	}
	return nil
}

// crosswalkOptions: what the crosswalk must not replace.
func crosswalkOptions(c runConfig) safefile.Options {
	o := safefile.Options{Replace: c.force, Protect: []safefile.Protected{
		{Path: c.keyFile, What: "project key file (--key-file)"}, {Path: c.report, What: "--report file"}}}
	for _, f := range readFiles(c) {
		o.Protect = append(o.Protect, safefile.Protected{Path: f.path, What: f.what})
	}
	return o
}

// writeCrosswalk writes the rows of the written outputs, in a temporary
// file of mode 0600 beside path renamed into place, so that no reader
// sees a partial crosswalk and no other user can read it at any moment.
func writeCrosswalk(c runConfig, files []FileOutcome) (int, error) {
	// Checked again where it is written: the run took time.
	if err := checkCrosswalk(c); err != nil {
		return 0, err
	}
	var rows deid.CrosswalkRows
	for _, f := range files {
		if f.Status == "written" {
			rows.Add(f.ids...)
		}
	}
	return rows.Len(), safefile.Write(c.crosswalk, crosswalkOptions(c), rows.WriteCSV)
}
