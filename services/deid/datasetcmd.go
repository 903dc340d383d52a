package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

const datasetUsage = `deid dataset request --project P [--profile NAME] (--studies FILE | --prefix P ...) [--bucket B] [--dataset-id ID] [--wait]
deid dataset status ID
deid dataset list
(all take ` + natsFlagsHelp + `;
request and status connect as the submitter role, list as the auditor)

A dataset is the studies a research team asked for, de-identified with
their project's key and the profile into deid-anonymised/datasets/<id>/,
with manifest.json and manifest.csv. --studies names them in a CSV file:
one Study Instance UID or Accession Number per row (a header row naming
study_instance_uid or accession_number is optional; without one, values
that look like UIDs are taken as UIDs). Studies are found through the
service's index of what it ingested; --prefix delivers everything under a
prefix of the source bucket. Requested studies that are not found are
reported by their position in the request, never by identifier.
`

func datasetCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, datasetUsage)
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("dataset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, datasetUsage) }
	url := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server of the service")
	creds := fs.String("nats-creds", "", "NATS credentials (a role's seed file)")
	data := fs.String("data", "./data", "data directory of a local deid serve, where its credentials are")
	project := fs.String("project", "", "project (request)")
	profile := fs.String("profile", "research", "profile (request)")
	studies := fs.String("studies", "", "CSV of Study Instance UIDs or Accession Numbers (request)")
	bucket := fs.String("bucket", "", "source bucket (request; default the service's input bucket)")
	id := fs.String("dataset-id", "", "dataset id (request; default a new random one)")
	wait := fs.Bool("wait", false, "wait until the dataset is delivered (request)")
	var prefixes multiFlag
	fs.Var(&prefixes, "prefix", "a prefix of the source bucket to deliver whole (request; repeatable)")
	rest := args[1:]
	var pos string
	if (sub == "status") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		pos, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return exitUsage
	}
	if err := envDefaults(fs); err != nil {
		fmt.Fprintln(stderr, "deid dataset:", err)
		return exitUsage
	}
	if pos == "" && fs.NArg() == 1 {
		pos = fs.Arg(0)
	}
	connect := func() (*nats.Conn, jetstream.JetStream, bool) {
		// Listing every dataset is an auditor's read; a requester reads
		// the datasets it knows the id of.
		role := natsauth.Submitter
		if sub == "list" {
			role = natsauth.Auditor
		}
		cl, ok := connectNATS("deid dataset", role, *url, *creds, *data, 10*time.Second, stderr)
		if !ok {
			return nil, nil, false
		}
		return cl.nc, cl.js, true
	}
	switch sub {
	case "request":
		if *project == "" || *studies == "" && len(prefixes) == 0 || fs.NArg() > 0 {
			fmt.Fprint(stderr, datasetUsage)
			return exitUsage
		}
		if strings.ContainsAny(*profile, `/\`) || strings.HasSuffix(*profile, ".yaml") || strings.HasSuffix(*profile, ".yml") {
			fmt.Fprintln(stderr, "deid dataset request: --profile names a profile registered with the service (a built-in, or one of its --profiles-dir), not a file")
			return exitUsage
		}
		req := ingest.DatasetRequest{DatasetID: *id, Project: *project, Profile: *profile, Bucket: *bucket, Prefixes: prefixes}
		if req.DatasetID == "" {
			req.DatasetID = ingest.NewDatasetID()
		}
		if *studies != "" {
			refs, err := readStudyList(*studies)
			if err != nil {
				fmt.Fprintln(stderr, "deid dataset request:", err)
				return exitUsage
			}
			req.Studies = refs
		}
		nc, _, ok := connect()
		if !ok {
			return exitRejected
		}
		defer nc.Close()
		b, _ := json.Marshal(req)
		var reply ingest.DatasetReply
		var err error
		for attempt := 0; attempt < 5; attempt++ { // the same id: a retry is the same request
			var m *nats.Msg
			m, err = nc.Request(ingest.SubjectDatasetRequest, b, 10*time.Second)
			if err == nil {
				err = json.Unmarshal(m.Data, &reply)
				break
			}
			if errors.Is(nc.LastError(), nats.ErrPermissionViolation) {
				break // refused: trying again changes nothing
			}
			time.Sleep(time.Duration(attempt+1) * 500 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintf(stderr, "deid dataset request: %s\n", (&natsClient{nc: nc}).explain(err))
			return exitRejected
		}
		if reply.Error != "" {
			fmt.Fprintf(stderr, "deid dataset request: %s\n", reply.Error)
			return exitRejected
		}
		fmt.Fprintf(stdout, "dataset %s %s (%d studies, %d prefixes requested for project %s)\n", reply.DatasetID, reply.State,
			len(req.Studies), len(req.Prefixes), req.Project)
		if !*wait {
			return exitOK
		}
		return waitDataset(nc, reply.DatasetID, stdout, stderr)
	case "status":
		if pos == "" {
			fmt.Fprint(stderr, datasetUsage)
			return exitUsage
		}
		nc, _, ok := connect()
		if !ok {
			return exitRejected
		}
		defer nc.Close()
		st, err := ingest.RequestJobStatus(nc, pos, 10*time.Second)
		if errors.Is(err, ingest.ErrNoSuchJob) || err == nil && st.Kind != "dataset" {
			fmt.Fprintf(stderr, "deid dataset status: no dataset %s\n", pos)
			return exitRejected
		}
		if err != nil {
			fmt.Fprintln(stderr, "deid dataset status:", err)
			return exitRejected
		}
		printDataset(stdout, st)
		return exitOK
	case "list":
		nc, js, ok := connect()
		if !ok {
			return exitRejected
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		all, err := ingest.ListJobs(ctx, js)
		if err != nil {
			fmt.Fprintln(stderr, "deid dataset list:", err)
			return exitRejected
		}
		sort.Slice(all, func(a, b int) bool { return all[a].Created.Before(all[b].Created) })
		fmt.Fprintf(stdout, "%-22s %-16s %-10s %-8s %s\n", "DATASET", "PROJECT", "PROFILE", "STATE", "INSTANCES")
		for _, st := range all {
			if st.Kind != "dataset" {
				continue
			}
			fmt.Fprintf(stdout, "%-22s %-16s %-10s %-8s %s\n", st.JobID, st.Project, st.Profile, st.State, progressText(st))
		}
		return exitOK
	}
	fmt.Fprint(stderr, datasetUsage)
	return exitUsage
}

func progressText(st *ingest.JobState) string {
	p := ingest.PublicStatus(st)
	return progressOf(&p)
}

func progressOf(st *ingest.JobStatusReply) string {
	if !st.Expanded {
		return "not resolved yet"
	}
	return fmt.Sprintf("%d/%d finished (%d delivered, %d failed)", st.Done+st.Failed, st.Expected, st.Done, st.Failed)
}

// printDataset prints what a requester is told of its dataset: the
// counts, positions and where the manifest and the crosswalk are.
func printDataset(w io.Writer, st *ingest.JobStatusReply) {
	failures := st.Failures
	fmt.Fprintf(w, "dataset %s (project %s, profile %s): %s\n", st.JobID, st.Project, st.Profile, st.State)
	fmt.Fprintf(w, "  instances: %s\n", progressOf(st))
	fmt.Fprintf(w, "  requested: %d studies or prefixes\n", st.Requested)
	if len(st.NotFound) > 0 {
		fmt.Fprintf(w, "  not found in the source bucket: %s\n", positions(st.NotFound))
	}
	if lk := failures[ingest.KindNotInLookup]; lk.Count > 0 {
		fmt.Fprintf(w, "  patient not in the project's lookup table (not delivered): %s\n", positions(lk.Positions))
	}
	var kinds []string
	for k := range failures {
		if k != ingest.KindNotInLookup {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  failed (%s), quarantined: %d instances, in %s\n", k, failures[k].Count, positions(failures[k].Positions))
	}
	if st.Crosswalk != "" {
		fmt.Fprintf(w, "  crosswalk: %s (trusted side: it re-identifies the delivery)\n", st.Crosswalk)
	}
	if st.Manifest != "" {
		fmt.Fprintf(w, "  manifest: %s (and manifest.csv)\n", st.Manifest)
	}
}

// positions prints request positions: "study #3, #7".
func positions(p []int) string {
	if len(p) == 0 {
		return "(no position)"
	}
	seen := map[int]bool{}
	var u []int
	for _, x := range p {
		if !seen[x] {
			seen[x] = true
			u = append(u, x)
		}
	}
	sort.Ints(u)
	var s []string
	for _, x := range u {
		if x == 0 {
			s = append(s, "(no position)")
			continue
		}
		s = append(s, fmt.Sprintf("#%d", x))
	}
	return "request entry " + strings.Join(s, ", ")
}

func waitDataset(nc *nats.Conn, id string, stdout, stderr io.Writer) int {
	last := ""
	for {
		st, err := ingest.RequestJobStatus(nc, id, 10*time.Second)
		if err == nil {
			line := fmt.Sprintf("dataset %s: %s, %s", id, st.State, progressOf(st))
			if line != last {
				fmt.Fprintln(stdout, line)
				last = line
			}
			if st.Complete {
				printDataset(stdout, st)
				if st.Failed > 0 || len(st.NotFound) > 0 {
					return exitRejected
				}
				return exitOK
			}
		} else if !errors.Is(err, ingest.ErrNoSuchJob) {
			fmt.Fprintln(stderr, "deid dataset:", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

var uidPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)+$`)

// readStudyList reads the requested studies: one per row, first column.
func readStudyList(path string) ([]ingest.StudyRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.Comment = '#'
	var out []ingest.StudyRef
	forced := ""
	for row := 1; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s row %d: malformed CSV", path, row)
		}
		if len(rec) == 0 {
			continue
		}
		v := strings.TrimSpace(rec[0])
		if v == "" {
			continue
		}
		if row == 1 {
			switch strings.ToLower(v) {
			case "study_instance_uid", "study_uid", "studyinstanceuid":
				forced = "uid"
				continue
			case "accession_number", "accession", "accessionnumber":
				forced = "accession"
				continue
			}
		}
		switch {
		case forced == "uid" || forced == "" && uidPattern.MatchString(v):
			out = append(out, ingest.StudyRef{StudyInstanceUID: v})
		default:
			out = append(out, ingest.StudyRef{AccessionNumber: v})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s names no study", path)
	}
	return out, nil
}
