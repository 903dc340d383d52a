// Package projects keeps what makes a research project's deliveries its
// own: a key (same key, same pseudonyms in every delivery; another
// project's key, unlinkable ones) and, optionally, the honest broker's
// lookup table of research IDs. Keys are never logged or published; a
// key is never rotated: a new key is a new project.
package projects

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
)

// Store holds projects. DirStore keeps them in files; a KMS-backed store
// implements the same methods.
type Store interface {
	// Create makes a new project with a new random key, and with a lookup
	// table when lookup is not nil. It fails with ErrExists for a project
	// that already exists: keys are not replaced.
	Create(ctx context.Context, project string, lookup io.Reader) error
	// Key returns a project's key (ErrNoProject when there is none).
	Key(ctx context.Context, project string) (pseudonym.Key, error)
	// Lookup returns a project's lookup table, or nil when it has none.
	Lookup(ctx context.Context, project string) (*Lookup, error)
	// List names the projects.
	List(ctx context.Context) ([]string, error)
}

// Errors of a Store.
var (
	ErrExists    = errors.New("project already exists")
	ErrNoProject = errors.New("no such project")
	ErrName      = errors.New("project names are 1 to 64 letters, digits, '-' and '_'")
)

// ValidName tells whether a project name can be used (it becomes part of
// file names, key-value keys and object keys).
func ValidName(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// DirStore keeps each project as DIR/<project>.key (mode 0600) and
// DIR/<project>.lookup.csv, in a directory only its owner may read.
type DirStore struct{ Dir string }

func (d DirStore) path(project, suffix string) string { return filepath.Join(d.Dir, project+suffix) }

// check refuses a directory others can read or enter: the keys in it
// decide every pseudonym.
func (d DirStore) check(create bool) error {
	st, err := os.Stat(d.Dir)
	if errors.Is(err, os.ErrNotExist) && create {
		return os.MkdirAll(d.Dir, 0o700)
	}
	if err != nil {
		return fmt.Errorf("project store: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("project store %s: mode %04o lets others in; chmod 700 it", d.Dir, st.Mode().Perm())
	}
	return nil
}

// Create implements Store.
func (d DirStore) Create(ctx context.Context, project string, lookup io.Reader) error {
	if !ValidName(project) {
		return ErrName
	}
	if err := d.check(true); err != nil {
		return err
	}
	var table []byte
	if lookup != nil {
		b, err := io.ReadAll(lookup)
		if err != nil {
			return fmt.Errorf("read lookup table: %w", err)
		}
		if _, err := ParseLookup(strings.NewReader(string(b))); err != nil {
			return err
		}
		table = b
	}
	k, err := pseudonym.GenerateKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(d.path(project, ".key"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return ErrExists
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(k.Encode() + "\n"); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if table != nil {
		if err := os.WriteFile(d.path(project, ".lookup.csv"), table, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Key implements Store.
func (d DirStore) Key(ctx context.Context, project string) (pseudonym.Key, error) {
	if !ValidName(project) {
		return pseudonym.Key{}, ErrName
	}
	if err := d.check(false); err != nil {
		return pseudonym.Key{}, err
	}
	k, err := pseudonym.LoadKeyFile(d.path(project, ".key"))
	if errors.Is(err, os.ErrNotExist) {
		return pseudonym.Key{}, ErrNoProject
	}
	return k, err
}

// Lookup implements Store.
func (d DirStore) Lookup(ctx context.Context, project string) (*Lookup, error) {
	if !ValidName(project) {
		return nil, ErrName
	}
	f, err := os.Open(d.path(project, ".lookup.csv"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseLookup(f)
}

// List implements Store.
func (d DirStore) List(ctx context.Context) ([]string, error) {
	if err := d.check(false); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(d.Dir, "*.key"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimSuffix(filepath.Base(n), ".key"))
	}
	sort.Strings(out)
	return out, nil
}

// Lookup is an honest broker's table: (issuer, Patient ID) -> research ID.
// A row without an issuer matches the Patient ID whatever its issuer.
type Lookup struct {
	byIssuer map[[2]string]string
	byID     map[string]string
	Rows     int
}

// ResearchID returns the research ID of a patient.
func (l *Lookup) ResearchID(patientID, issuer string) (string, bool) {
	if r, ok := l.byIssuer[[2]string{issuer, patientID}]; ok && issuer != "" {
		return r, true
	}
	r, ok := l.byID[patientID]
	return r, ok
}

// ParseLookup reads a lookup table: CSV with a header naming the columns
// patient_id, research_id and optionally issuer_of_patient_id. Errors
// give the line, never a value.
func ParseLookup(r io.Reader) (*Lookup, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("lookup table: no header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	pi, okP := col["patient_id"]
	ri, okR := col["research_id"]
	ii, okI := col["issuer_of_patient_id"]
	if !okP || !okR {
		return nil, errors.New("lookup table: the header must name patient_id and research_id (and optionally issuer_of_patient_id)")
	}
	l := &Lookup{byIssuer: map[[2]string]string{}, byID: map[string]string{}}
	seenResearch := map[string]string{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("lookup table line %d: malformed CSV", line)
		}
		get := func(i int) string {
			if i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		pid, rid := get(pi), get(ri)
		if pid == "" || rid == "" {
			return nil, fmt.Errorf("lookup table line %d: empty patient_id or research_id", line)
		}
		if len(rid) > 64 {
			return nil, fmt.Errorf("lookup table line %d: research_id longer than 64 characters (LO)", line)
		}
		issuer := ""
		if okI {
			issuer = get(ii)
		}
		key := issuer + "\x00" + pid
		if other, dup := seenResearch[rid]; dup && other != key {
			return nil, fmt.Errorf("lookup table line %d: research_id given to two patients", line)
		}
		seenResearch[rid] = key
		if issuer != "" {
			l.byIssuer[[2]string{issuer, pid}] = rid
		} else {
			l.byID[pid] = rid
		}
		l.Rows++
	}
	return l, nil
}
