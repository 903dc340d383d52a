package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
)

// Datasets: a research team asks for studies (by Study Instance UID or
// Accession Number, or whole prefixes) for a project; the service finds
// them through an index of what it ingested, de-identifies them with the
// project's key and profile under datasets/<id>/ in the anonymised bucket,
// writes a manifest, and announces deid.events.dataset.ready. A dataset is
// a job (DEID_JOBS) whose marks carry the manifest's rows.

// EngineSource gives the engine of a project's deliveries (its key, its
// lookup table, the requested profile).
type EngineSource interface {
	Engine(ctx context.Context, project, profile string) (*deid.Engine, error)
}

// StudyRef names a requested study, by exactly one of its identifiers.
type StudyRef struct {
	StudyInstanceUID string `json:"study_uid,omitempty"`
	AccessionNumber  string `json:"accession_number,omitempty"`
}

// DatasetRequest is the JSON of a request on deid.datasets.request. It
// names patients' studies: it travels on the trusted side only.
type DatasetRequest struct {
	DatasetID string     `json:"dataset_id,omitempty"` // chosen by the client for idempotent retries; generated otherwise
	Project   string     `json:"project"`
	Profile   string     `json:"profile"`
	Bucket    string     `json:"bucket,omitempty"` // source bucket; default the input bucket
	Studies   []StudyRef `json:"studies,omitempty"`
	Prefixes  []string   `json:"prefixes,omitempty"`
}

// DatasetReply answers a request.
type DatasetReply struct {
	DatasetID string `json:"dataset_id,omitempty"`
	State     string `json:"state,omitempty"`
	Error     string `json:"error,omitempty"`
}

// DatasetReady is published on deid.events.dataset.ready.
type DatasetReady struct {
	Schema       string    `json:"schema"`
	Time         time.Time `json:"time"`
	DatasetID    string    `json:"dataset_id"`
	Project      string    `json:"project"`
	Profile      string    `json:"profile"`
	Bucket       string    `json:"bucket"`
	Prefix       string    `json:"prefix"`
	Manifest     string    `json:"manifest"`
	ManifestCSV  string    `json:"manifest_csv"`
	Studies      int       `json:"studies"`
	Instances    int       `json:"instances"`
	Failed       int       `json:"failed"`
	NotFound     []int     `json:"not_found,omitempty"`     // requested studies' positions (1-based)
	NotInLookup  []int     `json:"not_in_lookup,omitempty"` // positions whose patient the lookup table lacks
	NotDelivered []int     `json:"not_delivered,omitempty"` // positions with no instance delivered
	Bytes        int64     `json:"bytes"`
}

// ManifestEntry is one delivered instance: pseudonymised identifiers only.
type ManifestEntry struct {
	PatientID      string `json:"patient_id"`
	StudyUID       string `json:"study_uid"`
	SeriesUID      string `json:"series_uid"`
	SOPInstanceUID string `json:"sop_instance_uid"`
	SOPClassUID    string `json:"sop_class_uid"`
	Modality       string `json:"modality"`
	Key            string `json:"key"`
	Size           int64  `json:"size"`
	SHA256         string `json:"sha256"`
	// PixelsExamined and PixelsMasked: see InstanceDone.
	PixelsExamined bool `json:"pixels_examined"`
	PixelsMasked   bool `json:"pixels_masked"`
}

// Manifest is datasets/<id>/manifest.json.
type Manifest struct {
	Schema          string   `json:"schema"`
	DatasetID       string   `json:"dataset_id"`
	Project         string   `json:"project"`
	Profile         string   `json:"profile"`
	Options         []string `json:"options"`
	StandardEdition string   `json:"standard_edition"`
	// BurnedInText is the profile's mode for text in pixels (identifying,
	// all-but-allowed, all; off: pixels were not examined).
	BurnedInText string          `json:"burned_in_text"`
	Tool         string          `json:"tool"`
	ToolVersion  string          `json:"tool_version"`
	Created      time.Time       `json:"created"`
	Counts       ManifestCounts  `json:"counts"`
	Instances    []ManifestEntry `json:"instances"`
}

// ManifestCounts summarise a manifest.
type ManifestCounts struct {
	Patients          int   `json:"patients"`
	Studies           int   `json:"studies"`
	Series            int   `json:"series"`
	Instances         int   `json:"instances"`
	Bytes             int64 `json:"bytes"`
	RequestedStudies  int   `json:"requested_studies"`
	StudiesNotFound   []int `json:"studies_not_found,omitempty"`
	StudiesNotInTable []int `json:"studies_not_in_lookup,omitempty"`
	FailedInstances   int   `json:"failed_instances"`
}

