package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
)

// Progress is kept in two JetStream key-value buckets, on the trusted side
// (never published as events):
//
//	DEID_JOBS     job.<id>            JobState of a submitted prefix
//	              open.<id>           present while the job is not complete
//	              done.<id>.<input>   one mark per finished input (Mark)
//	DEID_STUDIES  study.<uid'>        StudyState of a notification-fed study
//	              inst.<uid'>.<input> one mark per instance written
//
// <input> is an opaque hash of bucket, key and ETag; <uid'> a
// pseudonymised Study Instance UID. A mark is created once, so a
// redelivered job never counts twice; counters in the records are kept
// with compare-and-set, and a sweeper recounts the marks of a job that
// went idle without completing (a worker that died between its mark and
// its count), so every job completes exactly once.

// JobState is a submitted prefix's progress.
type JobState struct {
	JobID string `json:"job_id"`
	// Kind is "prefix" (deid submit) or "dataset" (a dataset request).
	Kind string `json:"kind"`
	// State is queued (dataset not resolved yet), running, ready
	// (dataset delivered) or complete (prefix job finished).
	State    string         `json:"state"`
	Bucket   string         `json:"bucket"`
	Prefix   string         `json:"prefix"`
	Expected int            `json:"expected"`
	Done     int            `json:"done"`
	Failed   int            `json:"failed"`
	Studies  map[string]int `json:"studies"` // pseudonymised Study UID -> instances written
	Complete bool           `json:"complete"`
	Error    string         `json:"error,omitempty"` // why the job could not run
	Created  time.Time      `json:"created"`
	Updated  time.Time      `json:"updated"`
	// Expanded is set once the objects to process are known (Expected).
	Expanded bool `json:"expanded"`
	// Datasets: the project and profile, how many studies or prefixes the
	// request named, the positions (1-based) found nowhere and those whose
	// patient the lookup table lacks, and the manifest's key.
	Project     string `json:"project,omitempty"`
	Profile     string `json:"profile,omitempty"`
	Requested   int    `json:"requested,omitempty"`
	NotFound    []int  `json:"not_found,omitempty"`
	NotInLookup []int  `json:"not_in_lookup,omitempty"`
	Manifest    string `json:"manifest,omitempty"`
	// Crosswalk is where the dataset's id_old,id_new rows are, in the
	// quarantine bucket (trusted side): "bucket/key".
	Crosswalk string `json:"crosswalk,omitempty"`
	// Failures are the failed inputs by kind, counted with Failed.
	Failures map[string]FailedInputs `json:"failures,omitempty"`
}

// FailedInputs are a job's failed inputs of one kind.
type FailedInputs struct {
	Count int `json:"count"`
	// Positions are the request positions (datasets) they came from,
	// each once, in order.
	Positions []int `json:"positions,omitempty"`
}

// addFailure counts a failed input of kind from request position pos
// (0: none).
func (st *JobState) addFailure(kind string, pos int) {
	if st.Failures == nil {
		st.Failures = map[string]FailedInputs{}
	}
	f := st.Failures[kind]
	f.Count++
	if pos > 0 {
		if i, found := slices.BinarySearch(f.Positions, pos); !found {
			f.Positions = slices.Insert(f.Positions, i, pos)
		}
	}
	st.Failures[kind] = f
}

// Mark is one finished input of a job.
type Mark struct {
	Study  string `json:"study,omitempty"`
	Failed bool   `json:"failed,omitempty"`
	Kind   string `json:"kind,omitempty"` // of a failure
	// Datasets: the requested position and the manifest row.
	Position int            `json:"position,omitempty"`
	Entry    *ManifestEntry `json:"entry,omitempty"`
	// Crosswalk: the delivered instance's input identifiers and what
	// replaced them (trusted side, like the rest of the marks).
	Crosswalk []deid.IDPair `json:"crosswalk,omitempty"`
}

// StudyState is a notification-fed study: when its last instance arrived.
type StudyState struct {
	Last time.Time `json:"last"`
}

func jobKey(id string) string         { return "job." + id }
func openKey(id string) string        { return "open." + id }
func markKey(id, input string) string { return "done." + id + "." + input }

// ValidJobID tells whether id can name a job: letters, digits, '-' and
// '_', at most 64 characters (it becomes part of key-value keys and
// Msg-Ids).
func ValidJobID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// JobStatus reads a job's progress (for deid submit --wait and operators).
func JobStatus(ctx context.Context, js jetstream.JetStream, id string) (*JobState, error) {
	kv, err := js.KeyValue(ctx, KVJobs)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, jobKey(id))
	if err != nil {
		return nil, err
	}
	var st JobState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// createJob records a submitted prefix once; a redelivered study job finds
