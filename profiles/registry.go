package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// A service never loads a profile a message names: a request that could
// name a file could make the service run any YAML on its host (one that
// keeps patients' names), or read any file and echo what the loader says
// of it. The operator decides at start which profiles exist; requests
// pick one of them by name.

// ErrNotRegistered is returned by Registry.Get for a name the operator did
// not register. Its text names no file and quotes nothing.
var ErrNotRegistered = errors.New("profile is not registered with this service")

// RegistryConfig says which profiles a Registry holds.
type RegistryConfig struct {
	// Dir, when set, holds operator profiles: every *.yaml and *.yml file
	// in it (not in subdirectories) is loaded and registered under its
	// name, which must be the file's base name.
	Dir string
	// Extra are more profiles to register, by built-in name or file path
	// (the service's own --profile).
	Extra []string
	// Allow, when not empty, is the list of names requests may use; every
	// name in it must be registered. Empty: every registered profile.
	Allow []string
}

// Registry holds the profiles a service may run, loaded once at start and
// looked up by name only. It is safe for concurrent use: it does not
// change after NewRegistry.
type Registry struct {
	byName map[string]*rules.Profile
	names  []string // the names requests may use, sorted
}

// NewRegistry loads the built-in profiles, those of c.Dir and c.Extra. A
// problem in an operator file is an error at start (with the file's
// problems, for the operator's terminal), never later.
func (l *Loader) NewRegistry(c RegistryConfig) (*Registry, error) {
	r := &Registry{byName: map[string]*rules.Profile{}}
	from := map[string]string{} // name -> where it came from, for collisions
	add := func(p *rules.Profile, where string) error {
		if prev, ok := from[p.Name]; ok {
			if prev == where {
				return nil
			}
			return fmt.Errorf("profile name %q is given by both %s and %s", p.Name, prev, where)
		}
		from[p.Name] = where
		r.byName[p.Name] = p
		return nil
	}
	for _, name := range builtinNames() {
		p, err := l.Load(name)
		if err != nil {
			return nil, fmt.Errorf("built-in profile %s: %w", name, err)
		}
		if err := add(p, "built-in "+name); err != nil {
			return nil, err
		}
	}
	if c.Dir != "" {
		files, err := profileFiles(c.Dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			p, err := l.Load(f)
			if err != nil {
				return nil, err
			}
			base := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			if p.Name != base {
				return nil, fmt.Errorf("%s: its name is %q; a registered profile's name must be its file's name (%s)", f, p.Name, base)
			}
			if err := add(p, f); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range c.Extra {
		p, err := l.Load(e)
		if err != nil {
			return nil, err
		}
		where := "built-in " + e
		if isPath(e) {
			abs, _ := filepath.Abs(e)
			where = abs
		}
		if err := add(p, where); err != nil {
			return nil, err
		}
	}
	if len(c.Allow) == 0 {
		for n := range r.byName {
			r.names = append(r.names, n)
		}
	} else {
		allowed := map[string]*rules.Profile{}
		for _, n := range c.Allow {
			p, ok := r.byName[n]
			if !ok {
				return nil, fmt.Errorf("allowed profile %q is not registered (built-ins, --profiles-dir and --profile)", n)
			}
			allowed[n] = p
		}
		for n := range allowed {
			r.names = append(r.names, n)
		}
	}
	sort.Strings(r.names)
	return r, nil
}

// profileFiles lists the profile files directly in dir, sorted.
func profileFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("profiles directory: %w", err)
	}
	var files []string
	for _, e := range ents {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.Type().IsRegular() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// Get returns the registered profile a request names. A name that is not
// registered, or not allowed for requests, or that is not a name at all
// (a path, a URL), is ErrNotRegistered: nothing is read.
func (r *Registry) Get(name string) (*rules.Profile, error) {
	i := sort.SearchStrings(r.names, name)
	if i == len(r.names) || r.names[i] != name {
		return nil, ErrNotRegistered
	}
	return r.byName[name], nil
}

// Names returns the names requests may use, sorted.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }
