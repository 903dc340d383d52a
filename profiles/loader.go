// Package profiles reads de-identification profiles: YAML files that pick
// PS3.15 Annex E options, add per-attribute rules and set pseudonym
// formats, on top of the Basic Application Level Confidentiality Profile.
// A profile may extend a built-in profile or another file; the Loader
// resolves the chain into one rules.Profile for the engine.
//
// Built-in profiles are the *.yaml files of this directory, embedded in
// the binary: basic, research and example-custom (a commented template for
// writing your own, which documents every key of the file format).
//
// The format in brief: name (required), description, extends (a built-in
// name, or a .yaml/.yml path relative to the extending file), options (PS3.15
// option key: true/false), date_shift {min_days, max_days}, pseudonyms
// {patient_id, patient_name, other} and rules, a list of {tag | private,
// action, value}. Unknown keys are errors, and every problem of a file is
// reported at once with its line and column (see Error).
package profiles

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"gopkg.in/yaml.v3"
)

// builtinFS holds the built-in profiles. It is read-only: go:embed needs a
// package-level variable, and nothing can modify an embed.FS.
//
//go:embed *.yaml
var builtinFS embed.FS

// DefaultMaxDepth is how many extends steps a chain may take when
// Loader.MaxDepth is 0. Real profiles need two or three; the limit keeps a
// runaway chain of generated files from going unnoticed.
const DefaultMaxDepth = 8

// maxFileSize bounds a profile file; a larger one is not a profile.
const maxFileSize = 1 << 20

// Loader loads profiles. The zero value reads files from the operating
// system and allows DefaultMaxDepth extends steps. A Loader keeps no state
// between calls, so one may be shared by goroutines.
type Loader struct {
	// ReadFile reads a profile file given its absolute path. Nil means
	// os.ReadFile; a service may supply its own to keep profiles elsewhere.
	ReadFile func(name string) ([]byte, error)
	// MaxDepth is the longest extends chain allowed (steps, not files);
	// 0 means DefaultMaxDepth.
	MaxDepth int
}

// ref names one profile file: a built-in or a file on disk.
type ref struct {
	builtin bool
	name    string // built-in name
	path    string // absolute path of a file
	display string // as named to the user, in messages
}

// key identifies the file across an extends chain; it is also the
// Profile.Source and Rule.Source of what the file defines.
func (r ref) key() string {
	if r.builtin {
		return "builtin:" + r.name
	}
	return r.path
}

func builtinRef(name string) ref {
	return ref{builtin: true, name: name, display: name + ".yaml"}
}

func fileRef(p string) (ref, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return ref{}, err
	}
	return ref{path: abs, display: filepath.Clean(p)}, nil
}

// isPath tells a file path from a built-in name: a path has a directory
// separator or a .yaml/.yml extension, which no built-in name has.
func isPath(s string) bool {
	ext := strings.ToLower(path.Ext(s))
	return strings.ContainsRune(s, '/') || strings.ContainsRune(s, filepath.Separator) || ext == ".yaml" || ext == ".yml"
}

// Builtin returns the names of the built-in profiles, sorted.
func (l *Loader) Builtin() []string {
	return builtinNames()
}

func builtinNames() []string {
	files, _ := fs.Glob(builtinFS, "*.yaml") // the pattern is valid
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(f, ".yaml")
	}
	sort.Strings(names)
	return names
}

// BuiltinSource returns the YAML text of a built-in profile, for `deid
// profiles` to print or for a user to copy as a starting point.
func BuiltinSource(name string) ([]byte, bool) {
	if !validName(name) {
		return nil, false
	}
	b, err := builtinFS.ReadFile(name + ".yaml")
	return b, err == nil
}

func isBuiltin(name string) bool {
	_, ok := BuiltinSource(name)
	return ok
}

// Load returns the resolved profile named by nameOrPath: a built-in name
// such as "research", or a path to a .yaml or .yml file. On failure the
// error is an *Error listing every problem found.
func (l *Loader) Load(nameOrPath string) (*rules.Profile, error) {
	if !isPath(nameOrPath) {
		if !isBuiltin(nameOrPath) {
			return nil, &Error{Problems: []Problem{{File: nameOrPath, Msg: fmt.Sprintf(
				"unknown profile: not a built-in (%s) and not a path to a .yaml or .yml file",
				strings.Join(builtinNames(), ", "))}}}
		}
		return l.load(builtinRef(nameOrPath))
	}
	r, err := fileRef(nameOrPath)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: nameOrPath, Msg: err.Error()}}}
	}
	return l.load(r)
}

