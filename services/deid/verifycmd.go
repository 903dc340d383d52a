package main

import (
	"context"
	"encoding/json"

	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/burnin"
	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
	"github.com/dicomdeid/dicomdeid/profiles"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/safefile"
)

// AuditReport is the JSON report of `deid verify`. Anonymised paths are
// listed (that tree is the one being audited); original paths and values
// never are.
type AuditReport struct {
	Tool    string    `json:"tool"`
	Started time.Time `json:"started"`
	// Profile is the --profile given; without it each output's own
	// statement decides (Profiles).
	Profile       string `json:"profile,omitempty"`
	Originals     int    `json:"originals_read"`
	OriginalsSkip int    `json:"originals_unreadable"`
	Values        int    `json:"identifying_values"`
	Checked       int    `json:"anonymised_checked"`
	Paired        int    `json:"anonymised_paired"`
	Leaking       int    `json:"anonymised_leaking"`
	Unverifiable  int    `json:"anonymised_unverifiable"`
	// PairedBy counts the paired outputs by how they were paired;
	// Unpaired were checked against the values of every original.
	PairedBy map[string]int `json:"paired_by"`
	Unpaired int            `json:"anonymised_unpaired"`
	// Profiles counts the outputs by what their exemptions were read from.
	Profiles map[string]int `json:"profiles"`
	// PixelsExamined is whether the pixels of the outputs were looked at
	// for burned-in identifiers; the headers always are.
	PixelsExamined bool `json:"pixels_examined"`
	// PixelsAudited counts the outputs whose pixels were read (OCR) for
	// the originals' identifiers; PixelsNotAudited those that were not
	// (no pixel data, no OCR, not decodable), and OCR says which OCR.
	PixelsAudited    int                `json:"pixels_audited"`
	PixelsNotAudited int                `json:"pixels_not_audited"`
	OCR              string             `json:"ocr"`
	Files            []AuditFile        `json:"files"`
	ExemptByPolicy   []verify.Exemption `json:"exempt_by_profile,omitempty"`
}

// AuditFile is the verdict on one anonymised file.
type AuditFile struct {
	File     string           `json:"file"`
	Status   string           `json:"status"` // clean, leaking, unverifiable
	PairedBy string           `json:"paired_by"`
	Profile  string           `json:"profile,omitempty"` // what its exemptions were read from
	Reason   string           `json:"reason,omitempty"`
	Findings []verify.Finding `json:"findings,omitempty"`
	// Pixels says whether the pixels were read, or why not; PixelFindings
	// is text still legible in them (kind and place, never the text).
	Pixels        string   `json:"pixels,omitempty"`
	PixelFindings []string `json:"pixel_findings,omitempty"`
}

const verifyUsage = `deid verify --orig DIR --anon DIR [--json FILE [--force]] [--profile NAME|FILE] [--key-file FILE]

Audits a de-identified tree (made by deid or any other tool) against its
originals. File names need not match: every identifying value of every
original (names and their parts, IDs, addresses, free text, birth dates,
instance UIDs, text in private and UN values) is looked for in every
anonymised file, in every encoding it could take. Prints the leaking
files with the attribute where each identifier was found and the
attribute it came from, never the value. Exit 1 when anything leaks or
cannot be read.

What was kept on purpose (research keeps cleaned descriptions, shifted
dates and safe private attributes) is read from each anonymised file's
De-identification Method and its Code Sequence; --profile names it
instead (needed for a profile file with keep rules). A file that says
nothing of its de-identification has nothing exempt.

Each anonymised file is paired with its original when it can be: the
same SOP Instance UID, the UID deid gives it under the project key
(--key-file, or DEID_KEY), identical pixel data, or the same kept header
values; it is then checked against that original's values. A file that
pairs with nothing is checked against the values of every original,
where another patient's values count too.
`

// Pairing methods, as the report names them.
const (
	pairedSOP    = "SOP Instance UID"
	pairedKey    = "project key"
	pairedPixels = "pixel data"
	pairedHeader = "header"
	pairedNone   = "none: checked against every original"
)