// NewDatasetID is a random dataset id.
func NewDatasetID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "ds-" + hex.EncodeToString(b)
}

// indexKey hashes a source identifier for the index's keys (the values
// themselves stay out of key names, which tools list): keyed with the
// project key (Config.Index), so that a reader of the index cannot find a
// guessed accession number or UID in it. Keys are
//
//	study.<study>.<object>    the object's bucket, key and ETag
//	accession.<accession>.<study>
//
// (entries written before keyed hashes, s.* and a.*, are not looked up).
func (s *Service) indexKey(domain, v string) string { return s.cfg.Index.Key(domain, v) }

// indexEntry is one ingested object of a source study.
type indexEntry struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag"`
}

// indexWrites are the index entries of an ingested object, so a dataset
// request can name its study by Study Instance UID or Accession Number.
// The accession number's entry is the same for every instance of a study:
// it is written once per study and process (see recentKeys).
func (s *Service) indexWrites(src deid.Source, j InstanceJob) []*jsWrite {
	if s.idx == nil || src.StudyInstanceUID == "" {
		return nil
	}
	study := s.indexKey("study", src.StudyInstanceUID)
	b, _ := json.Marshal(indexEntry{Bucket: j.Bucket, Key: j.Key, ETag: j.ETag})
	ws := []*jsWrite{{subject: kvSubject(KVIndex, "study."+study+"."+s.indexKey("object", j.Bucket+"/"+j.Key)), data: b}}
	if src.AccessionNumber != "" {
		k := "accession." + s.indexKey("accession", src.AccessionNumber) + "." + study
		if !s.recent.fresh(k) {
			ws = append(ws, &jsWrite{subject: kvSubject(KVIndex, k)})
		}
	}
	return ws
}

// writeIndex writes index entries on their own, when they are not sent
// with the instance's other writes, and logs those that failed.
func (s *Service) writeIndex(ctx context.Context, ws []*jsWrite) {
	if len(ws) > 0 {
		s.writeAll(ctx, ws)
		s.indexed(ws)
	}
}

// indexed logs index entries that could not be written: the output is
// still right; only a later dataset request may not find this object by
// its study. A failed accession entry is forgotten, so the next instance
// of the study writes it.
func (s *Service) indexed(ws []*jsWrite) {
	for _, w := range ws {
		if w.err != nil {
			s.recent.forget(strings.TrimPrefix(w.subject, "$KV."+KVIndex+"."))
		}
	}
	s.logFailed("index", ws...)
}

// serveDatasetRequests answers deid.datasets.request (every process, one
// queue group): the request is recorded and queued, durably, before the
// reply names its id.
func (s *Service) serveDatasetRequests() (*nats.Subscription, error) {
	return s.nc.QueueSubscribe(SubjectDatasetRequest, "deid-datasets", func(m *nats.Msg) {
		reply := func(r DatasetReply) {
			b, _ := json.Marshal(r)
			m.Respond(b)
		}
		var req DatasetRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			reply(DatasetReply{Error: "malformed request"})
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.OpTimeout)
		defer cancel()
		id, state, err := s.acceptDataset(ctx, req)
		if err != nil {
			reply(DatasetReply{DatasetID: id, Error: err.Error()})
			return
		}
		reply(DatasetReply{DatasetID: id, State: state})
	})
}

// maxRequestEntries bounds the studies and prefixes of one dataset
// request: each is resolved by one worker in one job.
const maxRequestEntries = 50000

