// Package deid is the de-identification engine: it applies a profile (PS3.15
// Table E.1-1 with its options, plus per-attribute rules) to one DICOM file
// parsed by dicomraw, and writes the result without touching what the
// profile keeps. It knows nothing of where files come from or go to.
package deid

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/budget"
	"github.com/dicomdeid/dicomdeid/pipeline/burnin"
	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
)

// Identity of this implementation, written into the File Meta.
const (
	// ImplementationClassUID is derived once from a random UUID (2.25 root).
	ImplementationClassUID = "2.25.40924834803557629630366606533845879675"
	// ImplementationVersionName is at most 16 characters (SH).
	ImplementationVersionName = "DICOMDEID_0_1"
	// ToolName appears in De-identification Method.
	ToolName = "dicomdeid"
)

// Config configures an Engine.
type Config struct {
	Profile *rules.Profile
	Key     pseudonym.Key
	Limits  dicomraw.Limits
	// RecordPaths fills Result.Paths (every attribute path seen and what
	// was done with it, for dry runs); off, planning skips that work.
	RecordPaths bool
	// PatientLookup, when set, is an honest broker's table of research
	// IDs: the patient's Patient ID and Patient's Name are written as its
	// research ID instead of a keyed pseudonym, and a file whose patient
	// the table lacks is refused (Rejection kind "not-in-lookup").
	PatientLookup PatientLookup
	// Codecs decode compressed pixels to mask (Clean Pixel Data); nil is
	// this build's codec.Default().
	Codecs *codec.Set
	// Memory, when set, is the process's memory budget (shared with the
	// process's other engines): each Plan opens an account of it, which
	// parsing, planning and verification charge and Job.Close ends; a
	// file that would hold more than one file may is refused (Rejection
	// kind "limit"). Set Limits.Scratch too, so that a deflated dataset
	// inflates where the caller keeps its temporary files.
	Memory *budget.Pool
	// OCR reads burned-in text (ocr.Pool); nil: none, and images that
	// must be read are held back (kind pixels) with OCRWhy, which says
	// why there is none ("a build without OCR", "tesseract not found").
	OCR    burnin.Reader
	OCRWhy string
}

// PatientLookup maps a patient (Patient ID, Issuer of Patient ID) to a
// research ID.
type PatientLookup interface {
	ResearchID(patientID, issuer string) (string, bool)
}

// Engine applies one profile with one key. It is safe for concurrent use.
type Engine struct {
	prof      *rules.Profile
	pz        *pseudonym.Pseudonymizer
	lim       dicomraw.Limits
	byTag     map[uint32]rules.Rule
	byPrivate map[privKey]rules.Rule
	method    string
	policy    verify.Policy
	record    bool
	lookup    PatientLookup
	codecs    *codec.Set
	mem       *budget.Pool
	// text reads burned-in text as the profile says (nil: the profile
	// opted out); ocrWhy is why it cannot read, when it cannot.
	text   *burnin.Cleaner
	ocrWhy string
	// matchers: the verifier's compiled needle lists, shared by the files
	// of a series (same patient, study and dates).
	matchers *verify.Cache
	// scratch keeps the buffers of screening CT and MR slices (one
	// decoded frame, the screen's rows) from one file to the next: made
	// afresh, their zeroing and page faults cost as much as the screen.
	scratch sync.Pool
}

type privKey struct {
	group   uint16
	creator string
	element uint8
}

