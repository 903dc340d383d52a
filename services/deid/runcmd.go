package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/safefile"
	"io"
	"io/fs"
	"math"
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

	"github.com/dicomdeid/dicomdeid/pipeline/budget"
	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
	"github.com/dicomdeid/dicomdeid/profiles"
)

// runConfig holds the flags of `deid run`.
type runConfig struct {
	in, out, profile, keyFile, report, tmp string
	crosswalk                              string // --crosswalk FILE.csv (crosswalk.go)
	workers                                int
	dryRun, progress, noProgress, force    bool
	maxFileMB, maxInflatedMB, maxMemoryMB  int64
	limits                                 dicomraw.Limits
}

// Report is the JSON report of a run. Input paths are relative to --in and
// may contain identifying text (file names chosen by a hospital), so the
// report belongs on the trusted side, like the inputs.
type Report struct {
	Tool          string       `json:"tool"`
	Edition       string       `json:"standard_edition"`
	Profile       string       `json:"profile"`
	ProfileSource string       `json:"profile_source"`
	Options       []string     `json:"options"`
	DryRun        bool         `json:"dry_run"`
	Started       time.Time    `json:"started"`
	Finished      time.Time    `json:"finished"`
	Counts        ReportCounts `json:"counts"`
	Totals        deid.Counts  `json:"totals"`
	// BurnedInText sums up the files' pixel reports.
	BurnedInText    PixelTotals     `json:"burned_in_text"`
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
	// NamedByHash outputs have a UID that is not a valid UID (kept by
	// Retain UIDs) and are named by a keyed hash of it instead.
	NamedByHash int `json:"outputs_named_by_hash"`
}

// PixelTotals sums up what was done for burned-in text in a run.
type PixelTotals struct {
	Mode string `json:"mode"` // the profile's: identifying, all-but-allowed, all, off
	OCR  string `json:"ocr"`  // the OCR used, or why there was none
	// Images with pixel data: examined (the stroke test or OCR), of them
	// read by OCR, of them masked; not examined (and why: the profile
	// opted out, float pixel data, nothing to display).
	Examined    int `json:"examined"`
	Read        int `json:"read"`
	Masked      int `json:"masked"`
	NotExamined int `json:"not_examined"`
	// ByModality is the same per Modality (images of a Modality that is
	// not a plain code count under "other"), with the time spent.
	ByModality map[string]*ModalityPixels `json:"by_modality,omitempty"`
}

// ModalityPixels is the pixel examination of one modality's images in a
// run: how many, how many examined and read, and the milliseconds spent
// per examined frame.
type ModalityPixels struct {
	Images     int     `json:"images"`
	Examined   int     `json:"examined"`
	Read       int     `json:"read"`
	Frames     int     `json:"frames_examined"`
	MS         float64 `json:"ms"`
	MSPerFrame float64 `json:"ms_per_frame"`
}

// add counts one image's pixel report.
func (t *PixelTotals) add(px *deid.PixelReport) {
	switch {
	case !px.Examined:
		t.NotExamined++
	case px.Masked:
		t.Masked++
		fallthrough
	default:
		t.Examined++
		if px.Read {
			t.Read++
		}
	}
	mod := px.Modality
	if mod == "" {
		mod = "other"
	}
	if t.ByModality == nil {
		t.ByModality = map[string]*ModalityPixels{}
	}
	m := t.ByModality[mod]
	if m == nil {
		m = &ModalityPixels{}
		t.ByModality[mod] = m
	}
	m.Images++
	if px.Examined {
		m.Examined++
		m.Frames += px.FramesTotal
		m.MS += px.DurationMS
		if px.Read {
			m.Read++
		}
		if m.Frames > 0 {
			m.MSPerFrame = math.Round(1000*m.MS/float64(m.Frames)) / 1000
		}
	}
}

