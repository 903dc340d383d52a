package ingest

import (
	"errors"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
)

// A job names what a worker reads: a bucket and a key (or a prefix). Jobs
// arrive from clients (submitted prefixes, dataset requests), from the
// object store (notifications) and from the service itself (instance
// jobs), so each name is checked where it is used, whatever its source:
// a bucket that is not a valid S3 name (".", "..", "a/b") can reach a
// store's own folders, and a bucket other than the sources the operator
// configured can hold anything, quarantined originals included.

// ErrUnknownProject and ErrUnknownProfile are what an EngineSource
// returns for a project or a profile it does not have. Their texts go to
// clients as they are: they name nothing.
var (
	ErrUnknownProject = errors.New("no such project")
	ErrUnknownProfile = errors.New("profile is not registered with this service")
)

// KindRefused is the failure of a job that names a bucket or key this
// service does not read: nothing was read, nothing quarantined.
const KindRefused = "refused"

// sourceBucket reports why a job may not read bucket b, or "" when it may:
// b must be a valid name, not the output or quarantine bucket, and one of
// the buckets the operator named as sources (the input bucket and
// Config.SourceBuckets).
func (s *Service) sourceBucket(b string) string {
	switch {
	case !s3name.ValidBucket(b):
		return "the bucket is not a valid S3 bucket name"
	case b == s.cfg.OutBucket || b == s.cfg.QuarantineBucket:
		return "the bucket holds this service's outputs, not inputs"
	case b == s.cfg.InBucket:
		return ""
	}
	for _, sb := range s.cfg.SourceBuckets {
		if b == sb {
			return ""
		}
	}
	return "the bucket is not a source of this service (--in-bucket, --source-buckets)"
}