// auditPolicy is one way of knowing what an output kept on purpose.
type auditPolicy struct {
	pol  verify.Policy
	desc string // for the report: what it was read from
}

func verifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, verifyUsage) }
	orig := fs.String("orig", "", "directory of the original files")
	anon := fs.String("anon", "", "directory of the de-identified files")
	jsonOut := fs.String("json", "", "write the audit as JSON to this file (mode 0600; a new file, never a link, the key file, nor inside --orig or --anon)")
	force := fs.Bool("force", false, "let --json replace an existing file (never the key or a credentials file)")
	profile := fs.String("profile", "", "profile whose retained attributes are exempt (default: what each output declares)")
	keyFile := fs.String("key-file", "", "project key of a deid run (or DEID_KEY): pairs each output with its original by UID")
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
	jc := auditOut{path: *jsonOut, orig: *orig, anon: *anon, keyFile: *keyFile, profile: *profile, force: *force}
	if err := jc.check(); err != nil {
		fmt.Fprintf(stderr, "deid verify: --json: %v\n", err)
		return exitUsage
	}
	rep := &AuditReport{Tool: version(), Started: time.Now().UTC(), PairedBy: map[string]int{}, Profiles: map[string]int{}}
	var fixed *auditPolicy
	if *profile != "" {
		p, err := (&profiles.Loader{}).Load(*profile)
		if err != nil {
			fmt.Fprintf(stderr, "deid verify: %v\n", err)
			return exitUsage
		}
		fixed = &auditPolicy{pol: deid.VerifyPolicy(p), desc: "--profile " + p.Name}
		rep.Profile = p.Name
	}
	var key *pseudonym.Pseudonymizer
	if *keyFile != "" || os.Getenv("DEID_KEY") != "" {
		k, err := loadKey(*keyFile)
		if err == nil {
			key, err = pseudonym.New(k)
		}
		if err != nil {
			fmt.Fprintf(stderr, "deid verify: project key: %v\n", err)
			return exitUsage
		}
	}

	// What each output kept on purpose, read from it first: the originals'
	// values are collected once per distinct policy.
	anonFiles, err := listInputs(*anon)
	if err != nil {
		fmt.Fprintf(stderr, "deid verify: list anonymised files: %v\n", err)
		return exitUsage
	}
	policies := map[string]*auditPolicy{}
	policyOf := make([]string, len(anonFiles))
	for i, name := range anonFiles {
		k, ap := "fixed", fixed
		if fixed == nil {
			f, closer, err := openParsed(filepath.Join(*anon, name))
			if err != nil {
				continue // unverifiable; said below
			}
			k, ap = declaredPolicy(deid.ReadDeclared(f))
			closer.Close()
		}
		policyOf[i] = k
		policies[k] = ap
	}
	keys := make([]string, 0, len(policies))
	for k := range policies {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	// Every original's values (per policy), and indexes that pair an
	// anonymised file with its original without file names.
	all := map[string]*verify.Set{}
	sets := map[string][]*verify.Set{}
	for _, k := range keys {
		all[k] = verify.NewSet(policies[k].pol)
	}
	bySOP, byPixel := map[string][]int{}, map[string][]int{}
	bySOPKey := map[string][]int{}
	headers := verify.NewHeaderIndex()
	origFiles, err := listInputs(*orig)
	if err != nil {
		fmt.Fprintf(stderr, "deid verify: list originals: %v\n", err)
		return exitUsage
	}
	n := 0
	for _, name := range origFiles {
		f, closer, err := openParsed(filepath.Join(*orig, name))
		if err != nil {
			rep.OriginalsSkip++
			continue
		}
		i := n
		n++
		for _, k := range keys {
			set := verify.Collect(f, policies[k].pol)
			sets[k] = append(sets[k], set)
			all[k].Merge(set)
		}
		if sop := verify.SOPInstanceUID(f); sop != "" {
			bySOP[sop] = append(bySOP[sop], i)
			if key != nil {
				u := key.UID(sop)
				bySOPKey[u] = append(bySOPKey[u], i)
			}
		}
		if d, ok, err := verify.PixelDigest(f); err == nil && ok {
			byPixel[d] = append(byPixel[d], i)
		}
		headers.Add(i, verify.Header(f))
		closer.Close()
		rep.Originals++
	}
	matchers := map[string]*verify.Matcher{}
	for _, k := range keys {
		rep.Values = max(rep.Values, all[k].Len())
		rep.ExemptByPolicy = append(rep.ExemptByPolicy, all[k].Exemptions()...)
		matchers[k] = all[k].Compile()
	}
	sort.Slice(rep.ExemptByPolicy, func(a, b int) bool {
		x, y := rep.ExemptByPolicy[a], rep.ExemptByPolicy[b]
		return x.Path < y.Path || x.Path == y.Path && x.Reason < y.Reason
	})
	rep.ExemptByPolicy = slices.Compact(rep.ExemptByPolicy)

	// Pixels are read as the engine's check reads them, for the paired
	// originals' identifiers and identifying shapes (OCR, one engine).
	textOCR := openTextOCR(1, false)
	defer textOCR.Close()
	rep.OCR = textOCR.Describe()
	basic, err := (&profiles.Loader{}).Load("basic")
	if err != nil {
		fmt.Fprintln(stderr, "deid verify:", err)
		return exitUsage
	}
	tcfg := burnin.Config{Mode: burnin.ModeAllButAllowed, Allow: burnin.NewAllow(basic.Text.Allow)}
	if textOCR.pool != nil {
		tcfg.Reader = textOCR.pool
	}
	cleaner := burnin.New(tcfg)
	for i, name := range anonFiles {
		af := AuditFile{File: name, Status: "clean", PairedBy: pairedNone}
		f, closer, err := openParsed(filepath.Join(*anon, name))
		if err != nil || policyOf[i] == "" {
			af.Status, af.PairedBy = "unverifiable", ""
			af.Reason = "not a readable DICOM file"
			if err != nil {
				af.Reason += ": " + err.Error()
			}
			rep.Unverifiable++
			rep.Checked++
			rep.Files = append(rep.Files, af)
			continue
		}
		k := policyOf[i]
		af.Profile = policies[k].desc
		rep.Profiles[af.Profile]++
		cand, by := pairOriginal(f, bySOP, bySOPKey, byPixel, headers)
		m := matchers[k]
		if len(cand) > 0 {
			af.PairedBy = by
			pair := verify.NewSet(policies[k].pol)
			for _, c := range cand {
				pair.Merge(sets[k][c])
			}
			m = pair.Compile()
			rep.Paired++
			rep.PairedBy[by]++
		} else {
			rep.Unpaired++
		}
		fnd, _, err := m.Scan(f)
		var ids []burnin.Identifier
		if len(cand) > 0 {
			ids = identifiersOf(pairSet(policies[k].pol, sets[k], cand))
		} else {
			ids = identifiersOf(all[k])
		}
		pa, perr := deid.AuditPixels(context.Background(), f, ids, len(cand) == 0, cleaner, nil)
		closer.Close()
		if perr == nil && pa.Examined {
			af.Pixels = "read"
			rep.PixelsAudited++
			for _, pf := range pa.Findings {
				af.PixelFindings = append(af.PixelFindings, pf.String())
			}
		} else {
			af.Pixels = "not read: " + pa.Why
			if perr != nil {
				af.Pixels = "not read: OCR failed"
			}
			rep.PixelsNotAudited++
		}
		switch {
		case err != nil:
			af.Status, af.Reason = "unverifiable", err.Error()
			rep.Unverifiable++
		case len(fnd) > 0 || len(af.PixelFindings) > 0:
			af.Status, af.Findings = "leaking", fnd
			rep.Leaking++
		}
		rep.Checked++
		rep.Files = append(rep.Files, af)
	}

	rep.PixelsExamined = rep.PixelsAudited > 0
	printAudit(stdout, rep, key != nil)
	if *jsonOut != "" {
		if err := jc.write(rep); err != nil {
			fmt.Fprintf(stderr, "deid verify: --json: %v\n", err)
			return exitRejected
		}
	}
	if rep.Leaking > 0 || rep.Unverifiable > 0 {
		return exitRejected
	}
	return exitOK
}

