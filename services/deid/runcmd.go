package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
	"github.com/dicomdeid/dicomdeid/profiles"
)

// runConfig holds the flags of `deid run`.
type runConfig struct {
	in, out, profile, keyFile, report string
	crosswalk                         string // --crosswalk FILE.csv (crosswalk.go)
	workers                           int
	dryRun, progress, noProgress      bool
	maxFileMB                         int64
	limits                            dicomraw.Limits
}

// Report is the JSON report of a run. Input paths are relative to --in and
// may contain identifying text (file names chosen by a hospital), so the
// report belongs on the trusted side, like the inputs.
type Report struct {
	Tool            string          `json:"tool"`
	Edition         string          `json:"standard_edition"`
	Profile         string          `json:"profile"`
	ProfileSource   string          `json:"profile_source"`
	Options         []string        `json:"options"`
	DryRun          bool            `json:"dry_run"`
	Started         time.Time       `json:"started"`
	Finished        time.Time       `json:"finished"`
	Counts          ReportCounts    `json:"counts"`
	Totals          deid.Counts     `json:"totals"`
	Files           []FileOutcome   `json:"files"`
	AttributeReview []AttributeStat `json:"attribute_review,omitempty"`
}

// ReportCounts summarises the outcomes.
type ReportCounts struct {
	Inputs   int `json:"inputs"`
	Written  int `json:"written"`
	Rejected int `json:"rejected"`
	// Quarantined inputs were de-identified, but the verifier found an
	// identifying value left in the output, so nothing was written.
	Quarantined int `json:"quarantined"`
	NotDICOM    int `json:"skipped_not_dicom"`
	Duplicates  int `json:"duplicates"`
}

// FileOutcome is what happened to one input file.
type FileOutcome struct {
	Input       string       `json:"input"`
	Status      string       `json:"status"` // written, rejected, not-dicom, duplicate, planned
	Reason      string       `json:"reason,omitempty"`
	Output      string       `json:"output,omitempty"`
	SOPClassUID string       `json:"sop_class_uid,omitempty"`
	Bytes       int64        `json:"bytes,omitempty"`
	Counts      *deid.Counts `json:"counts,omitempty"`
	// Verification is the verifier's account: how many identifying values
	// of the input it looked for, and what the profile keeps on purpose.
	Verification *FileVerification `json:"verification,omitempty"`
	// ids are the crosswalk rows of a written output (never in the report).
	ids []deid.IDPair
}

// FileVerification is the verifier's account of one written output.
type FileVerification struct {
	Values int                `json:"identifying_values_checked"`
	Exempt []verify.Exemption `json:"exempt,omitempty"`
}

// AttributeStat is one line of the dry-run review: per attribute path, the
// action the profile takes and in how many files.
type AttributeStat struct {
	Path   string `json:"path"`
	Action string `json:"action"`
	Why    string `json:"why"`
	Files  int    `json:"files"`
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	var c runConfig
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.in, "in", "", "input directory (read only; any file names)")
	fs.StringVar(&c.out, "out", "", "output directory for OUT/<StudyUID>/<SeriesUID>/<SOPUID>.dcm")
	fs.StringVar(&c.profile, "profile", "basic", "built-in profile name or profile file")
	fs.StringVar(&c.keyFile, "key-file", "", "project key file (or set DEID_KEY to the hex key)")
	fs.StringVar(&c.report, "report", "", "write a JSON report to this file")
	fs.StringVar(&c.crosswalk, "crosswalk", "", "write id_old,id_new rows (Patient ID, Study/Series/SOP Instance UIDs) to this CSV file (mode 0600; it re-identifies the outputs)")
	fs.IntVar(&c.workers, "workers", runtime.NumCPU(), "files processed in parallel")
	fs.BoolVar(&c.dryRun, "dry-run", false, "write nothing; print per attribute path the action and the number of files")
	fs.BoolVar(&c.noProgress, "no-progress", false, "no progress bar even on a terminal")
	// Hostile-input limits: a file beyond any of them is rejected with the
	// limit it hit, never half-processed.
	def := dicomraw.DefaultLimits()
	fs.Int64Var(&c.maxFileMB, "max-file-mb", def.MaxFileSize>>20, "reject files larger than this many MiB")
	fs.IntVar(&c.limits.MaxDepth, "max-depth", def.MaxDepth, "reject files with sequences nested deeper than this")
	fs.IntVar(&c.limits.MaxElements, "max-elements", def.MaxElements, "reject files with more elements and items than this")
	fs.DurationVar(&c.limits.MaxDuration, "max-time", def.MaxDuration, "reject a file whose de-identification takes longer than this")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "deid run: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if c.in == "" || (c.out == "" && !c.dryRun) {
		fmt.Fprintln(stderr, "deid run: --in and --out are required (--out not with --dry-run)")
		return exitUsage
	}
	if c.workers < 1 {
		fmt.Fprintln(stderr, "deid run: --workers must be at least 1")
		return exitUsage
	}
	c.progress = !c.noProgress && isTerminal(stderr)
	var l profiles.Loader
	prof, err := l.Load(c.profile)
	if err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	key, err := loadKey(c.keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	c.limits.MaxFileSize = c.maxFileMB << 20
	eng, err := deid.New(deid.Config{Profile: prof, Key: key, Limits: c.limits, RecordPaths: c.dryRun})
	defer tuneGC(400, 48<<20)()
	if err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	if err := checkDirs(c.in, c.out, c.report); err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	if err := checkCrosswalk(c); err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	rep, err := runBatch(eng, c, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitRejected
	}
	if c.dryRun {
		printReview(stdout, rep)
	}
	fmt.Fprintf(stdout, "inputs=%d written=%d rejected=%d quarantined=%d not_dicom=%d duplicates=%d\n",
		rep.Counts.Inputs, rep.Counts.Written, rep.Counts.Rejected, rep.Counts.Quarantined, rep.Counts.NotDICOM, rep.Counts.Duplicates)
	if rep.Counts.Rejected+rep.Counts.Quarantined > 0 {
		n := 0
		for i, f := range rep.Files {
			if (f.Status == "rejected" || f.Status == "quarantined") && n < 20 {
				// Input file names may identify patients: name files by position.
				fmt.Fprintf(stderr, "%s input #%d: %s\n", f.Status, i+1, f.Reason)
				n++
			}
		}
		if c.report != "" {
			fmt.Fprintf(stderr, "see %s for the input paths\n", c.report)
		}
	}
	if c.report != "" {
		if err := writeJSON(c.report, rep); err != nil {
			fmt.Fprintln(stderr, "deid run: report:", err)
			return exitRejected
		}
	}
	if c.crosswalk != "" {
		if _, err := writeCrosswalk(c.crosswalk, rep.Files); err != nil {
			fmt.Fprintln(stderr, "deid run: crosswalk:", err)
			return exitRejected
		}
	}
	if rep.Counts.Rejected+rep.Counts.Quarantined > 0 {
		return exitRejected
	}
	return exitOK
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// loadKey reads the project key from a file, or from DEID_KEY.
func loadKey(path string) (pseudonym.Key, error) {
	if path != "" {
		return pseudonym.LoadKeyFile(path)
	}
	if v := os.Getenv("DEID_KEY"); v != "" {
		k, err := pseudonym.ParseKey([]byte(v))
		if err != nil {
			return pseudonym.Key{}, fmt.Errorf("DEID_KEY: %w", err)
		}
		return k, nil
	}
	return pseudonym.Key{}, errors.New("no project key: give --key-file FILE or set DEID_KEY (create one with `deid keygen --out FILE`)")
}

// checkDirs refuses layouts where outputs could land among the inputs, or
// the report (which names the inputs) among the inputs or the outputs.
// Paths are compared with symbolic links resolved, so a link cannot hide an
// overlap.
func checkDirs(in, out, report string) error {
	st, err := os.Stat(in)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("--in %s is not a directory", in)
	}
	ri, err := resolvePath(in)
	if err != nil {
		return fmt.Errorf("--in: %w", err)
	}
	ro := ""
	if out != "" {
		if ro, err = resolvePath(out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		if within(ro, ri) || within(ri, ro) {
			return fmt.Errorf("--out must not be inside --in (or the other way round)")
		}
	}
	if report != "" {
		rr, err := resolvePath(report)
		if err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		if within(rr, ri) {
			return fmt.Errorf("--report must not be inside --in: the input tree is only read")
		}
		if ro != "" && within(rr, ro) {
			return fmt.Errorf("--report must not be inside --out: it names the input files, which may identify patients")
		}
	}
	return nil
}

// resolvePath returns p made absolute, with symbolic links resolved in the
// longest part of it that exists (the rest cannot contain links yet).
func resolvePath(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(a); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(a)
		if parent == a {
			return filepath.Join(a, rest), nil
		}
		rest = filepath.Join(filepath.Base(a), rest)
		a = parent
	}
}

// within reports whether path p is dir or lies under it; both are clean
// absolute paths.
func within(p, dir string) bool {
	sep := string(filepath.Separator)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, sep)+sep)
}

// listInputs returns the regular files under dir, sorted, as relative paths.
// Symbolic links are not followed: they could lead outside the input tree.
// dir itself may be a link (the user named it).
func listInputs(dir string) ([]string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

func runBatch(eng *deid.Engine, c runConfig, stderr io.Writer) (*Report, error) {
	files, err := listInputs(c.in)
	if err != nil {
		return nil, fmt.Errorf("list inputs: %w", err)
	}
	prof := eng.Profile()
	rep := &Report{Tool: version(), Edition: ps315.Edition, Profile: prof.Name, ProfileSource: prof.Source,
		Options: []string{}, DryRun: c.dryRun, Started: time.Now().UTC(), Files: make([]FileOutcome, len(files))}
	for o := ps315.Option(0); o < ps315.NumOptions; o++ {
		if prof.Options[o] {
			rep.Options = append(rep.Options, o.Key())
		}
	}
	var bar *progressbar.ProgressBar
	if c.progress {
		bar = progressbar.NewOptions(len(files), progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("de-identifying"), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionClearOnFinish())
	}
	// Inputs of one SOP Instance (the same instance in two encodings) map to
	// one output. The input listed first wins, whatever the worker timing,
	// so a second run writes the same bytes: a later input never writes
	// over an earlier one, and an earlier one that arrives late overwrites.
	type slot struct {
		mu   sync.Mutex
		best int
	}
	var (
		mu      sync.Mutex
		outputs = map[string]*slot{}
		review  = map[[3]string]int{}
	)
	// Outputs are written in a hidden folder per worker and renamed into
	// place whole: creating files from several workers in one folder
	// contends on that folder (half the rate here, measured with 4
	// writers). What a killed run left there is removed by the next.
	partial := filepath.Join(c.out, ".deid-partial")
	if !c.dryRun {
		if err := os.RemoveAll(partial); err != nil {
			return nil, fmt.Errorf("remove partial outputs: %w", err)
		}
		defer os.RemoveAll(partial)
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < c.workers; w++ {
		wg.Add(1)
		tmpDir := filepath.Join(partial, strconv.Itoa(w))
		go func() {
			defer wg.Done()
			for i := range jobs {
				fo, paths, job, in := processOne(eng, c, files[i])
				var sl *slot
				if fo.Status == "planned-write" {
					mu.Lock()
					sl = outputs[fo.Output]
					if sl == nil {
						sl = &slot{best: i}
						outputs[fo.Output] = sl
					} else if i < sl.best {
						sl.best = i
					}
					mu.Unlock()
					fo.Status = "duplicate"
					sl.mu.Lock()
					mu.Lock()
					best := sl.best
					mu.Unlock()
					if best == i {
						if err := writeOutput(job, c, tmpDir, &fo); err != nil {
							fo.Status, fo.Reason = "rejected", err.Error()
						}
					}
					sl.mu.Unlock()
				}
				if in != nil {
					in.Close()
				}
				mu.Lock()
				rep.Files[i] = fo
				for p, pa := range paths {
					review[[3]string{p, pa.Action, pa.Why}]++
				}
				mu.Unlock()
				if bar != nil {
					bar.Add(1) //nolint:errcheck // display only
				}
			}
		}()
	}
	for i := range files {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if bar != nil {
		bar.Finish() //nolint:errcheck // display only
	}
	for i := range rep.Files {
		f := &rep.Files[i]
		if sl := outputs[f.Output]; sl != nil && f.Output != "" && sl.best != i && (f.Status == "written" || f.Status == "duplicate") {
			f.Status, f.Reason, f.Bytes = "duplicate", fmt.Sprintf("same SOP Instance as input #%d, which was written", sl.best+1), 0
		}
	}
	rep.Finished = time.Now().UTC()
	rep.Counts.Inputs = len(files)
	for _, f := range rep.Files {
		switch f.Status {
		case "written", "planned":
			rep.Counts.Written++
		case "rejected":
			rep.Counts.Rejected++
		case "quarantined":
			rep.Counts.Quarantined++
		case "not-dicom":
			rep.Counts.NotDICOM++
		case "duplicate":
			rep.Counts.Duplicates++
		}
		if f.Counts != nil {
			rep.Totals.Add(f.Counts)
		}
	}
	if c.dryRun {
		for k, n := range review {
			rep.AttributeReview = append(rep.AttributeReview, AttributeStat{Path: k[0], Action: k[1], Why: k[2], Files: n})
		}
		sort.Slice(rep.AttributeReview, func(a, b int) bool {
			x, y := rep.AttributeReview[a], rep.AttributeReview[b]
			if x.Path != y.Path {
				return x.Path < y.Path
			}
			return x.Action < y.Action
		})
	}
	return rep, nil
}

// processOne plans one input. Writing happens after the output path is
// reserved, so two inputs of the same instance never race for one file;
// the caller closes the returned input file.
func processOne(eng *deid.Engine, c runConfig, rel string) (FileOutcome, map[string]deid.PathAction, *deid.Job, *os.File) {
	fo := FileOutcome{Input: rel}
	f, err := os.Open(filepath.Join(c.in, rel))
	if err != nil {
		fo.Status, fo.Reason = "rejected", "cannot open input"
		return fo, nil, nil, nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		fo.Status, fo.Reason = "rejected", "cannot stat input"
		return fo, nil, nil, nil
	}
	job, err := eng.Plan(f, st.Size())
	if err != nil {
		f.Close()
		var rj *deid.Rejection
		if errors.As(err, &rj) && rj.Kind == string(dicomraw.ErrNotDICOM) {
			fo.Status, fo.Reason = "not-dicom", "not a DICOM file"
			return fo, nil, nil, nil
		}
		if errors.As(err, &rj) && rj.Kind == "pixels" {
			// Held back for what its pixels may show, like a residual
			// identifier: quarantined, not malformed.
			fo.Status, fo.Reason = "quarantined", rj.Reason
			return fo, nil, nil, nil
		}
		fo.Status, fo.Reason = "rejected", err.Error()
		return fo, nil, nil, nil
	}
	r := job.Result()
	fo.SOPClassUID = r.SOPClassUID
	counts := r.Counts
	fo.Counts = &counts
	fo.Output = outputPath(r)
	if c.dryRun {
		f.Close()
		fo.Status = "planned"
		return fo, r.Paths, nil, nil
	}
	fo.Status = "planned-write"
	return fo, nil, job, f
}

// outputPath names an output by pseudonymised UIDs only.
func outputPath(r *deid.Result) string {
	study, series := r.StudyUID, r.SeriesUID
	if study == "" {
		study = "no-study"
	}
	if series == "" {
		series = "no-series"
	}
	return filepath.Join(study, series, r.SOPInstanceUID+".dcm")
}

// writeOutput writes a planned job to a temporary file that is checked and
// then renamed, so a reader never sees a partial output.
func writeOutput(job *deid.Job, c runConfig, tmpDir string, fo *FileOutcome) error {
	dst := filepath.Join(c.out, fo.Output)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	tmp, err := os.CreateTemp(tmpDir, "out-*.dcm")
	if err != nil {
		return fmt.Errorf("create output: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Fail closed: the output must parse to its end and pass the verifier
	// before it is published.
	size, v, err := job.WriteVerified(dicomraw.FileDst{File: tmp})
	if v != nil {
		fo.Verification = &FileVerification{Values: v.Values, Exempt: v.Exemptions}
	}
	if err != nil {
		var rej *deid.Rejection
		if errors.As(err, &rej) && (rej.Kind == "residual" || rej.Kind == "pixels") {
			fo.Status, fo.Reason = "quarantined", rej.Reason
			fo.Output = ""
			return nil
		}
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("publish output: %w", err)
	}
	ok = true
	fo.Status, fo.Bytes, fo.ids = "written", size, job.Crosswalk()
	return nil
}

func printReview(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "dry run: profile %s (%s), %d files; no file written\n", rep.Profile, rep.ProfileSource, rep.Counts.Inputs)
	fmt.Fprintf(w, "%-72s %-10s %6s  %s\n", "ATTRIBUTE PATH", "ACTION", "FILES", "WHY")
	for _, a := range rep.AttributeReview {
		fmt.Fprintf(w, "%-72s %-10s %6d  %s\n", a.Path, a.Action, a.Files, a.Why)
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o640)
}

// tuneGC trades a little memory for less collection work: the heap may
// grow percent% between collections (GOGC), but never much past limit (a
// soft limit, so memory stays flat whatever the files). `deid run`
// allocates per file and keeps nothing: 400% and 48 MiB. An explicit GOGC
// or GOMEMLIMIT in the environment wins. The returned func restores what
// was set before: the settings are the process's, and `deid run` called
// in a process doing other work (the service benchmark, tests) must not
// leave that work collecting against a 48 MiB limit.
func tuneGC(percent int, limit int64) (restore func()) {
	restores := []func(){}
	if os.Getenv("GOGC") == "" {
		gc := debug.SetGCPercent(percent)
		restores = append(restores, func() { debug.SetGCPercent(gc) })
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		old := debug.SetMemoryLimit(limit)
		restores = append(restores, func() { debug.SetMemoryLimit(old) })
	}
	return func() {
		for _, r := range restores {
			r()
		}
	}
}
