package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// SubjectJobStatus is the NATS request a submitter asks a job's progress
// on: JobStatusRequest in, JobStatusReply out. It is outside every
// stream's subjects (a request is answered, never stored).
//
// Why a request and not a read of the job bucket: a job's record names
// its input bucket and prefix (hospitals name prefixes after patients)
// and where the dataset's crosswalk is; a bucket a submitter may read
// lets it list every job (stream info by subject) and read them all. The
// workers answer with the counts only.
const SubjectJobStatus = "deid.status.job"

// JobStatusRequest asks the progress of one job or dataset.
type JobStatusRequest struct {
	JobID string `json:"job_id"`
}

// JobStatusReply is a job's progress without any value of its inputs:
// no bucket, no prefix or key, no study identifier. Found is false for an id no job has (yet).
type JobStatusReply struct {
	Found     bool   `json:"found"`
	JobID     string `json:"job_id,omitempty"`
	Kind      string `json:"kind,omitempty"`
	State     string `json:"state,omitempty"`
	Project   string `json:"project,omitempty"`
	Profile   string `json:"profile,omitempty"`
	Expanded  bool   `json:"expanded,omitempty"`
	Expected  int    `json:"expected"`
	Done      int    `json:"done"`
	Failed    int    `json:"failed"`
	Studies   int    `json:"studies"` // studies written
	Complete  bool   `json:"complete"`
	JobError  string `json:"job_error,omitempty"` // why the job could not run (value-free, as in its public event)
	Requested int    `json:"requested,omitempty"`
	NotFound  []int  `json:"not_found,omitempty"`
	// Failures are the failed inputs by kind and request position.
	Failures map[string]FailedInputs `json:"failures,omitempty"`
	// Manifest is the delivered dataset's manifest key in the anonymised
	// bucket.
	Manifest string `json:"manifest,omitempty"`
	// Crosswalk is where the dataset's crosswalk is, in the quarantine
	// bucket (a location named by the dataset id, readable by the
	// object store's operator only).
	Crosswalk string `json:"crosswalk,omitempty"`
	// Error is why the request could not be answered.
	Error string `json:"error,omitempty"`
}

// PublicStatus is what of a job's record its submitter is told.
func PublicStatus(st *JobState) JobStatusReply {
	return JobStatusReply{Found: true, JobID: st.JobID, Kind: st.Kind, State: st.State, Project: st.Project, Profile: st.Profile,
		Expanded: st.Expanded, Expected: st.Expected, Done: st.Done, Failed: st.Failed, Studies: len(st.Studies),
		Complete: st.Complete, JobError: st.Error, Requested: st.Requested, NotFound: st.NotFound,
		Failures: st.Failures, Manifest: st.Manifest, Crosswalk: st.Crosswalk}
}

// serveJobStatus answers deid.status.job (every process, one queue
// group).
func (s *Service) serveJobStatus() (*nats.Subscription, error) {
	return s.nc.QueueSubscribe(SubjectJobStatus, "deid-status", func(m *nats.Msg) {
		reply := func(r JobStatusReply) {
			b, _ := json.Marshal(r)
			m.Respond(b)
		}
		var req JobStatusRequest
		if err := json.Unmarshal(m.Data, &req); err != nil || !ValidJobID(req.JobID) {
			reply(JobStatusReply{Error: "malformed request: give a job id (letters, digits, - and _, at most 64)"})
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
		defer cancel()
		st, err := JobStatus(ctx, s.js, req.JobID)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			reply(JobStatusReply{JobID: req.JobID})
		case err != nil:
			s.log.Warn("job status", zap.Error(err))
			reply(JobStatusReply{JobID: req.JobID, Error: "the job records cannot be read now; try again later"})
		default:
			reply(PublicStatus(st))
		}
	})
}

// ErrNoSuchJob: no job has the id (or it is not recorded yet).
var ErrNoSuchJob = errors.New("no such job")

// RequestJobStatus asks the service a job's progress (deid submit --wait,
// deid dataset status).
func RequestJobStatus(nc *nats.Conn, id string, timeout time.Duration) (*JobStatusReply, error) {
	b, _ := json.Marshal(JobStatusRequest{JobID: id})
	m, err := nc.Request(SubjectJobStatus, b, timeout)
	if err != nil {
		return nil, err
	}
	var r JobStatusReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, errors.New("malformed job status reply")
	}
	if r.Error != "" {
		return nil, errors.New(r.Error)
	}
	if !r.Found {
		return nil, ErrNoSuchJob
	}
	return &r, nil
}