// pairOriginal finds the originals an anonymised file was made from, and
// how: the same SOP Instance UID (UIDs retained, or not de-identified),
// the UID deid gives it under the key, the same pixel data, or the same
// kept header values.
func pairOriginal(f *dicomraw.File, bySOP, bySOPKey, byPixel map[string][]int, headers *verify.HeaderIndex) ([]int, string) {
	sop := verify.SOPInstanceUID(f)
	if c := bySOP[sop]; len(c) > 0 {
		return c, pairedSOP
	}
	if c := bySOPKey[sop]; len(c) > 0 {
		return c, pairedKey
	}
	if d, ok, err := verify.PixelDigest(f); err == nil && ok && len(byPixel[d]) > 0 {
		return byPixel[d], pairedPixels
	}
	if c := headers.Match(verify.Header(f)); len(c) > 0 {
		return c, pairedHeader
	}
	return nil, ""
}

// declaredPolicy is what an output says it kept on purpose: the profile
// its De-identification Method names when deid made it with a built-in
// profile; otherwise the options its De-identification Method Code
// Sequence lists (a profile file's keep rules cannot be known from the
// output: --profile names them); nothing for an output that declares
// nothing. Only built-in profiles are loaded: a file's header never
// names a file to read.
func declaredPolicy(d deid.Declared) (string, *auditPolicy) {
	if d.Tool && slices.Contains((&profiles.Loader{}).Builtin(), d.Profile) {
		if p, err := (&profiles.Loader{}).Load(d.Profile); err == nil {
			return "builtin:" + d.Profile, &auditPolicy{pol: deid.VerifyPolicy(p), desc: "profile " + d.Profile + " (its De-identification Method)"}
		}
	}
	if !d.Tool && !d.Coded {
		return "none", &auditPolicy{desc: "none declared: nothing exempt"}
	}
	p := &rules.Profile{Name: d.Profile, Options: d.Options}
	var opts []string
	for o := ps315.Option(0); o < ps315.NumOptions; o++ {
		if d.Options[o] {
			opts = append(opts, o.Key())
		}
	}
	desc := "options of its De-identification Method Code Sequence"
	if len(opts) > 0 {
		desc += " (" + strings.Join(opts, ", ") + ")"
	}
	if d.Tool {
		desc = "profile " + d.Profile + " is not built in: " + desc + "; its rules are not known (give --profile FILE)"
	}
	return "options:" + d.Profile + ":" + strings.Join(opts, ","), &auditPolicy{pol: deid.VerifyPolicy(p), desc: desc}
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
	return f, parsedFile{f, fh}, nil
}

// parsedFile closes a parsed file: its scratch file (a deflated dataset,
// inflated) and the file itself.
type parsedFile struct {
	f  *dicomraw.File
	fh *os.File
}

func (p parsedFile) Close() error {
	p.f.Close()
	return p.fh.Close()
}

// printAudit writes the table a privacy officer reads: what the
// exemptions were read from, how files were paired (and what a partial
// pairing means), one line per leaking file and attribute, then the
// totals, the verdict and whether pixels were examined, on one line.
func printAudit(w io.Writer, rep *AuditReport, haveKey bool) {
	fmt.Fprintf(w, "originals: %d read (%d unreadable), %d identifying values looked for\n",
		rep.Originals, rep.OriginalsSkip, rep.Values)
	descs := make([]string, 0, len(rep.Profiles))
	for d := range rep.Profiles {
		descs = append(descs, d)
	}
	sort.Strings(descs)
	for _, d := range descs {
		fmt.Fprintf(w, "kept on purpose: %s: %d files\n", d, rep.Profiles[d])
	}
	readable := rep.Paired + rep.Unpaired
	var by []string
	for _, m := range []string{pairedSOP, pairedKey, pairedPixels, pairedHeader} {
		if n := rep.PairedBy[m]; n > 0 {
			by = append(by, fmt.Sprintf("%s %d", m, n))
		}
	}
	how := ""
	if len(by) > 0 {
		how = " (" + strings.Join(by, ", ") + ")"
	}
	fmt.Fprintf(w, "pairing: %d of %d paired with their original%s\n", rep.Paired, readable, how)
	if rep.Unpaired > 0 {
		fmt.Fprintf(w, "pairing was partial: the %d others were checked against the values of every original, another patient's included, so a finding in them may be a coincidence rather than a leak", rep.Unpaired)
		if !haveKey {
			fmt.Fprint(w, "; give the project key (--key-file FILE or DEID_KEY) to pair deid's outputs by UID")
		}
		fmt.Fprintln(w)
	}
	var rows []string
	for _, f := range rep.Files {
		switch f.Status {
		case "leaking":
			for _, fd := range f.Findings {
				rows = append(rows, strings.Join([]string{f.File, fd.Path, string(fd.Kind), fd.Source}, "\t"))
			}
			for _, pf := range f.PixelFindings {
				rows = append(rows, strings.Join([]string{f.File, "(pixels)", "burned-in text", pf}, "\t"))
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
	pixels := "pixels not examined (no OCR: " + rep.OCR + ")"
	switch {
	case rep.PixelsAudited > 0 && rep.PixelsNotAudited == 0:
		pixels = fmt.Sprintf("pixels examined in all %d files", rep.PixelsAudited)
	case rep.PixelsAudited > 0:
		pixels = fmt.Sprintf("pixels examined in %d files, not in %d (no pixel data, or not decodable or readable here: see the JSON report)", rep.PixelsAudited, rep.PixelsNotAudited)
	case rep.PixelsNotAudited > 0 && rep.OCR != "" && !strings.HasPrefix(rep.OCR, "none"):
		pixels = "pixels not examined (no file had readable pixel data)"
	}
	verdict := "PASS: no identifying value of the originals found"
	if rep.Leaking > 0 || rep.Unverifiable > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "anonymised: %d checked (%d paired with their original), %d leaking, %d unverifiable; %s. %s\n",
		rep.Checked, rep.Paired, rep.Leaking, rep.Unverifiable, pixels, verdict)
}

// auditOut is where `deid verify --json` writes, and what it must not
// replace: the audit names the originals' files, so it stays out of both
// trees, and never replaces the key, a profile or a credentials file.
type auditOut struct {
	path, orig, anon, keyFile, profile string
	force                              bool
}

func (a auditOut) options() safefile.Options {
	o := safefile.Options{Replace: a.force, Protect: []safefile.Protected{{Path: a.keyFile, What: "project key file (--key-file)"}}}
	if st, err := os.Stat(a.profile); err == nil && st.Mode().IsRegular() {
		o.Protect = append(o.Protect, safefile.Protected{Path: a.profile, What: "profile file (--profile)"})
	}
	return o
}

func (a auditOut) check() error {
	if a.path == "" {
		return nil
	}
	rp, err := resolvePath(a.path)
	if err != nil {
		return err
	}
	for _, d := range []struct{ dir, flag string }{{a.orig, "--orig"}, {a.anon, "--anon"}} {
		rd, err := resolvePath(d.dir)
		if err != nil {
			return err
		}
		if within(rp, rd) {
			return fmt.Errorf("must not be inside %s: the audit names the original files", d.flag)
		}
	}
	return pathlessErr(safefile.Check(a.path, a.options()))
}

// write checks again (the audit took time) and writes v as JSON.
func (a auditOut) write(v any) error {
	if err := a.check(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return pathlessErr(safefile.WriteBytes(a.path, a.options(), append(b, '\n')))
}

// pairSet merges the value sets of an output's paired originals.
func pairSet(pol verify.Policy, sets []*verify.Set, cand []int) *verify.Set {
	pair := verify.NewSet(pol)
	for _, c := range cand {
		pair.Merge(sets[c])
	}
	return pair
}

// identifiersOf are a value set's identifying values as the pixel reader
// looks for them.
func identifiersOf(s *verify.Set) []burnin.Identifier {
	var ids []burnin.Identifier
	for _, v := range s.Values() {
		ids = append(ids, burnin.Identifier{Text: v.Text, Date: v.Kind == verify.KindDate})
	}
	return ids
}
