package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/safefile"
)

// pseudonymBatch is `deid pseudonym --batch IN.csv [--out OUT.csv]`: the
// delivery's identifiers of many patients and UIDs at once, as id_old,
// id_new rows (the crosswalk format), in input order. A patient the
// project's lookup table lacks gets an empty id_new (deliveries leave it
// out) and the exit status is 1; rows are named by number, never value.
func pseudonymBatch(eng *deid.Engine, c batchConfig, stdout, stderr io.Writer) int {
	in, outPath := c.in, c.out
	opts := c.outOptions()
	if outPath != "" {
		if err := c.checkOut(opts); err != nil {
			fmt.Fprintln(stderr, "deid pseudonym: --out:", err)
			return exitUsage
		}
	}
	f, err := os.Open(in)
	if err != nil {
		fmt.Fprintln(stderr, "deid pseudonym: --batch:", pathless(err))
		return exitUsage
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		fmt.Fprintln(stderr, "deid pseudonym: --batch: no header row")
		return exitUsage
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch h {
		case "patient_id", "issuer_of_patient_id", "uid":
			col[h] = i
		default:
			fmt.Fprintf(stderr, "deid pseudonym: --batch: column %d of the header is not patient_id, issuer_of_patient_id or uid\n", i+1)
			return exitUsage
		}
	}
	_, hasPID := col["patient_id"]
	_, hasUID := col["uid"]
	if !hasPID && !hasUID {
		fmt.Fprintln(stderr, "deid pseudonym: --batch: the header names neither patient_id nor uid")
		return exitUsage
	}
	cell := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []deid.IDPair
	var missing []string
	for n := 2; ; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintf(stderr, "deid pseudonym: --batch: row %d is not CSV\n", n)
			return exitUsage
		}
		if pid := cell(rec, "patient_id"); pid != "" {
			l, ok := eng.PatientLinkage(pid, cell(rec, "issuer_of_patient_id"))
			if !ok {
				missing = append(missing, fmt.Sprintf("#%d", n))
			}
			rows = append(rows, deid.IDPair{Old: pid, New: l.PatientID})
		}
		if uid := cell(rec, "uid"); uid != "" {
			rows = append(rows, deid.IDPair{Old: uid, New: eng.UID(uid)})
		}
	}
	write := func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"id_old", "id_new"}) //nolint:errcheck // cw.Error below
		for _, p := range rows {
			cw.Write([]string{p.Old, p.New}) //nolint:errcheck
		}
		cw.Flush()
		return cw.Error()
	}
	if outPath == "" {
		err = write(stdout)
	} else {
		err = safefile.Write(outPath, opts, write)
	}
	if err != nil {
		fmt.Fprintln(stderr, "deid pseudonym: --out:", pathless(err))
		return exitRejected
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "deid pseudonym: patients not in the project's lookup table (deliveries leave them out; id_new empty): rows %s\n", strings.Join(missing, ", "))
		return exitRejected
	}
	return exitOK
}

// batchConfig is what `deid pseudonym --batch` reads and writes.
type batchConfig struct {
	in, out  string
	force    bool
	keyFile  string // --key-file, if given
	projects string // --projects with --project: the store's directory
}

// outOptions protect what the command reads from --out.
func (c batchConfig) outOptions() safefile.Options {
	return safefile.Options{Replace: c.force, Protect: []safefile.Protected{
		{Path: c.in, What: "--batch file"}, {Path: c.keyFile, What: "project key file (--key-file)"}}}
}

// checkOut refuses an --out the package safefile refuses, or one inside
// the project store (keys and lookup tables).
func (c batchConfig) checkOut(o safefile.Options) error {
	if c.projects != "" {
		rp, err1 := resolvePath(c.projects)
		ro, err2 := resolvePath(c.out)
		if err1 != nil || err2 != nil || within(ro, rp) {
			return errors.New("must not be inside the project store (--projects)")
		}
	}
	return pathlessErr(safefile.Check(c.out, o))
}

// projectsDirOf is the project store's directory when a project is used.
func projectsDirOf(project, dir string) string {
	if project == "" {
		return ""
	}
	return dir
}

// pathlessErr is err without the path an *fs.PathError names.
func pathlessErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(pathless(err))
}

// pathless is an error's text without the path an *fs.PathError names.
func pathless(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