// it recorded.
func (s *Service) createJob(ctx context.Context, j StudyJob, expected int) error {
	now := time.Now().UTC()
	st := JobState{JobID: j.JobID, Kind: "prefix", State: "running", Bucket: j.Bucket, Prefix: j.Prefix, Expected: expected,
		Expanded: true, Studies: map[string]int{}, Created: now, Updated: now}
	b, _ := json.Marshal(st)
	return retry(ctx, s.cfg.OpTimeout, 3, func(ctx context.Context) error {
		if _, err := s.jobs.Put(ctx, openKey(j.JobID), nil); err != nil {
			return err
		}
		_, err := s.jobs.Create(ctx, jobKey(j.JobID), b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil
		}
		return err
	})
}

// track records a finished input: in its submitted job or dataset, or in
// its study.
func (s *Service) track(ctx context.Context, j InstanceJob, mk Mark) error {
	if j.JobID != "" {
		mk.Position = j.Position
		w := s.markWrite(j, mk)
		s.writeAll(ctx, []*jsWrite{w})
		return s.marked(j, mk, w)
	}
	study := mk.Study
	if mk.Failed || study == "" {
		return nil
	}
	input := shortHash(j.Bucket + "/" + j.Key + "/" + j.ETag)
	return retry(ctx, s.cfg.OpTimeout, 3, func(ctx context.Context) error {
		if _, err := s.studies.Put(ctx, "inst."+study+"."+input, nil); err != nil {
			return err
		}
		b, _ := json.Marshal(StudyState{Last: time.Now().UTC()})
		_, err := s.studies.Put(ctx, "study."+study, b)
		return err
	})
}

// markWrite is the durable mark of a finished input of a submitted job or
// dataset (mk.Position set): a key-value create, so that an input
// delivered twice is counted once.
func (s *Service) markWrite(j InstanceJob, mk Mark) *jsWrite {
	mb, _ := json.Marshal(mk)
	return &jsWrite{subject: kvSubject(KVJobs, markKey(j.JobID, shortHash(j.Bucket+"/"+j.Key+"/"+j.ETag))), data: mb, create: true}
}

// marked hands a written mark to the counting loop, which folds the marks
// of all this process's workers into one compare-and-set per job and round
// (they would otherwise contend for the record). A mark that existed was
// counted by an earlier delivery (or is recounted by the sweeper), as is a
// count lost with the process.
func (s *Service) marked(j InstanceJob, mk Mark, w *jsWrite) error {
	if w.err != nil {
		return fmt.Errorf("record finished input: %w", w.err)
	}
	if !w.exists {
		s.counts <- countDelta{job: j.JobID, mark: mk}
	}
	return nil
}

// countDelta is one finished input to add to its job's counters.
type countDelta struct {
	job  string
	mark Mark
}

// countLoop applies finished inputs to their jobs' counters every few
// milliseconds, and completes the jobs that are finished. A job whose
// pending marks would finish it, by its record as last written here, is
// applied at once: the last instance's mark completes the job without
// waiting for the next round. It returns once in is closed and everything
// received is applied.
func (s *Service) countLoop(in <-chan countDelta) {
	pending := map[string][]Mark{}
	// What each job still needs, as of this process's last write of its
	// record: other processes' marks only make the true figure smaller,
	// so this never completes a job early; it only sends the last marks
	// sooner.
	left := map[string]int{}
	apply := func(id string, marks []Mark) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.OpTimeout)
		defer cancel()
		st, err := s.updateJob(ctx, id, func(st *JobState) bool {
			for _, mk := range marks {
				if mk.Failed {
					st.Failed++
					st.addFailure(mk.Kind, mk.Position)
				} else {
					st.Done++
					st.Studies[mk.Study]++
				}
			}
			return true
		})
		delete(left, id)
		if err == nil && st != nil && st.Expanded && !st.Complete {
			if st.Done+st.Failed >= st.Expected {
				err = s.completeJob(ctx, st)
			} else if len(left) < 4096 {
				left[id] = st.Expected - st.Done - st.Failed
			}
		}
		if err != nil {
			s.log.Warn("job progress not recorded; the sweeper will recount it", zap.String("job", id), zap.Error(err))
		}
	}
	flush := func() {
		for id, marks := range pending {
			apply(id, marks)
			delete(pending, id)
		}
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case d, ok := <-in:
			if !ok {
				flush()
				return
			}
			pending[d.job] = append(pending[d.job], d.mark)
			if n, ok := left[d.job]; ok && len(pending[d.job]) >= n {
				apply(d.job, pending[d.job])
				delete(pending, d.job)
			}
		case <-t.C:
			flush()
		}
	}
}

// updateJob applies f to a job record with compare-and-set (several
// workers finish inputs of one job at the same moment). It returns the
// record as written, or nil when the job is unknown.
func (s *Service) updateJob(ctx context.Context, id string, f func(*JobState) bool) (*JobState, error) {
	for attempt := 0; attempt < 50; attempt++ {
		var st JobState
		var rev uint64
		err := retry(ctx, s.cfg.OpTimeout, 3, func(ctx context.Context) error {
			e, err := s.jobs.Get(ctx, jobKey(id))
			if err != nil {
				if errors.Is(err, jetstream.ErrKeyNotFound) {
					return stopRetry{err}
				}
				return err
			}
			rev = e.Revision()
			return json.Unmarshal(e.Value(), &st)
		})
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read job: %w", err)
		}
		if st.Studies == nil {
			st.Studies = map[string]int{}
		}
		if !f(&st) {
			return &st, nil
		}
		st.Updated = time.Now().UTC()
		b, _ := json.Marshal(st)
		uctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		_, err = s.jobs.Update(uctx, jobKey(id), b, rev)
		cancel()
		if err == nil {
			return &st, nil
		}
		time.Sleep(time.Duration(attempt%10+1) * 5 * time.Millisecond)
	}
	return nil, errors.New("update job: too much contention")
}

// completeJob announces a finished job: study.done for each study it
// wrote, job.done, then marks it complete. Announcements carry Msg-Ids,
// so two workers (or a worker and the sweeper) completing the same job
// publish each event once.
func (s *Service) completeJob(ctx context.Context, st *JobState) error {
	if st.Kind == "dataset" {
		if err := s.completeDataset(ctx, st); err != nil {
			return err
		}
		return s.closeJob(ctx, st)
	}
	studies := make([]string, 0, len(st.Studies))
	for uid := range st.Studies {
		studies = append(studies, uid)
	}
	sort.Strings(studies)
	for _, uid := range studies {
		ev, _ := json.Marshal(StudyDone{Schema: EventsSchema, Time: time.Now().UTC(), JobID: st.JobID, StudyUID: uid,
			Bucket: s.cfg.OutBucket, Prefix: uid + "/", Instances: st.Studies[uid],
			Reason: "submitted prefix complete", Profile: s.profile})
		if err := s.publish(ctx, SubjectStudyDone, ev, "study-done/"+st.JobID+"/"+uid); err != nil {
			return err
		}
		s.countStudy()
	}
	ev, _ := json.Marshal(JobDone{Schema: EventsSchema, Time: time.Now().UTC(), JobID: st.JobID, Instances: st.Expected,
		Done: st.Done, Failed: st.Failed, Studies: studies, Bucket: s.cfg.OutBucket, Profile: s.profile})
	if err := s.publish(ctx, SubjectJobDone, ev, "job-done/"+st.JobID); err != nil {
		return err
	}
	s.audit(ctx, Audit{Event: "job.done", JobID: st.JobID, InputBucket: st.Bucket, InputKey: st.Prefix,
		Reason: fmt.Sprintf("%d done, %d failed of %d", st.Done, st.Failed, st.Expected)}, "job.done/"+st.JobID)
	s.log.Info("job complete", zap.String("job", st.JobID), zap.Int("done", st.Done), zap.Int("failed", st.Failed),
		zap.Int("studies", len(studies)))
	return s.closeJob(ctx, st)
}

// closeJob marks a job complete once its announcements are out.
func (s *Service) closeJob(ctx context.Context, st *JobState) error {
	if _, err := s.updateJob(ctx, st.JobID, func(cur *JobState) bool {
		if cur.Complete {
			return false
		}
		cur.Complete = true
		if cur.State != "ready" {
			cur.State = "complete"
		}
		return true
	}); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	s.jobs.Delete(dctx, openKey(st.JobID))
	return nil
}

func (s *Service) countStudy() {
	if s.m != nil {
		s.m.Studies.Inc()
	}
}

// sweep runs the periodic work every process shares: settle studies fed
// by notifications, and complete submitted jobs whose last count was lost.
func (s *Service) sweep(ctx context.Context) {
	every := max(min(s.cfg.StudySettle/4, 5*time.Second), 200*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.settleStudies(ctx)
			s.reconcileJobs(ctx)
		}
	}
}

// keys lists the distinct keys matching a filter.
func keys(ctx context.Context, kv jetstream.KeyValue, filter string) ([]string, error) {
	kl, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, err
	}
	defer kl.Stop()
	seen := map[string]bool{}
	var out []string
	for k := range kl.Keys() {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, ctx.Err()
}

// settleStudies publishes study.done for studies with no new instance for
// StudySettle, counting their marks. The Msg-Id holds the count: a study
// that grows later is announced again with its new total.
func (s *Service) settleStudies(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 4*s.cfg.OpTimeout)
	defer cancel()
	studies, err := keys(lctx, s.studies, "study.>")
	if err != nil {
		return
	}
	for _, k := range studies {
		e, err := s.studies.Get(lctx, k)
		if err != nil {
			continue
		}
		var st StudyState
		if json.Unmarshal(e.Value(), &st) != nil || time.Since(st.Last) < s.cfg.StudySettle {
			continue
		}
		uid := strings.TrimPrefix(k, "study.")
		marks, err := keys(lctx, s.studies, "inst."+uid+".*")
		if err != nil || len(marks) == 0 {
			continue
		}
		ev, _ := json.Marshal(StudyDone{Schema: EventsSchema, Time: time.Now().UTC(), StudyUID: uid,
			Bucket: s.cfg.OutBucket, Prefix: uid + "/", Instances: len(marks), Reason: "settled", Profile: s.profile})
		if err := s.publish(lctx, SubjectStudyDone, ev, fmt.Sprintf("study-done/%s/%d", uid, len(marks))); err != nil {
			s.log.Warn("study.done not published; will retry", zap.Error(err))
			continue
		}
		s.countStudy()
		// Only if nothing arrived meanwhile; else the next sweep announces again.
		s.studies.Delete(lctx, k, jetstream.LastRevision(e.Revision()))
	}
}

// reconcileJobs recounts the marks of open jobs idle for a while and
// completes those that are finished.
func (s *Service) reconcileJobs(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 4*s.cfg.OpTimeout)
	defer cancel()
	open, err := keys(lctx, s.jobs, "open.*")
	if err != nil {
		return
	}
	idle := max(s.cfg.StudySettle, 5*time.Second)
	for _, k := range open {
		id := strings.TrimPrefix(k, "open.")
		st, err := JobStatus(lctx, s.js, id)
		if err != nil {
			continue
		}
		if st.Complete {
			s.jobs.Delete(lctx, k)
			continue
		}
		if !st.Expanded || time.Since(st.Updated) < idle {
			continue
		}
		marks, err := keys(lctx, s.jobs, "done."+id+".*")
		if err != nil {
			continue
		}
		done, failed, studies := 0, 0, map[string]int{}
		var failures JobState // only its Failures
		for _, mk := range marks {
			e, err := s.jobs.Get(lctx, mk)
			if err != nil {
				continue
			}
			var m Mark
			if json.Unmarshal(e.Value(), &m) != nil {
				continue
			}
			if m.Failed {
				failed++
				failures.addFailure(m.Kind, m.Position)
			} else {
				done++
				studies[m.Study]++
			}
		}
		st, err = s.updateJob(lctx, id, func(cur *JobState) bool {
			if cur.Complete || cur.Done == done && cur.Failed == failed {
				return false
			}
			cur.Done, cur.Failed, cur.Studies, cur.Failures = done, failed, studies, failures.Failures
			return true
		})
		if err != nil || st == nil || st.Complete || st.Done+st.Failed < st.Expected {
			continue
		}
		if err := s.completeJob(lctx, st); err != nil {
			s.log.Warn("job completion not announced; will retry", zap.String("job", id), zap.Error(err))
		}
	}
}

// JobFailures reads a job's failed inputs by failure kind, from its
// record: reading the record needs only its id, which is all a submitter
// may do (listing the marks is not).
func JobFailures(ctx context.Context, js jetstream.JetStream, id string) (map[string]FailedInputs, error) {
	st, err := JobStatus(ctx, js, id)
	if err != nil {
		return nil, err
	}
	if st.Failures == nil {
		return map[string]FailedInputs{}, nil
	}
	return st.Failures, nil
}

// ListJobs reads every job and dataset record (for operators: an
// auditor's or an admin's credentials).
func ListJobs(ctx context.Context, js jetstream.JetStream) ([]*JobState, error) {
	var out []*JobState
	err := scanBucket(ctx, js, KVJobs, "job.*", func(_ string, v []byte) {
		var st JobState
		if json.Unmarshal(v, &st) == nil {
			out = append(out, &st)
		}
	})
	return out, err
}