// FileOutcome is what happened to one input file.
type FileOutcome struct {
	Input  string `json:"input"`
	Status string `json:"status"` // written, rejected, not-dicom, duplicate, planned
	Reason string `json:"reason,omitempty"`
	Output string `json:"output,omitempty"`
	// OutputHashed: a UID of the output is not a valid UID, and Output
	// names it by a keyed hash (hashed-...) instead.
	OutputHashed bool         `json:"output_named_by_hash,omitempty"`
	SOPClassUID  string       `json:"sop_class_uid,omitempty"`
	Bytes        int64        `json:"bytes,omitempty"`
	Counts       *deid.Counts `json:"counts,omitempty"`
	// Verification is the verifier's account: how many identifying values
	// of the input it looked for, and what the profile keeps on purpose.
	Verification *FileVerification `json:"verification,omitempty"`
	// Pixels is what was done for burned-in text: examined or not (and
	// why), read by OCR, masked; counts, never text.
	Pixels *deid.PixelReport `json:"pixels,omitempty"`
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
	fs.StringVar(&c.report, "report", "", "write a JSON report to this file (mode 0600; never the key file, nor inside --in or --out)")
	fs.StringVar(&c.crosswalk, "crosswalk", "", "write id_old,id_new rows (Patient ID, Study/Series/SOP Instance UIDs) to this CSV file (mode 0600; it re-identifies the outputs; never a link, the key file, the report, nor inside --in or --out)")
	fs.BoolVar(&c.force, "force", false, "let --report and --crosswalk replace an existing file")
	fs.StringVar(&c.tmp, "tmp", "", "folder for the scratch files of deflated inputs (default: a hidden folder in --out)")
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
	fs.Int64Var(&c.maxInflatedMB, "max-inflated-mb", def.MaxInflated>>20, "reject a deflated file whose dataset inflates past this many MiB")
	fs.IntVar(&c.limits.MaxInflateRatio, "max-inflate-ratio", def.MaxInflateRatio, "reject a deflated file that inflates (past 8 MiB) to more than this many times its size (0: no ratio limit)")
	fs.Int64Var(&c.maxMemoryMB, "max-memory", 0, "MiB of memory the files in flight may hold together (0: 32 per worker, at least 128); half is shared, so one file may hold half of it")
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
	if c.maxMemoryMB < 0 || c.maxInflatedMB < 0 || c.limits.MaxInflateRatio < 0 {
		fmt.Fprintln(stderr, "deid run: --max-memory, --max-inflated-mb and --max-inflate-ratio must not be negative")
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
	c.limits.MaxInflated = c.maxInflatedMB << 20
	if c.limits.MaxInflateRatio == 0 {
		c.limits.MaxInflateRatio = -1 // no ratio limit (0 is the library's default)
	}
	if err := checkCrosswalk(c); err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	if err := checkDirs(c); err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	// Scratch files (a deflated input's dataset, inflated) go to --tmp,
	// or to the hidden folder of partial outputs in --out; they are
	// removed from the folder as soon as they are created.
	scratch := c.tmp
	switch {
	case scratch == "" && c.out != "" && !c.dryRun:
		scratch = filepath.Join(c.out, partialDir, "scratch")
	case scratch == "":
		scratch = os.TempDir()
	}
	c.limits.Scratch = func() (dicomraw.Scratch, error) {
		if err := os.MkdirAll(scratch, 0o700); err != nil {
			return nil, err
		}
		return dicomraw.TempScratch(scratch)
	}
	pool := budget.New(budget.Config{Total: c.maxMemoryMB << 20, Workers: c.workers, MaxWait: c.limits.MaxDuration})
	// Opened for the first image that must be read: a batch of CT slices
	// that pass the screen never loads the model.
	text := openTextOCR(c.workers, true)
	defer text.Close()
	eng, err := deid.New(text.engineConfig(deid.Config{Profile: prof, Key: key, Limits: c.limits, RecordPaths: c.dryRun, Memory: pool}))
	defer tuneGC(400, 48<<20)()
	if err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitUsage
	}
	rep, err := runBatch(eng, c, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "deid run:", err)
		return exitRejected
	}
	rep.BurnedInText.OCR = text.Describe()
	if c.dryRun {
		printReview(stdout, rep)
	}
	fmt.Fprintf(stdout, "inputs=%d written=%d rejected=%d quarantined=%d not_dicom=%d duplicates=%d\n",
		rep.Counts.Inputs, rep.Counts.Written, rep.Counts.Rejected, rep.Counts.Quarantined, rep.Counts.NotDICOM, rep.Counts.Duplicates)
	if n := rep.Counts.NamedByHash; n > 0 {
		fmt.Fprintf(stderr, "outputs named by a keyed hash, a UID of theirs not being a valid UID: %d (output_named_by_hash in the report)\n", n)
	}
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
		if err := writeReport(c, rep); err != nil {
			fmt.Fprintln(stderr, "deid run: report:", err)
			return exitRejected
		}
	}
	if c.crosswalk != "" {
		if _, err := writeCrosswalk(c, rep.Files); err != nil {
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
// the report (which names the inputs) among the inputs or the outputs, or
// over a file the run reads (the project key, the profile), or over an
// existing file without --force. Paths are compared with symbolic links
// resolved, a dangling link at the place it would create, so a link
// cannot hide an overlap.
func checkDirs(c runConfig) error {
	st, err := os.Stat(c.in)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("--in %s is not a directory", c.in)
	}
	ri, err := resolvePath(c.in)
	if err != nil {
		return fmt.Errorf("--in: %w", err)
	}
	ro := ""
	if c.out != "" {
		if ro, err = resolvePath(c.out); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		if within(ro, ri) || within(ri, ro) {
			return fmt.Errorf("--out must not be inside --in (or the other way round)")
		}
	}
	if c.tmp != "" {
		rt, err := resolvePath(c.tmp)
		if err != nil {
			return fmt.Errorf("--tmp: %w", err)
		}
		if within(rt, ri) {
			return fmt.Errorf("--tmp must not be inside --in: the input tree is only read")
		}
	}
	if c.report == "" {
		return nil
	}
	rr, err := resolvePath(c.report)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	if within(rr, ri) {
		return fmt.Errorf("--report must not be inside --in: the input tree is only read")
	}
	if ro != "" && within(rr, ro) {
		return fmt.Errorf("--report must not be inside --out: it names the input files, which may identify patients")
	}
	for _, p := range readFiles(c) {
		if rp, err := resolvePath(p.path); err == nil && rp == rr || safefile.SameFile(p.path, rr) {
			return fmt.Errorf("--report must not be the %s", p.what)
		}
	}
	if _, err := os.Lstat(c.report); err == nil && !c.force {
		return fmt.Errorf("--report %s exists; give --force to replace it", c.report)
	}
	if st, err := os.Stat(rr); err == nil && !st.Mode().IsRegular() {
		return fmt.Errorf("--report must be a regular file")
	}
	return nil
}

// readFile is a file the run reads, which no output may replace.
type readFile struct{ path, what string }

// readFiles are the files the run reads besides its inputs: the project
// key and a profile given as a file.
func readFiles(c runConfig) []readFile {
	var fs []readFile
	if c.keyFile != "" {
		fs = append(fs, readFile{c.keyFile, "project key file (--key-file)"})
	}
	if st, err := os.Stat(c.profile); err == nil && st.Mode().IsRegular() {
		fs = append(fs, readFile{c.profile, "profile file (--profile)"})
	}
	return fs
}

// resolvePath returns p made absolute, with symbolic links resolved in the
// longest part of it that exists (the rest cannot contain links yet). A
// dangling link resolves to where its target would be: writing through
// it creates that file.
func resolvePath(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	for hops := 0; ; hops++ {
		fi, err := os.Lstat(a)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		if hops == 40 {
			return "", fmt.Errorf("too many levels of symbolic links")
		}
		target, err := os.Readlink(a)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(a), target)
		}
		a = filepath.Clean(target)
		if _, err := os.Stat(a); err == nil {
			break // the target exists: EvalSymlinks resolves the rest
		}
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
	// Everything in --out is reached through an os.Root: no name, and no
	// symbolic link met on the way (one planted in --out), leads outside.
	var out *outTree
	if !c.dryRun {
		if err := os.MkdirAll(c.out, 0o750); err != nil {
			return nil, fmt.Errorf("create --out: %w", err)
		}
		root, err := os.OpenRoot(c.out)
		if err != nil {
			return nil, fmt.Errorf("open --out: %w", err)
		}
		defer root.Close()
		if err := root.RemoveAll(partialDir); err != nil {
			return nil, fmt.Errorf("remove partial outputs: %w", err)
		}
		defer root.RemoveAll(partialDir)
		out = &outTree{root: root, made: map[string]bool{}}
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < c.workers; w++ {
		wg.Add(1)
		tmpDir := filepath.Join(partialDir, strconv.Itoa(w))
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
						if err := writeOutput(job, out, filepath.Join(tmpDir, fmt.Sprintf("out-%d.dcm", i)), &fo); err != nil {
							fo.Status, fo.Reason = "rejected", err.Error()
						}
					}
					sl.mu.Unlock()
				}
				if job != nil {
					job.Close()
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
		if f.OutputHashed && (f.Status == "written" || f.Status == "planned") {
			rep.Counts.NamedByHash++
		}
		if f.Counts != nil {
			rep.Totals.Add(f.Counts)
		}
		if px := f.Pixels; px != nil && (f.Status == "written" || f.Status == "planned") {
			rep.BurnedInText.add(px)
		}
	}
	rep.BurnedInText.Mode = eng.Profile().Text.EffectiveMode()
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
	fo.Pixels = r.Pixels
	fo.Output, fo.OutputHashed = filepath.FromSlash(r.Name), r.NameHashed
	if c.dryRun {
		job.Close()
		f.Close()
		fo.Status = "planned"
		return fo, r.Paths, nil, nil
	}
	fo.Status = "planned-write"
	return fo, nil, job, f
}

