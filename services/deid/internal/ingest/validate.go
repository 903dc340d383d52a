package ingest

import (
	"errors"
	"strings"
	"unicode/utf8"
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

// ValidBucketName tells whether b follows the S3 bucket naming rules: 3 to
// 63 characters, lowercase letters, digits, dots and hyphens, beginning
// and ending with a letter or digit, no two adjacent dots, no dot next to
// a hyphen, not shaped like an IPv4 address. "." and ".." are not names.
func ValidBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(b[0]) || !alnum(b[len(b)-1]) {
		return false
	}
	digitsAndDots := true
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case alnum(c):
			if c > '9' {
				digitsAndDots = false
			}
		case c == '-':
			digitsAndDots = false
			if b[i-1] == '.' || b[i+1] == '.' {
				return false
			}
		case c == '.':
			if b[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return !(digitsAndDots && strings.Count(b, ".") == 3)
}

// maxKeyLen is S3's limit on an object key, in bytes.
const maxKeyLen = 1024

// ValidObjectKey tells whether k can name an input: 1 to 1024 bytes of
// UTF-8, no control characters, not starting with "/", and no "." or ".."
// path segment (an object store that keeps objects as files could resolve
// them outside the bucket). Hospital exports do not name files so.
func ValidObjectKey(k string) bool {
	return k != "" && validKeyish(k)
}

// ValidPrefix is ValidObjectKey for a listing prefix, which may be empty
// (the whole bucket) and may end with "/".
func ValidPrefix(p string) bool {
	return p == "" || validKeyish(strings.TrimSuffix(p, "/"))
}

func validKeyish(k string) bool {
	if len(k) > maxKeyLen || !utf8.ValidString(k) || strings.HasPrefix(k, "/") || strings.Contains(k, "\\") {
		return false
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// sourceBucket reports why a job may not read bucket b, or "" when it may:
// b must be a valid name, not the output or quarantine bucket, and one of
// the buckets the operator named as sources (the input bucket and
// Config.SourceBuckets).
func (s *Service) sourceBucket(b string) string {
	switch {
	case !ValidBucketName(b):
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
