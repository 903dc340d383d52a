package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/dicomdeid/dicomdeid/pipeline/budget"
	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/profiles"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/projects"
)

const projectUsage = `deid project create NAME [--lookup FILE] [--projects DIR]
deid project list [--projects DIR]

A project owns a key: every delivery to it pseudonymises the same patient,
study and instance the same way; another project's deliveries share
nothing with it. With --lookup, a CSV from the honest broker
(patient_id,research_id[,issuer_of_patient_id]) names patients by research
ID instead, and patients missing from it are not delivered. Keys are never
rotated: a new key is a new project. The store is a directory only its
owner can read (default ./data/projects, the service's --projects).
`

func projectCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, projectUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("project", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, projectUsage) }
	dir := fs.String("projects", "./data/projects", "project store directory")
	lookup := fs.String("lookup", "", "honest broker's CSV of research IDs (create)")
	sub := args[0]
	rest := args[1:]
	var name string
	if sub == "create" && len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return exitUsage
	}
	if err := envDefaults(fs); err != nil {
		fmt.Fprintln(stderr, "deid project:", err)
		return exitUsage
	}
	if sub == "create" && name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprint(stderr, projectUsage)
		return exitUsage
	}
	store := projects.DirStore{Dir: *dir}
	ctx := context.Background()
	switch sub {
	case "create":
		if name == "" {
			fmt.Fprint(stderr, projectUsage)
			return exitUsage
		}
		var table io.Reader
		if *lookup != "" {
			f, err := os.Open(*lookup)
			if err != nil {
				fmt.Fprintln(stderr, "deid project create:", err)
				return exitUsage
			}
			defer f.Close()
			table = f
		}
		if err := store.Create(ctx, name, table); err != nil {
			fmt.Fprintf(stderr, "deid project create %s: %v\n", name, err)
			if errors.Is(err, projects.ErrName) {
				return exitUsage
			}
			return exitRejected
		}
		fmt.Fprintf(stdout, "created project %s in %s (its key file is %s.key: back it up, it is the only way to reproduce the project's pseudonyms)\n",
			name, *dir, filepath.Join(*dir, name))
		return exitOK
	case "list":
		names, err := store.List(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "deid project list:", err)
			return exitRejected
		}
		for _, n := range names {
			l, err := store.Lookup(ctx, n)
			switch {
			case err != nil:
				fmt.Fprintf(stdout, "%s\t(lookup table unreadable: %v)\n", n, err)
			case l != nil:
				fmt.Fprintf(stdout, "%s\tlookup table (%d patients)\n", n, l.Rows)
			default:
				fmt.Fprintf(stdout, "%s\tkeyed pseudonyms\n", n)
			}
		}
		return exitOK
	}
	fmt.Fprint(stderr, projectUsage)
	return exitUsage
}

// projectEngines builds (once) the engine of each project and profile the
// service delivers datasets with. Profiles come from the registry fixed at
// start: a request names one, it never names a file.
type projectEngines struct {
	store    projects.Store
	registry *profiles.Registry
	// limits and memory are the service's: a dataset's files are bounded
	// like the others, out of the same budget.
	limits dicomraw.Limits
	memory *budget.Pool
	text   *textOCR // the service's OCR
	mu     sync.Mutex
	cache  map[[2]string]*deid.Engine
}

// Engine implements ingest.EngineSource. Its errors are
// ingest.ErrUnknownProject, ingest.ErrUnknownProfile, or a failure to read
// the project store, which the caller words itself: none carries a file's
// name or content.
func (p *projectEngines) Engine(ctx context.Context, project, profile string) (*deid.Engine, error) {
	prof, err := p.registry.Get(profile)
	if err != nil {
		return nil, ingest.ErrUnknownProfile
	}
	if !projects.ValidName(project) {
		return nil, ingest.ErrUnknownProject
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.cache[[2]string{project, profile}]; ok {
		return e, nil
	}
	key, err := p.store.Key(ctx, project)
	if errors.Is(err, projects.ErrNoProject) || errors.Is(err, projects.ErrName) {
		return nil, ingest.ErrUnknownProject
	}
	if err != nil {
		return nil, fmt.Errorf("project store: %w", err)
	}
	e, err := projectEngine(ctx, p.store, p.text.engineConfig(deid.Config{Profile: prof, Key: key, Limits: p.limits, Memory: p.memory}), project)
	if err != nil {
		return nil, err
	}
	if p.cache == nil {
		p.cache = map[[2]string]*deid.Engine{}
	}
	p.cache[[2]string{project, profile}] = e
	return e, nil
}

// projectEngine is the engine a project's deliveries are made with: cfg
// (its key, the profile, the service's limits) and its lookup table if it
// has one.
func projectEngine(ctx context.Context, store projects.Store, cfg deid.Config, project string) (*deid.Engine, error) {
	if store != nil {
		l, err := store.Lookup(ctx, project)
		if err != nil {
			return nil, fmt.Errorf("project store: lookup table: %w", err)
		}
		if l != nil {
			cfg.PatientLookup = l
		}
	}
	return deid.New(cfg)
}

const pseudonymUsage = `deid pseudonym (--project P [--projects DIR] | --key-file FILE) [--profile NAME]
               [--patient-id ID [--issuer ISSUER]] [--uid UID ...] [--json]
               [--batch IN.csv [--out OUT.csv [--force]]]

For the honest broker, on the trusted side: prints what a delivery made
with this key and profile contains for a patient (Patient ID, Patient's
Name, date shift) and for UIDs, computed by the engine that makes the
deliveries, so a pseudonym can be linked back without a stored crosswalk.

--batch reads a CSV whose header names its columns, patient_id (with an
optional issuer_of_patient_id) and/or uid, and writes one id_old,id_new
row per value (the crosswalk format of deid run --crosswalk) to --out
(mode 0600) or to standard output. The output re-identifies: keep it on
the trusted side.
`

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func pseudonymCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pseudonym", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, pseudonymUsage) }
	project := fs.String("project", "", "project whose key (and lookup table) to use")
	dir := fs.String("projects", "./data/projects", "project store directory")
	keyFile := fs.String("key-file", "", "a project key file instead of --project")
	profile := fs.String("profile", "research", "profile of the deliveries")
	patientID := fs.String("patient-id", "", "a Patient ID")
	issuer := fs.String("issuer", "", "its Issuer of Patient ID")
	asJSON := fs.Bool("json", false, "print JSON")
	batch := fs.String("batch", "", "CSV of patient_id[,issuer_of_patient_id] and/or uid columns (with a header) to map")
	batchOut := fs.String("out", "", "with --batch: write the id_old,id_new CSV here (mode 0600; a new file, never a link, the key or an input) instead of standard output")
	force := fs.Bool("force", false, "let --out replace an existing file (never the key, an input or a credentials file)")
	var uids multiFlag
	fs.Var(&uids, "uid", "a UID (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if (*project == "") == (*keyFile == "") || fs.NArg() > 0 || (*patientID == "" && len(uids) == 0 && *batch == "") ||
		(*batch != "" && (*patientID != "" || len(uids) > 0 || *asJSON)) || (*batchOut != "" && *batch == "") {
		fmt.Fprint(stderr, pseudonymUsage)
		return exitUsage
	}
	ctx := context.Background()
	var store projects.Store
	var key pseudonym.Key
	var err error
	if *project != "" {
		store = projects.DirStore{Dir: *dir}
		key, err = store.Key(ctx, *project)
	} else {
		key, err = pseudonym.LoadKeyFile(*keyFile)
	}
	if err != nil {
		fmt.Fprintln(stderr, "deid pseudonym:", err)
		return exitUsage
	}
	prof, err := (&profiles.Loader{}).Load(*profile)
	if err != nil {
		fmt.Fprintln(stderr, "deid pseudonym:", err)
		return exitUsage
	}
	eng, err := projectEngine(ctx, store, deid.Config{Profile: prof, Key: key}, *project)
	if err != nil {
		fmt.Fprintln(stderr, "deid pseudonym:", err)
		return exitUsage
	}
	if *batch != "" {
		return pseudonymBatch(eng, batchConfig{in: *batch, out: *batchOut, force: *force, keyFile: *keyFile, projects: projectsDirOf(*project, *dir)}, stdout, stderr)
	}
	out := struct {
		Patient *deid.Linkage     `json:"patient,omitempty"`
		UIDs    map[string]string `json:"uids,omitempty"`
	}{}
	code := exitOK
	if *patientID != "" {
		l, ok := eng.PatientLinkage(*patientID, *issuer)
		if !ok {
			fmt.Fprintln(stderr, "deid pseudonym: the patient is not in the project's lookup table: deliveries leave them out")
			code = exitRejected
		} else {
			out.Patient = &l
		}
	}
	if len(uids) > 0 {
		out.UIDs = map[string]string{}
		for _, u := range uids {
			out.UIDs[u] = eng.UID(u)
		}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return code
	}
	if out.Patient != nil {
		fmt.Fprintf(stdout, "Patient ID\t%s\nPatient's Name\t%s\n", out.Patient.PatientID, out.Patient.PatientName)
		if out.Patient.DateShiftDays != 0 {
			fmt.Fprintf(stdout, "date shift\t%d days\n", out.Patient.DateShiftDays)
		}
	}
	for _, u := range uids {
		fmt.Fprintf(stdout, "%s\t%s\n", u, out.UIDs[u])
	}
	return code
}