func (s *Service) acceptDataset(ctx context.Context, req DatasetRequest) (string, string, error) {
	if req.DatasetID == "" {
		req.DatasetID = NewDatasetID()
	}
	if !ValidJobID(req.DatasetID) {
		return "", "", errors.New("dataset ids are letters, digits, - and _ (at most 64)")
	}
	if s.cfg.Projects == nil {
		return req.DatasetID, "", errors.New("this service has no project store")
	}
	if req.Profile == "" {
		req.Profile = s.profile
	}
	if _, err := s.cfg.Projects.Engine(ctx, req.Project, req.Profile); err != nil {
		if errors.Is(err, ErrUnknownProject) || errors.Is(err, ErrUnknownProfile) {
			return req.DatasetID, "", err
		}
		s.log.Error("project store", zap.Error(err))
		return req.DatasetID, "", errors.New("the project store cannot be read now; try again later")
	}
	if req.Bucket == "" {
		req.Bucket = s.cfg.InBucket
	}
	if why := s.sourceBucket(req.Bucket); why != "" {
		return req.DatasetID, "", errors.New(why)
	}
	if len(req.Studies) == 0 && len(req.Prefixes) == 0 {
		return req.DatasetID, "", errors.New("no studies and no prefixes requested")
	}
	if len(req.Studies)+len(req.Prefixes) > maxRequestEntries {
		return req.DatasetID, "", fmt.Errorf("at most %d studies and prefixes in one request", maxRequestEntries)
	}
	for i, p := range req.Prefixes {
		if !s3name.ValidPrefix(p) {
			return req.DatasetID, "", fmt.Errorf("prefix #%d is not a valid object key prefix", i+1)
		}
	}
	for i, r := range req.Studies {
		if (r.StudyInstanceUID == "") == (r.AccessionNumber == "") {
			return req.DatasetID, "", fmt.Errorf("study #%d: give a Study Instance UID or an Accession Number", i+1)
		}
	}
	now := time.Now().UTC()
	st := JobState{JobID: req.DatasetID, Kind: "dataset", State: "queued", Project: req.Project, Profile: req.Profile,
		Bucket: req.Bucket, Requested: len(req.Studies) + len(req.Prefixes), Studies: map[string]int{}, Created: now, Updated: now}
	b, _ := json.Marshal(st)
	_, err := s.jobs.Create(ctx, jobKey(req.DatasetID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		cur, err := JobStatus(ctx, s.js, req.DatasetID)
		if err != nil {
			return req.DatasetID, "", err
		}
		if cur.Kind != "dataset" || cur.Project != req.Project {
			return req.DatasetID, "", errors.New("that id names another job")
		}
		return req.DatasetID, cur.State, nil // a retried request
	}
	if err != nil {
		return req.DatasetID, "", fmt.Errorf("record dataset: %w", err)
	}
	if _, err := s.jobs.Put(ctx, openKey(req.DatasetID), nil); err != nil {
		return req.DatasetID, "", err
	}
	rb, _ := json.Marshal(req)
	if err := s.publish(ctx, SubjectDatasetJobs, rb, "dataset/"+req.DatasetID); err != nil {
		return req.DatasetID, "", fmt.Errorf("queue dataset: %w", err)
	}
	s.audit(ctx, Audit{Event: "dataset.requested", JobID: req.DatasetID, InputBucket: req.Bucket,
		Reason: fmt.Sprintf("project %s, profile %s, %d studies, %d prefixes", req.Project, req.Profile, len(req.Studies), len(req.Prefixes))},
		"dataset.requested/"+req.DatasetID)
	return req.DatasetID, "queued", nil
}

// objectRef is a source object found for a requested position.
type objectRef struct {
	indexEntry
	position int
}

// handleDatasetJob resolves a queued dataset's studies and queues one job
// per instance.
func (s *Service) handleDatasetJob(ctx context.Context, data []byte) error {
	var req DatasetRequest
	if err := json.Unmarshal(data, &req); err != nil || !ValidJobID(req.DatasetID) {
		return permanent("malformed dataset job")
	}
	// Checked again: a dataset job is queued by acceptDataset, but the
	// work queue is only as trusted as whoever may publish to it.
	if why := s.sourceBucket(req.Bucket); why != "" {
		return permanent("dataset job: " + why)
	}
	for _, p := range req.Prefixes {
		if !s3name.ValidPrefix(p) {
			return permanent("dataset job: a prefix is not a valid object key prefix")
		}
	}
	st, err := JobStatus(ctx, s.js, req.DatasetID)
	if err != nil {
		return err
	}
	if st.Expanded {
		return nil // a redelivery after the expansion was recorded
	}
	var refs []objectRef
	var notFound []int
	seen := map[string]bool{}
	add := func(e indexEntry, pos int) {
		if k := e.Bucket + "/" + e.Key; !seen[k] {
			seen[k] = true
			refs = append(refs, objectRef{e, pos})
		}
	}
	for i, r := range req.Studies {
		found, err := s.resolveStudy(ctx, req.Bucket, r)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			notFound = append(notFound, i+1)
		}
		for _, e := range found {
			add(e, i+1)
		}
	}
	for k, p := range req.Prefixes {
		pos := len(req.Studies) + k + 1
		var objs []Object
		err := retry(ctx, s.cfg.OpTimeout, 3, func(ctx context.Context) error {
			var err error
			objs, err = s.store.List(ctx, req.Bucket, p)
			if errors.Is(err, ErrNoBucket) {
				return stopRetry{err}
			}
			return err
		})
		if err != nil && !errors.Is(err, ErrNoBucket) {
			return err
		}
		if len(objs) == 0 {
			notFound = append(notFound, pos)
		}
		for _, o := range objs {
			add(indexEntry{Bucket: req.Bucket, Key: o.Key, ETag: o.ETag}, pos)
		}
	}
	for _, r := range refs {
		b, _ := json.Marshal(InstanceJob{JobID: req.DatasetID, Bucket: r.Bucket, Key: r.Key, ETag: r.ETag,
			Dataset: true, Project: req.Project, Profile: req.Profile, Position: r.position})
		if err := s.publish(ctx, SubjectInstanceJobs, b, "dataset-instance/"+req.DatasetID+"/"+shortHash(r.Bucket+"/"+r.Key)); err != nil {
			return err
		}
	}
	st, err = s.updateJob(ctx, req.DatasetID, func(cur *JobState) bool {
		if cur.Expanded {
			return false
		}
		cur.Expanded, cur.Expected, cur.NotFound, cur.State = true, len(refs), notFound, "running"
		return true
	})
	if err != nil || st == nil {
		return err
	}
	s.log.Info("dataset expanded", zap.String("dataset", req.DatasetID), zap.Int("instances", len(refs)),
		zap.Int("not_found", len(notFound)))
	if !st.Complete && st.Done+st.Failed >= st.Expected {
		return s.completeJob(ctx, st)
	}
	return nil
}