// partialDir is the hidden folder in --out where outputs are written
// before they are renamed into place.
const partialDir = ".deid-partial"

// outTree is --out, reached only through an os.Root: no name, and no
// symbolic link met on the way (one planted in --out), leads outside it.
type outTree struct {
	root *os.Root
	mu   sync.Mutex
	made map[string]bool // folders made (or found) in this run
}

// mkdirAll makes a folder of the tree, once per run: the series of a
// study share theirs, and asking the root again costs a system call per
// path component per file.
func (o *outTree) mkdirAll(dir string, perm os.FileMode) error {
	o.mu.Lock()
	done := o.made[dir]
	o.mu.Unlock()
	if done {
		return nil
	}
	if err := o.root.MkdirAll(dir, perm); err != nil {
		return err
	}
	o.mu.Lock()
	o.made[dir] = true
	o.mu.Unlock()
	return nil
}

// writeOutput writes a planned job to a temporary file in --out (tmpRel,
// relative to it) that is checked and then renamed, so a reader never
// sees a partial output. The output's name is the engine's (valid UIDs,
// or keyed hashes); it is checked to stay inside --out, and the root
// refuses any step out of it, through a symbolic link too (a folder
// replaced by a link after mkdirAll made it is caught by Rename).
func writeOutput(job *deid.Job, out *outTree, tmpRel string, fo *FileOutcome) error {
	root := out.root
	dst := fo.Output
	if !filepath.IsLocal(dst) || filepath.Clean(dst) != dst {
		return fmt.Errorf("output name leaves --out: not written")
	}
	if err := out.mkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("create output directory: %w", errInOut(err))
	}
	if err := out.mkdirAll(filepath.Dir(tmpRel), 0o700); err != nil {
		return fmt.Errorf("create output directory: %w", errInOut(err))
	}
	tmp, err := root.OpenFile(tmpRel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create output: %w", errInOut(err))
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			root.Remove(tmpRel)
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
			fo.Output, fo.OutputHashed = "", false
			return nil
		}
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if err := root.Rename(tmpRel, dst); err != nil {
		return fmt.Errorf("publish output: %w", errInOut(err))
	}
	ok = true
	fo.Status, fo.Bytes, fo.ids = "written", size, job.Crosswalk()
	return nil
}

// errInOut is an error of a file operation in --out without the path it
// names (output names are pseudonymised, but the error may name the
// folder a symbolic link leads to).
func errInOut(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}

func printReview(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "dry run: profile %s (%s), %d files; no file written\n", rep.Profile, rep.ProfileSource, rep.Counts.Inputs)
	fmt.Fprintf(w, "%-72s %-10s %6s  %s\n", "ATTRIBUTE PATH", "ACTION", "FILES", "WHY")
	for _, a := range rep.AttributeReview {
		fmt.Fprintf(w, "%-72s %-10s %6d  %s\n", a.Path, a.Action, a.Files, a.Why)
	}
}

// writeReport writes the run's report, mode 0600 (it names the inputs,
// which may identify patients). The checks of checkDirs are made again
// where the file is written: a file that appeared since is not replaced
// without --force, and with --force the report replaces the file whole
// (written beside it and renamed) rather than writing into it.
func writeReport(c runConfig, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := checkDirs(c); err != nil {
		return err
	}
	path, err := resolvePath(c.report)
	if err != nil {
		return err
	}
	if !c.force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".deid-report-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
