package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
	"github.com/dicomdeid/dicomdeid/profiles"
)

// AuditReport is the JSON report of `deid verify`. Anonymised paths are
// listed (that tree is the one being audited); original paths and values
// never are.
type AuditReport struct {
	Tool           string             `json:"tool"`
	Started        time.Time          `json:"started"`
	Profile        string             `json:"profile,omitempty"`
	Originals      int                `json:"originals_read"`
	OriginalsSkip  int                `json:"originals_unreadable"`
	Values         int                `json:"identifying_values"`
	Checked        int                `json:"anonymised_checked"`
	Paired         int                `json:"anonymised_paired"`
	Leaking        int                `json:"anonymised_leaking"`
	Unverifiable   int                `json:"anonymised_unverifiable"`
	Files          []AuditFile        `json:"files"`
	ExemptByPolicy []verify.Exemption `json:"exempt_by_profile,omitempty"`
}

// AuditFile is the verdict on one anonymised file.
type AuditFile struct {
	File     string           `json:"file"`
	Status   string           `json:"status"` // clean, leaking, unverifiable
	PairedBy string           `json:"paired_by"`
	Reason   string           `json:"reason,omitempty"`
	Findings []verify.Finding `json:"findings,omitempty"`
}

const verifyUsage = `deid verify --orig DIR --anon DIR [--json FILE] [--profile NAME|FILE] [--key-file FILE]

Audits a de-identified tree (made by deid or any other tool) against its
originals. File names need not match: every identifying value of every
original (names and their parts, IDs, addresses, free text, birth dates,
instance UIDs, text in private and UN values) is looked for in every
anonymised file, in every encoding it could take. An anonymised file is
paired with its original when it can be (same SOP Instance UID, the UID
deid gives it under --key-file, or identical pixel data) and then checked
against that original's values; otherwise against all. Prints the leaking files
with the attribute where each identifier was found and the attribute it
came from, never the value. Exit 1 when anything leaks or cannot be read.

--profile names what the de-identification kept on purpose (for example
research keeps cleaned descriptions and safe private attributes); those
attributes are listed as exempt instead of flagged. Without it nothing is
exempt.
`

func verifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, verifyUsage) }
	orig := fs.String("orig", "", "directory of the original files")
	anon := fs.String("anon", "", "directory of the de-identified files")
	jsonOut := fs.String("json", "", "write the audit as JSON to this file")
	profile := fs.String("profile", "", "profile whose retained attributes are exempt")
	keyFile := fs.String("key-file", "", "project key of a deid run: pairs each output with its original by UID")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *orig == "" || *anon == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, verifyUsage)
		return exitUsage
	}
	for _, d := range []string{*orig, *anon} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "deid verify: %s is not a directory\n", d)
			return exitUsage
		}
	}
	var pol verify.Policy
	rep := &AuditReport{Tool: version(), Started: time.Now().UTC()}
	if *profile != "" {
		p, err := (&profiles.Loader{}).Load(*profile)
		if err != nil {
			fmt.Fprintf(stderr, "deid verify: %v\n", err)
			return exitUsage
		}
		pol = deid.VerifyPolicy(p)
		rep.Profile = p.Name
	}

	var key *pseudonym.Pseudonymizer
	if *keyFile != "" {
		k, err := pseudonym.LoadKeyFile(*keyFile)
		if err == nil {
			key, err = pseudonym.New(k)
		}
		if err != nil {
			fmt.Fprintf(stderr, "deid verify: --key-file: %v\n", err)
			return exitUsage
		}
	}

	// Every original's values, and indexes that pair an anonymised file
	// with its original without file names: the same SOP Instance UID
	// (UIDs retained), the UID deid would give it (with --key-file), or
	// the same pixel data. An anonymised file that pairs with nothing is
	// checked against the values of all originals.
	all := verify.NewSet(pol)
	var sets []*verify.Set
	bySOP, byPixel := map[string][]int{}, map[string][]int{}
	origFiles, err := listInputs(*orig)
	if err != nil {
		fmt.Fprintf(stderr, "deid verify: list originals: %v\n", err)
		return exitUsage
	}
	for _, name := range origFiles {
		f, closer, err := openParsed(filepath.Join(*orig, name))
		if err != nil {
			rep.OriginalsSkip++
			continue
		}
		set := verify.Collect(f, pol)
		i := len(sets)
		sets = append(sets, set)
		all.Merge(set)
		if sop := verify.SOPInstanceUID(f); sop != "" {
			bySOP[sop] = append(bySOP[sop], i)
			if key != nil {
				bySOP[key.UID(sop)] = append(bySOP[key.UID(sop)], i)
			}
		}
		if d, ok, err := verify.PixelDigest(f); err == nil && ok {
			byPixel[d] = append(byPixel[d], i)
		}
		closer.Close()
		rep.Originals++
	}
	rep.Values = all.Len()
	rep.ExemptByPolicy = all.Exemptions()
	allMatcher := all.Compile()

	anonFiles, err := listInputs(*anon)
	if err != nil {
		fmt.Fprintf(stderr, "deid verify: list anonymised files: %v\n", err)
		return exitUsage
	}
	for _, name := range anonFiles {
		af := AuditFile{File: name, Status: "clean", PairedBy: "none: checked against every original"}
		f, closer, err := openParsed(filepath.Join(*anon, name))
		if err != nil {
			af.Status, af.Reason = "unverifiable", "not a readable DICOM file: "+err.Error()
			rep.Unverifiable++
		} else {
			m := allMatcher
			var cand []int
			if c := bySOP[verify.SOPInstanceUID(f)]; len(c) > 0 {
				cand, af.PairedBy = c, "SOP Instance UID"
			} else if d, ok, err := verify.PixelDigest(f); err == nil && ok && len(byPixel[d]) > 0 {
				cand, af.PairedBy = byPixel[d], "pixel data"
			}
			if len(cand) > 0 {
				pair := verify.NewSet(pol)
				for _, i := range cand {
					pair.Merge(sets[i])
				}
				m = pair.Compile()
				rep.Paired++
			}
			fnd, _, err := m.Scan(f)
			closer.Close()
			switch {
			case err != nil:
				af.Status, af.Reason = "unverifiable", err.Error()
				rep.Unverifiable++
			case len(fnd) > 0:
				af.Status, af.Findings = "leaking", fnd
				rep.Leaking++
			}
		}
		rep.Checked++
		rep.Files = append(rep.Files, af)
	}

	printAudit(stdout, rep)
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, rep); err != nil {
			fmt.Fprintf(stderr, "deid verify: %v\n", err)
			return exitRejected
		}
	}
	if rep.Leaking > 0 || rep.Unverifiable > 0 {
		return exitRejected
	}
	return exitOK
}

// openParsed parses a file; the caller closes it after using the values.
func openParsed(path string) (*dicomraw.File, io.Closer, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	f, err := dicomraw.Parse(fh, st.Size(), dicomraw.DefaultLimits())
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	return f, fh, nil
}

// printAudit writes the table a privacy officer reads: one line per
// leaking file and attribute, then the totals.
func printAudit(w io.Writer, rep *AuditReport) {
	fmt.Fprintf(w, "originals: %d read (%d unreadable), %d identifying values looked for\n",
		rep.Originals, rep.OriginalsSkip, rep.Values)
	if rep.Profile != "" {
		fmt.Fprintf(w, "profile %s: %d attribute paths exempt as retained on purpose (see --json)\n", rep.Profile, len(rep.ExemptByPolicy))
	}
	var rows []string
	for _, f := range rep.Files {
		switch f.Status {
		case "leaking":
			for _, fd := range f.Findings {
				rows = append(rows, strings.Join([]string{f.File, fd.Path, string(fd.Kind), fd.Source}, "\t"))
			}
		case "unverifiable":
			rows = append(rows, strings.Join([]string{f.File, "(whole file)", "unverifiable", f.Reason}, "\t"))
		}
	}
	sort.Strings(rows)
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ANONYMISED FILE\tFOUND IN ATTRIBUTE\tKIND\tIDENTIFIER FROM ORIGINAL ATTRIBUTE")
		for _, r := range rows {
			fmt.Fprintln(tw, r)
		}
		tw.Flush()
	}
	verdict := "PASS: no identifying value of the originals found"
	if rep.Leaking > 0 || rep.Unverifiable > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "anonymised: %d checked (%d paired with their original), %d leaking, %d unverifiable. %s\n", rep.Checked, rep.Paired, rep.Leaking, rep.Unverifiable, verdict)
}