// resolveStudy finds the indexed objects of a requested study in bucket.
func (s *Service) resolveStudy(ctx context.Context, bucket string, r StudyRef) ([]indexEntry, error) {
	var studies []string
	if r.StudyInstanceUID != "" {
		studies = []string{s.indexKey("study", strings.TrimSpace(r.StudyInstanceUID))}
	} else {
		ks, err := keys(ctx, s.idx, "accession."+s.indexKey("accession", strings.TrimSpace(r.AccessionNumber))+".*")
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			studies = append(studies, k[strings.LastIndexByte(k, '.')+1:])
		}
	}
	var out []indexEntry
	for _, study := range studies {
		ks, err := keys(ctx, s.idx, "study."+study+".*")
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			e, err := s.idx.Get(ctx, k)
			if err != nil {
				continue
			}
			var ie indexEntry
			if json.Unmarshal(e.Value(), &ie) == nil && ie.Bucket == bucket {
				out = append(out, ie)
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Key < out[b].Key })
	return out, nil
}

// completeDataset writes the manifest from the dataset's marks and
// announces the dataset.
func (s *Service) completeDataset(ctx context.Context, st *JobState) error {
	marks, err := keys(ctx, s.jobs, "done."+st.JobID+".*")
	if err != nil {
		return err
	}
	eng, err := s.cfg.Projects.Engine(ctx, st.Project, st.Profile)
	if err != nil {
		return err
	}
	m := Manifest{Schema: "dicomdeid.manifest/v1", DatasetID: st.JobID, Project: st.Project, Profile: eng.Profile().Name,
		StandardEdition: ps315.Edition, BurnedInText: eng.Profile().Text.EffectiveMode(), Tool: deid.ToolName, ToolVersion: deid.ImplementationVersionName,
		Created: time.Now().UTC(), Instances: []ManifestEntry{}}
	for o := ps315.Option(0); o < ps315.NumOptions; o++ {
		if eng.Profile().Options[o] {
			m.Options = append(m.Options, o.Key())
		}
	}
	delivered := map[int]bool{}
	notInLookup := map[int]bool{}
	var xw deid.CrosswalkRows
	patients, studies, series := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, k := range marks {
		e, err := s.jobs.Get(ctx, k)
		if err != nil {
			return err
		}
		var mk Mark
		if err := json.Unmarshal(e.Value(), &mk); err != nil {
			return err
		}
		switch {
		case mk.Entry != nil:
			m.Instances = append(m.Instances, *mk.Entry)
			xw.Add(mk.Crosswalk...)
			delivered[mk.Position] = true
			patients[mk.Entry.PatientID], studies[mk.Entry.StudyUID], series[mk.Entry.SeriesUID] = true, true, true
			m.Counts.Bytes += mk.Entry.Size
		case mk.Failed:
			m.Counts.FailedInstances++
			if mk.Kind == KindNotInLookup {
				notInLookup[mk.Position] = true
			}
		}
	}
	sort.Slice(m.Instances, func(a, b int) bool { return m.Instances[a].Key < m.Instances[b].Key })
	m.Counts.Patients, m.Counts.Studies, m.Counts.Series, m.Counts.Instances = len(patients), len(studies), len(series), len(m.Instances)
	m.Counts.RequestedStudies = st.Requested
	m.Counts.StudiesNotFound = st.NotFound
	for p := range notInLookup {
		if !delivered[p] {
			m.Counts.StudiesNotInTable = append(m.Counts.StudiesNotInTable, p)
		}
	}
	sort.Ints(m.Counts.StudiesNotInTable)
	var notDelivered []int
	for p := 1; p <= st.Requested; p++ {
		if !delivered[p] {
			notDelivered = append(notDelivered, p)
		}
	}

	prefix := "datasets/" + st.JobID + "/"
	js, _ := json.MarshalIndent(m, "", "  ")
	var cb bytes.Buffer
	w := csv.NewWriter(&cb)
	w.Write([]string{"patient_id", "study_uid", "series_uid", "sop_instance_uid", "sop_class_uid", "modality", "key", "size", "sha256"})
	for _, e := range m.Instances {
		w.Write([]string{e.PatientID, e.StudyUID, e.SeriesUID, e.SOPInstanceUID, e.SOPClassUID, e.Modality, e.Key,
			strconv.FormatInt(e.Size, 10), e.SHA256})
	}
	w.Flush()
	for name, body := range map[string][]byte{"manifest.json": js, "manifest.csv": cb.Bytes()} {
		body := body
		err := retry(ctx, s.cfg.OpTimeout*6, 4, func(ctx context.Context) error {
			return s.store.Put(ctx, s.cfg.OutBucket, prefix+name, bytes.NewReader(body), int64(len(body)),
				PutOptions{Meta: map[string]string{"deid-dataset": st.JobID}})
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	// The crosswalk re-identifies the delivery: it goes to the trusted
	// side, beside the quarantine notes, never to the anonymised bucket.
	crosswalk := ""
	if qb := s.cfg.QuarantineBucket; qb != "" {
		var xb bytes.Buffer
		if err := xw.WriteCSV(&xb); err != nil {
			return fmt.Errorf("crosswalk: %w", err)
		}
		body := xb.Bytes()
		err := retry(ctx, s.cfg.OpTimeout*6, 4, func(ctx context.Context) error {
			return s.store.Put(ctx, qb, prefix+"crosswalk.csv", bytes.NewReader(body), int64(len(body)),
				PutOptions{Meta: map[string]string{"deid-dataset": st.JobID}})
		})
		if err != nil {
			return fmt.Errorf("write crosswalk: %w", err)
		}
		crosswalk = qb + "/" + prefix + "crosswalk.csv"
	}
	ev, _ := json.Marshal(DatasetReady{Schema: EventsSchema, Time: time.Now().UTC(), DatasetID: st.JobID, Project: st.Project,
		Profile: m.Profile, Bucket: s.cfg.OutBucket, Prefix: prefix, Manifest: prefix + "manifest.json",
		ManifestCSV: prefix + "manifest.csv", Studies: len(studies), Instances: len(m.Instances), Failed: m.Counts.FailedInstances,
		NotFound: st.NotFound, NotInLookup: m.Counts.StudiesNotInTable, NotDelivered: notDelivered, Bytes: m.Counts.Bytes})
	if err := s.publish(ctx, SubjectDatasetReady, ev, "dataset-ready/"+st.JobID); err != nil {
		return err
	}
	_, err = s.updateJob(ctx, st.JobID, func(cur *JobState) bool {
		cur.State, cur.NotInLookup, cur.Manifest = "ready", m.Counts.StudiesNotInTable, prefix+"manifest.json"
		cur.Crosswalk = crosswalk
		return true
	})
	return err
}

// KindNotInLookup is the failure of an instance whose patient the
// project's lookup table does not list: not delivered, not quarantined.
const KindNotInLookup = "not-in-lookup"
