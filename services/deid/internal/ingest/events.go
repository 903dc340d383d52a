// Package ingest is the service's pipeline around the engine: it takes
// instance jobs from a NATS JetStream work queue (S3 object-created
// notifications, or jobs expanded from a submitted study prefix), reads the
// object, de-identifies and verifies it, writes the output to the
// anonymised bucket, publishes events, and only then acknowledges the job.
package ingest

import "time"

// Subjects. Public events carry pseudonymised identifiers only; audit
// events stay on the trusted side (they name input buckets and keys, which
// may contain patient names) and belong to operators.
const (
	SubjectObjects        = "deid.ingest.objects"         // S3 notifications (Records)
	SubjectStudyJobs      = "deid.jobs.study"             // {job_id, bucket, prefix}
	SubjectInstanceJobs   = "deid.jobs.instance"          // {job_id, bucket, key, etag}
	SubjectDatasetJobs    = "deid.jobs.dataset"           // a dataset request to resolve
	SubjectDatasetRequest = "deid.datasets.request"       // NATS request: DatasetRequest in, DatasetReply out
	SubjectDatasetReady   = "deid.events.dataset.ready"   // public
	SubjectInstanceDone   = "deid.events.instance.done"   // public
	SubjectInstanceFailed = "deid.events.instance.failed" // public
	SubjectStudyDone      = "deid.events.study.done"      // public
	SubjectJobDone        = "deid.events.job.done"        // public
	SubjectAudit          = "deid.audit."                 // + instance.done, instance.failed, job.*, dlq
	SubjectDLQPrefix      = "deid.dlq."                   // + original subject
)

// Stream, consumer and bucket names.
const (
	StreamIngest = "DEID_INGEST"
	StreamEvents = "DEID_EVENTS"
	StreamAudit  = "DEID_AUDIT"
	StreamDLQ    = "DEID_DLQ"
	ConsumerName = "deid-workers"
	KVStudies    = "DEID_STUDIES"
	KVJobs       = "DEID_JOBS"
	KVIndex      = "DEID_INDEX" // trusted side: source studies -> objects
	EventsSchema = "dicomdeid.event/v1"
)

// InstanceDone is published on deid.events.instance.done when an output
// is durable in the anonymised bucket.
type InstanceDone struct {
	Schema         string    `json:"schema"`
	Time           time.Time `json:"time"`
	JobID          string    `json:"job_id,omitempty"`
	StudyUID       string    `json:"study_uid"`
	SeriesUID      string    `json:"series_uid"`
	SOPInstanceUID string    `json:"sop_instance_uid"`
	SOPClassUID    string    `json:"sop_class_uid"`
	Bucket         string    `json:"bucket"`
	Key            string    `json:"key"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256"`
	Profile        string    `json:"profile"`
	Edition        string    `json:"standard_edition"`
	Counts         any       `json:"counts"`
	// PixelsExamined: the pixels were examined for burned-in text (false
	// when the profile opted out, or there are none); PixelsMasked: text
	// was masked.
	PixelsExamined bool `json:"pixels_examined"`
	PixelsMasked   bool `json:"pixels_masked"`
}

// InstanceFailed is published on deid.events.instance.failed when an
// input cannot be de-identified (permanently): it names the quarantine
// object by an opaque id, and gives a reason free of values.
type InstanceFailed struct {
	Schema       string    `json:"schema"`
	Time         time.Time `json:"time"`
	JobID        string    `json:"job_id,omitempty"`
	QuarantineID string    `json:"quarantine_id"`
	Bucket       string    `json:"quarantine_bucket,omitempty"`
	Kind         string    `json:"kind"` // parse, limit, unsupported, missing, residual, gone
	Reason       string    `json:"reason"`
	Profile      string    `json:"profile"`
}

// StudyDone is published on deid.events.study.done when a submitted
// prefix is complete, or when no new instance of a study arrived for the
// settle time.
type StudyDone struct {
	Schema    string    `json:"schema"`
	Time      time.Time `json:"time"`
	JobID     string    `json:"job_id,omitempty"`
	StudyUID  string    `json:"study_uid"`
	Bucket    string    `json:"bucket"`
	Prefix    string    `json:"prefix"`
	Instances int       `json:"instances"`
	Reason    string    `json:"reason"` // "submitted prefix complete" or "settled"
	Profile   string    `json:"profile"`
}

// JobDone is published on deid.events.job.done when every object of a
// submitted prefix is finished (written or failed). It names no input:
// the job id is the submitter's handle.
type JobDone struct {
	Schema    string    `json:"schema"`
	Time      time.Time `json:"time"`
	JobID     string    `json:"job_id"`
	Instances int       `json:"instances"` // objects found under the prefix
	Done      int       `json:"done"`
	Failed    int       `json:"failed"`
	Studies   []string  `json:"studies"` // pseudonymised Study Instance UIDs written
	Bucket    string    `json:"bucket"`
	Profile   string    `json:"profile"`
	// Error says why a job could not run at all (no such bucket...).
	Error string `json:"error,omitempty"`
}

// Audit is a trusted-side record on deid.audit.>: it links inputs to
// outputs and failures for operators.
type Audit struct {
	Schema       string    `json:"schema"`
	Time         time.Time `json:"time"`
	Event        string    `json:"event"`
	JobID        string    `json:"job_id,omitempty"`
	InputBucket  string    `json:"input_bucket,omitempty"`
	InputKey     string    `json:"input_key,omitempty"`
	InputETag    string    `json:"input_etag,omitempty"`
	OutputBucket string    `json:"output_bucket,omitempty"`
	OutputKey    string    `json:"output_key,omitempty"`
	QuarantineID string    `json:"quarantine_id,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Deliveries   uint64    `json:"deliveries,omitempty"`
}

// StudyJob is a request to de-identify every object under a prefix.
type StudyJob struct {
	JobID  string `json:"job_id"`
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
}

// InstanceJob is one object to de-identify.
type InstanceJob struct {
	JobID  string `json:"job_id,omitempty"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	ETag   string `json:"etag,omitempty"`
	// Dataset deliveries: the project and profile decide the engine, the
	// output goes under datasets/<job_id>/, Position is the requested
	// study's place in the request (1-based).
	Dataset  bool   `json:"dataset,omitempty"`
	Project  string `json:"project,omitempty"`
	Profile  string `json:"profile,omitempty"`
	Position int    `json:"position,omitempty"`
}