// Check validates the profile file at path, including the files it
// extends, and returns nil or an *Error listing every problem.
func (l *Loader) Check(path string) error {
	r, err := fileRef(path)
	if err != nil {
		return &Error{Problems: []Problem{{File: path, Msg: err.Error()}}}
	}
	_, err = l.load(r)
	return err
}

func (l *Loader) maxDepth() int {
	if l.MaxDepth > 0 {
		return l.MaxDepth
	}
	return DefaultMaxDepth
}

func (l *Loader) read(r ref) ([]byte, error) {
	if r.builtin {
		b, ok := BuiltinSource(r.name)
		if !ok {
			return nil, fs.ErrNotExist
		}
		return b, nil
	}
	read := l.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	b, err := read(r.path)
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("file is %d bytes, larger than any profile (limit %d)", len(b), maxFileSize)
	}
	return b, nil
}

// readError words a read error without repeating the path, which the
// message already names.
func readError(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "file does not exist"
	case errors.As(err, &pe):
		return pe.Err.Error()
	}
	return err.Error()
}

func (l *Loader) load(top ref) (*rules.Profile, error) {
	c := &collector{}
	chain, complete := l.chain(top, c)
	if len(chain) == 0 {
		return nil, c.err()
	}
	p := merge(chain, complete, c)
	// The nearest file that sets clean_pixel_data decides it whole.
	for _, ly := range chain {
		if ly.pixels != nil {
			p.Pixels = l.pixelPolicy(ly, c)
			break
		}
	}
	p.Text = textPolicy(chain)
	if err := c.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// chain reads top and the files it extends, most derived first. complete
// is false when the chain is broken (unreadable file, cycle, too deep).
func (l *Loader) chain(top ref, c *collector) (chain []*layer, complete bool) {
	cur := top
	for {
		data, err := l.read(cur)
		if err != nil {
			if len(chain) == 0 {
				c.add(cur.display, 0, 0, "cannot read profile: %s", readError(err))
			} else {
				from := chain[len(chain)-1]
				c.at(from.ref.display, from.extendsAt, "extends: cannot read %s: %s", cur.display, readError(err))
			}
			return chain, false
		}
		ly := parseLayer(cur, data, c)
		if ly == nil {
			return chain, false
		}
		chain = append(chain, ly)
		if ly.extendsAt == nil {
			return chain, true
		}
		next, ok := extendsRef(ly, c)
		if !ok {
			return chain, false
		}
		for i, prev := range chain {
			if prev.ref.key() == next.key() {
				names := make([]string, 0, len(chain)-i+1)
				for _, ly := range chain[i:] {
					names = append(names, ly.ref.display)
				}
				names = append(names, next.display)
				c.at(ly.ref.display, ly.extendsAt, "extends: cycle %s", strings.Join(names, " -> "))
				return chain, false
			}
		}
		if len(chain) > l.maxDepth() {
			c.at(ly.ref.display, ly.extendsAt, "extends: chain from %s is longer than %d steps", top.display, l.maxDepth())
			return chain, false
		}
		cur = next
	}
}

// extendsRef resolves "extends:": a built-in name, or a path relative to
// the directory of the extending file.
func extendsRef(ly *layer, c *collector) (ref, bool) {
	s := ly.extends
	if !isPath(s) {
		if !isBuiltin(s) {
			c.at(ly.ref.display, ly.extendsAt, "extends: unknown built-in profile %q (built-ins: %s; give a file as a path ending in .yaml or .yml)",
				s, strings.Join(builtinNames(), ", "))
			return ref{}, false
		}
		return builtinRef(s), true
	}
	if ly.ref.builtin {
		// Built-ins must not depend on the working directory.
		c.at(ly.ref.display, ly.extendsAt, "extends: a built-in profile can only extend built-ins")
		return ref{}, false
	}
	if filepath.IsAbs(s) {
		return ref{path: filepath.Clean(s), display: filepath.Clean(s)}, true
	}
	return ref{
		path:    filepath.Join(filepath.Dir(ly.ref.path), s),
		display: filepath.Join(filepath.Dir(ly.ref.display), s),
	}, true
}

// where is a position in a file, for problems found after merging.
type where struct {
	file string
	at   *yaml.Node
	seq  int // order of application, to tell which of two settings came last
}

// merge applies the chain from the root ancestor down: each file's
// settings override its parent's field by field, and rules accumulate
// parent first so that a child's rule for a selector wins. Checks that
// need the resolved profile run only on a complete chain.
func merge(chain []*layer, complete bool, c *collector) *rules.Profile {
	top := chain[0]
	p := &rules.Profile{
		Name:        top.name,
		Description: top.description,
		Source:      top.ref.key(),
		Pseudonyms:  rules.DefaultPseudonyms(),
		DateShift:   rules.DefaultDateShift(),
	}
	var optAt [ps315.NumOptions]*where
	var dateAt, otherAt *where
	type ruleIn struct {
		pr   parsedRule
		file string
	}
	var all []ruleIn
	seq := 0
	for i := len(chain) - 1; i >= 0; i-- {
		ly := chain[i]
		for _, o := range ly.options {
			seq++
			p.Options[o.opt] = o.on
			optAt[o.opt] = &where{file: ly.ref.display, at: o.at, seq: seq}
		}
		if ly.minDays.set {
			p.DateShift.MinDays = ly.minDays.v
		}
		if ly.maxDays.set {
			p.DateShift.MaxDays = ly.maxDays.v
		}
		if ly.minDays.set || ly.maxDays.set {
			dateAt = &where{file: ly.ref.display, at: ly.dateAt}
		}
		if ly.patientID.set {
			p.Pseudonyms.PatientID = ly.patientID.v
		}
		if ly.patientName.set {
			p.Pseudonyms.PatientName = ly.patientName.v
		}
		if ly.other.set {
			p.Pseudonyms.Other = ly.other.v
			otherAt = &where{file: ly.ref.display, at: ly.other.at}
		}
		for _, pr := range ly.rules {
			p.Rules = append(p.Rules, pr.rule)
			all = append(all, ruleIn{pr, ly.ref.display})
		}
	}
	if !complete {
		return p
	}

	// PS3.15 E.3.6: dates are either kept (Full Dates) or shifted
	// (Modified Dates); both at once has no meaning.
	full, mod := ps315.RetainLongFullDates, ps315.RetainLongModifiedDates
	if p.Options[full] && p.Options[mod] {
		last := optAt[full]
		if optAt[mod].seq > last.seq {
			last = optAt[mod]
		}
		c.at(last.file, last.at, "options: %s and %s exclude each other (dates are either kept or shifted); turn one off",
			full.Key(), mod.Key())
	}
	if p.DateShift.MinDays > p.DateShift.MaxDays && dateAt != nil {
		c.at(dateAt.file, dateAt.at, "date_shift: resolved min_days %d is greater than max_days %d (the other bound is inherited)",
			p.DateShift.MinDays, p.DateShift.MaxDays)
	}

	// A pseudonym rule writes pseudonyms.other into its attribute; one that
	// does not fit would be cut by the engine, losing hash characters and
	// so making collisions between different values likelier.
	other, err := parseTemplate(p.Pseudonyms.Other)
	if err != nil {
		return p // already reported where it was set
	}
	for _, r := range all {
		if r.pr.rule.Action != rules.Pseudonym || r.pr.vrs == nil {
			continue
		}
		switch r.pr.rule.Selector.Tag {
		case tagPatientID, tagPatientName: // their own formats, checked at parse
			continue
		}
		for _, vr := range r.pr.vrs {
			if !isNameVR(vr) {
				continue
			}
			if msg := other.fitsVR(vr); msg != "" {
				from := "the default"
				if otherAt != nil {
					from = fmt.Sprintf("set at %s:%d", otherAt.file, otherAt.at.Line)
				}
				c.at(r.file, r.pr.actionAt, "%s.action: pseudonyms.other %q (%s) does not fit %s: %s",
					r.pr.path, p.Pseudonyms.Other, from, r.pr.label, msg)
			}
			break
		}
	}
	return p
}

// Tags whose pseudonyms have formats of their own.
const (
	tagPatientName = 0x00100010
	tagPatientID   = 0x00100020
)

// RuleFor returns the rule of p that applies to sel: the last one with the
// same selector, as the engine resolves them. Private creators compare
// ignoring case and surrounding spaces, also as the engine does.
func RuleFor(p *rules.Profile, sel rules.Selector) (rules.Rule, bool) {
	for i := len(p.Rules) - 1; i >= 0; i-- {
		if sameSelector(p.Rules[i].Selector, sel) {
			return p.Rules[i], true
		}
	}
	return rules.Rule{}, false
}

func sameSelector(a, b rules.Selector) bool {
	switch {
	case a.Private == nil && b.Private == nil:
		return a.Tag == b.Tag
	case a.Private != nil && b.Private != nil:
		return a.Private.Group == b.Private.Group && a.Private.Element == b.Private.Element &&
			normCreator(a.Private.Creator) == normCreator(b.Private.Creator)
	}
	return false
}

func normCreator(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }
