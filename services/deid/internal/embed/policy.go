package embed

// Buckets names the service's buckets, whose role each is.
type Buckets struct {
	// Input receives uploads (and is announced); Output holds the
	// de-identified copies; Quarantine the inputs that failed and their
	// notes.
	Input, Output, Quarantine string
}

// allowed is the role policy of the embedded endpoint. The operator may
// do anything. The uploader may create objects in the input bucket, in
// one PUT or a multipart upload (and list, or abort, the parts of an
// upload it started: the upload id, random, is the capability), and ask
// the bucket's location (minio-go does before its first request); it
// cannot read, list or stat any object, its own uploads included: keys
// name patients, and every uploader of a site shares the bucket. Nor can
// it overwrite what exists (the handler makes its PUTs and completions
// create-only). The reader may read and list the output bucket. Copies
// need read on the source, which leaves them to the operator.
func allowed(role Role, q s3Request, b Buckets) bool {
	switch role {
	case RoleOperator:
		return true
	case RoleUploader:
		if q.bucket != b.Input {
			return false
		}
		switch q.act {
		case actPutObject, actCreateUpload, actUploadPart, actCompleteUpload, actAbortUpload, actListParts,
			actBucketLocation, actHeadBucket:
			return true
		}
	case RoleReader:
		if q.bucket != b.Output {
			return false
		}
		switch q.act {
		case actGetObject, actHeadObject, actListObjects, actBucketLocation, actHeadBucket:
			return true
		}
	}
	return false
}

// createOnly tells whether the role's writes may only create: every role
// but the operator's (an uploader resending the same bytes is answered
// as if it had created them, a retry after a lost answer must not fail).
func createOnly(role Role) bool { return role != RoleOperator }