// New builds an engine. It fails without a valid key: no key, no output.
func New(cfg Config) (*Engine, error) {
	if cfg.Profile == nil {
		return nil, errors.New("deid: no profile")
	}
	pz, err := pseudonym.New(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("deid: %w", err)
	}
	p := cfg.Profile
	if p.Options[ps315.RetainLongFullDates] && p.Options[ps315.RetainLongModifiedDates] {
		return nil, errors.New("deid: profile retains both full and modified dates")
	}
	e := &Engine{prof: p, pz: pz, lim: cfg.Limits, byTag: map[uint32]rules.Rule{}, byPrivate: map[privKey]rules.Rule{}}
	for _, r := range p.Rules { // later rules win
		if r.Selector.Private != nil {
			s := r.Selector.Private
			e.byPrivate[privKey{s.Group, normCreator(s.Creator), s.Element}] = r
		} else {
			e.byTag[r.Selector.Tag] = r
		}
	}
	for _, f := range []string{p.Pseudonyms.PatientID, p.Pseudonyms.PatientName, p.Pseudonyms.Other} {
		if _, err := pz.Format(f, "check", "check"); err != nil {
			return nil, fmt.Errorf("deid: profile %s: %w", p.Name, err)
		}
	}
	e.method = methodText(p)
	e.record = cfg.RecordPaths
	e.lookup = cfg.PatientLookup
	e.codecs = cfg.Codecs
	if e.codecs == nil {
		e.codecs = codec.Default()
	}
	e.mem = cfg.Memory
	if !p.Text.Off() {
		mode, ok := burnin.ParseMode(p.Text.EffectiveMode())
		if !ok {
			return nil, fmt.Errorf("deid: profile %s: burned-in text mode %q", p.Name, p.Text.Mode)
		}
		words := append(append([]string(nil), p.Text.Allow...), p.Text.AllowMore...)
		e.text = burnin.New(burnin.Config{Mode: mode, Allow: burnin.NewAllow(words), Reader: cfg.OCR})
		e.ocrWhy = cfg.OCRWhy
		if e.ocrWhy == "" {
			e.ocrWhy = "no OCR configured"
		}
	}
	e.matchers = verify.NewCache(256)
	e.policy = VerifyPolicy(p)
	return e, nil
}

func normCreator(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// Profile returns the engine's profile.
func (e *Engine) Profile() *rules.Profile { return e.prof }

// methodText is the De-identification Method (0012,0063) value: one LO
// value (at most 64 characters) naming the tool, the edition and the options.
func methodText(p *rules.Profile) string {
	s := fmt.Sprintf("%s PS3.15-%s %s", ToolName, ps315.Edition, p.Name)
	if p.Text.Off() {
		// The opt-out shows where every reader of the file looks.
		s += " pixels-not-examined"
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// Rejection is a file the engine refuses to write. Its message never
// contains a value from the file.
type Rejection struct {
	Kind   string // parse, unsupported, missing, limit
	Reason string
}

func (r *Rejection) Error() string { return r.Reason }

// parseRefusal is what a parse error means for the file: a Rejection,
// or, when the file is not the cause (no scratch file, a wait for the
// memory budget that took too long), a plain error the caller may retry.
// what prefixes the reason ("output: ").
func parseRefusal(err error, what string) error {
	var se *dicomraw.ScratchError
	if errors.As(err, &se) || waited(err) {
		return fmt.Errorf("deid: %s%w", what, err)
	}
	var pe *dicomraw.Error
	if errors.As(err, &pe) {
		return &Rejection{Kind: string(pe.Kind), Reason: what + pe.Error()}
	}
	return &Rejection{Kind: "parse", Reason: what + err.Error()}
}

// waited reports the budget's refusal of a file that waited too long for
// its shared part: the load's doing, not the file's.
func waited(err error) bool {
	var ex *budget.ExceededError
	return errors.As(err, &ex) && ex.Wait
}

// budgetRefusal is the refusal of a charge: a Rejection of kind limit,
// or a plain error after a wait (see waited).
func budgetRefusal(err error) error {
	if waited(err) {
		return fmt.Errorf("deid: %w", err)
	}
	return &Rejection{Kind: "limit", Reason: err.Error()}
}

func reject(kind, format string, args ...any) error {
	return &Rejection{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Plan parses src and decides the output. Nothing is written; the returned
// Job knows the output identifiers and writes with WriteTo. Close the Job
// when done with it: it gives back its memory budget and its scratch
// file (a deflated input's inflated dataset).
func (e *Engine) Plan(src io.ReaderAt, size int64) (*Job, error) {
	// One deadline (Limits.MaxDuration) covers parsing and planning.
	maxDur := e.lim.MaxDuration
	if maxDur <= 0 {
		maxDur = dicomraw.DefaultLimits().MaxDuration
	}
	deadline := time.Now().Add(maxDur)
	lim := e.lim
	var acct *budget.Account
	if e.mem != nil {
		acct = e.mem.Account()
		lim.Budget = acct
	}
	f, err := dicomraw.Parse(src, size, lim)
	if err != nil {
		acct.Close()
		return nil, parseRefusal(err, "")
	}
	j := &Job{eng: e, f: f, res: &Result{TransferSyntax: f.Syntax.UID, Paths: map[string]PathAction{}}, deadline: deadline,
		acct: acct, lim: lim}
	if err := j.run(); err != nil {
		j.Close()
		return nil, err
	}
	if j.late {
		j.Close()
		return nil, reject("limit", "de-identification took longer than the limit of %s", maxDur)
	}
	return j, nil
}

// Close gives back what the job holds: its share of the memory budget and
// the scratch file of a deflated input. The job cannot be written after.
// Close can be called more than once.
func (j *Job) Close() error {
	if j.scratch != nil {
		j.eng.putScratch(j.scratch)
		j.scratch = nil
	}
	j.acct.Close()
	return j.f.Close()
}

// charge charges the job's memory account for n bytes at once (a large
// buffer the job will need); a refusal refuses the file.
func (j *Job) charge(n int64) error {
	if j.acct == nil {
		return nil
	}
	if err := j.acct.Charge(n); err != nil {
		return budgetRefusal(err)
	}
	return nil
}

// hold charges the job's memory account for n bytes the plan holds, a
// step at a time; a refusal stops the walk and refuses the file.
func (j *Job) hold(n int) {
	if j.acct == nil || j.refusal != nil {
		return
	}
	j.held += int64(n)
	if j.held < 64<<10 {
		return
	}
	if err := j.acct.Charge(j.held); err != nil {
		j.refusal = budgetRefusal(err)
	}
	j.held = 0
}

// overtime reports, looking at the clock every few thousand calls, that
// the job's deadline has passed; the dataset walk then stops and Plan
// refuses the file.
func (j *Job) overtime() bool {
	if j.late || j.refusal != nil {
		return true
	}
	j.ticks++
	if j.ticks%1024 == 0 && time.Now().After(j.deadline) {
		j.late = true
	}
	return j.late
}

// Job is one planned file.
type Job struct {
	eng *Engine
	f   *dicomraw.File
	res *Result

	patientID      string // top-level Patient ID as stored (trimmed)
	researchID     string // the patient's ID in the engine's lookup table, if it has one
	shiftKey       string
	shift          int
	shifted        bool
	needles        []needle
	needleSeen     map[string]bool            // the needles' texts, to add each once
	collected      bool                       // needles gathered (on the first text to clean)
	vset           *verify.Set                // the verifier's values of the input (with matcher)
	matcher        *verify.Matcher            // vset compiled, once asked for
	pixelsMasked   bool                       // Clean Pixel Data masked the pixels
	pixelsExamined bool                       // the pixels were read for burned-in text (and passed the check)
	outSyntax      string                     // transfer syntax of the output, when not the input's
	top            scope                      // the dataset's scope, for collecting
	products       map[string]bool            // the input's product names (verify.ProductNames), once asked for
	ruleKept       map[*dicomraw.Element]bool // kept by an explicit keep rule of the profile
	animal         bool                       // the patient is an animal (Patient Species present)
	meta           []dicomraw.MetaElement

	deadline time.Time // Limits.MaxDuration after Plan started
	ticks    int
	late     bool  // the deadline passed during the walk: the plan is void
	refusal  error // a reason found during the walk to refuse the whole file

	// scratch is the screen's frame the job's body serves its Pixel Data
	// from (heldReader), given back to the engine at Close.
	scratch *screening

	acct *budget.Account // the file's memory budget (nil: none)
	held int64           // held by the plan, not charged yet
	lim  dicomraw.Limits // the engine's, charging acct
}

// Result describes a planned (and then written) file. It carries
// pseudonymised identifiers only.
type Result struct {
	SOPClassUID    string `json:"sop_class_uid"`
	StudyUID       string `json:"study_uid"`
	SeriesUID      string `json:"series_uid"`
	SOPInstanceUID string `json:"sop_instance_uid"`
	TransferSyntax string `json:"transfer_syntax"`
	Counts         Counts `json:"counts"`
	// Pixels is what was done to the pixels for burned-in text (nil: the
	// file has no pixel data).
	Pixels *PixelReport `json:"pixels,omitempty"`
	// Name is the output's relative name, <study>/<series>/<sop>.dcm
	// (slash-separated) by the UIDs above; NameHashed says that one of
	// them is not a valid UID (an input's own, kept by Retain UIDs) and is
	// named by a keyed hash instead. Sinks use Name as it is: it never
	// leaves the folder or prefix it is joined to.
	Name       string `json:"-"`
	NameHashed bool   `json:"-"`
	// Paths maps each attribute path seen (never a value) to what was
	// done, when the engine records paths (Config.RecordPaths).
	Paths map[string]PathAction `json:"-"`
}

// PathAction is the action taken on an attribute path, and why.
type PathAction struct {
	Action string `json:"action"`
	Why    string `json:"why"`
}

// Counts are per-file tallies for the report.
type Counts struct {
	Elements             int `json:"elements"`
	Kept                 int `json:"kept"`
	Removed              int `json:"removed"`
	Emptied              int `json:"emptied"`
	Dummied              int `json:"dummied"`
	Cleaned              int `json:"cleaned"`
	Pseudonymised        int `json:"pseudonymised"`
	UIDsMapped           int `json:"uids_mapped"`
	NonTableUIDsMapped   int `json:"non_table_uids_mapped"`
	DatesShifted         int `json:"dates_shifted"`
	UnknownPublicRemoved int `json:"unknown_public_removed"`
	PrivateRemoved       int `json:"private_removed"`
	PrivateKept          int `json:"private_kept"`
	GroupLengthsDropped  int `json:"group_lengths_dropped"`
	OverlayGroupsRemoved int `json:"overlay_groups_removed"`
	UnreadableRemoved    int `json:"unreadable_removed"`
	VRMismatchRemoved    int `json:"vr_mismatch_removed"`
	ContentItemsRemoved  int `json:"content_items_removed"`
	TextRedactions       int `json:"text_redactions"`
	ReplacedUnencodable  int `json:"replaced_unencodable"`
	// UncleanableEmptied counts texts to clean that the verifier would
	// still refuse once cleaned (an identifying value's bytes that the
	// text's character set does not read as that value): emptied instead.
	UncleanableEmptied int `json:"uncleanable_emptied"`
	// A value the profile keeps (an attribute outside Table E.1-1, or one
	// an option keeps) that holds an identifying value of the file, as the
	// verifier would find it: KeptCleaned had that value cut out of its
	// text, KeptEmptied was emptied (not text, or not cleanable, and its
	// type allows an empty value), KeptRemoved was removed (a private
	// attribute), KeptHeldBack could be none of these (a Type 1
	// attribute): the file is quarantined.
	KeptCleaned  int `json:"kept_cleaned"`
	KeptEmptied  int `json:"kept_emptied"`
	KeptRemoved  int `json:"kept_removed"`
	KeptHeldBack int `json:"kept_held_back"`
}

// Add adds o's tallies to c (a report's totals).
func (c *Counts) Add(o *Counts) {
	c.Elements += o.Elements
	c.Kept += o.Kept
	c.Removed += o.Removed
	c.Emptied += o.Emptied
	c.Dummied += o.Dummied
	c.Cleaned += o.Cleaned
	c.Pseudonymised += o.Pseudonymised
	c.UIDsMapped += o.UIDsMapped
	c.NonTableUIDsMapped += o.NonTableUIDsMapped
	c.DatesShifted += o.DatesShifted
	c.UnknownPublicRemoved += o.UnknownPublicRemoved
	c.PrivateRemoved += o.PrivateRemoved
	c.PrivateKept += o.PrivateKept
	c.GroupLengthsDropped += o.GroupLengthsDropped
	c.OverlayGroupsRemoved += o.OverlayGroupsRemoved
	c.UnreadableRemoved += o.UnreadableRemoved
	c.VRMismatchRemoved += o.VRMismatchRemoved
	c.ContentItemsRemoved += o.ContentItemsRemoved
	c.TextRedactions += o.TextRedactions
	c.ReplacedUnencodable += o.ReplacedUnencodable
	c.UncleanableEmptied += o.UncleanableEmptied
	c.KeptCleaned += o.KeptCleaned
	c.KeptEmptied += o.KeptEmptied
	c.KeptRemoved += o.KeptRemoved
	c.KeptHeldBack += o.KeptHeldBack
}

// Result returns what the job will write.
func (j *Job) Result() *Result { return j.res }

// WriteTo writes the de-identified file to w and reports the bytes written
// (io.WriterTo). Pixel data and other kept values are copied from the source
// in bounded chunks, never loaded whole.
func (j *Job) WriteTo(w io.Writer) (int64, error) {
	if fd, ok := w.(dicomraw.FileDst); ok {
		// A file: Pixel Data goes from file to file in the kernel; the
		// size is where the file position ends up.
		start, err := fd.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, err
		}
		err = dicomraw.Write(fd, j.f, j.meta)
		end, serr := fd.Seek(0, io.SeekCurrent)
		if err == nil {
			err = serr
		}
		return end - start, err
	}
	cw := &countingWriter{w: w}
	err := dicomraw.Write(cw, j.f, j.meta)
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
