package embed

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// Errors of Local, by kind.
var (
	ErrNoSuchKey    = errors.New("no such key")
	ErrNoSuchBucket = errors.New("no such bucket")
	ErrExists       = errors.New("object already exists")
)

// Local is the embedded endpoint's objects for code in the same process
// (the service's own workers): the buckets, objects and metadata S3
// clients see, without a round trip through HTTP, request signing and
// body hashing. Objects created through Local are not announced: the
// workers write outputs, not inputs.
type Local struct{ st *objectStore }

// Local gives direct access to the endpoint's objects.
func (s *S3) Local() Local { return Local{s.be} }

// Get streams an object into w and returns its ETag and size.
func (l Local) Get(bucket, key string, w io.Writer) (etag string, size int64, err error) {
	obj, err := l.st.GetObject(bucket, key, nil)
	if err != nil {
		return "", 0, localErr(err)
	}
	defer obj.Contents.Close()
	n, err := io.Copy(w, obj.Contents)
	if err != nil {
		return "", 0, err
	}
	if n != obj.Size {
		return "", 0, fmt.Errorf("read %d of %d bytes", n, obj.Size)
	}
	return hex.EncodeToString(obj.Hash), n, nil
}

// Open opens an object to read in place; the file stays the object as
// opened even if a PUT replaces it meanwhile (a new file is renamed over
// the name, the open one is untouched).
func (l Local) Open(bucket, key string) (f *os.File, etag string, size int64, err error) {
	f, st, err := l.st.open(bucket, key)
	if err != nil {
		return nil, "", 0, localErr(err)
	}
	om, err := l.st.metaOf(f, bucket, key)
	if err != nil {
		f.Close()
		return nil, "", 0, localErr(err)
	}
	return f, hex.EncodeToString(om.Hash), st.Size(), nil
}

// Put stores size bytes from r as an application/dicom object with the
// given user metadata, as a PUT with x-amz-meta-* headers would; with
// create set only if the key is free (ErrExists otherwise).
func (l Local) Put(bucket, key string, r io.Reader, size int64, userMeta map[string]string, create bool) error {
	meta := map[string]string{"Content-Type": "application/dicom", "Last-Modified": time.Now().UTC().Format(http.TimeFormat)}
	for k, v := range userMeta {
		meta["X-Amz-Meta-"+textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	var cond *gofakes3.PutConditions
	if create {
		star := "*"
		cond = &gofakes3.PutConditions{IfNoneMatch: &star}
	}
	_, err := l.st.put(bucket, key, meta, r, size, cond, false)
	return localErr(err)
}

// Metadata returns an object's user metadata, keys in lower case without
// the x-amz-meta- prefix.
func (l Local) Metadata(bucket, key string) (map[string]string, error) {
	obj, err := l.st.HeadObject(bucket, key)
	if err != nil {
		return nil, localErr(err)
	}
	out := map[string]string{}
	for k, v := range obj.Metadata {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-meta-") {
			out[strings.TrimPrefix(lk, "x-amz-meta-")] = v
		}
	}
	return out, nil
}

// Copy copies an object with its metadata.
func (l Local) Copy(srcBucket, srcKey, dstBucket, dstKey string) error {
	obj, err := l.st.HeadObject(srcBucket, srcKey)
	if err != nil {
		return localErr(err)
	}
	_, err = l.st.CopyObject(srcBucket, srcKey, dstBucket, dstKey, obj.Metadata)
	return localErr(err)
}

// LocalObject is one listed object.
type LocalObject struct {
	Key, ETag string
	Size      int64
}

// List returns the objects whose keys start with prefix.
func (l Local) List(bucket, prefix string) ([]LocalObject, error) {
	list, err := l.st.ListBucket(bucket, &gofakes3.Prefix{Prefix: prefix, HasPrefix: prefix != ""}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, localErr(err)
	}
	out := make([]LocalObject, 0, len(list.Contents))
	for _, c := range list.Contents {
		out = append(out, LocalObject{Key: c.Key, ETag: strings.Trim(c.ETag, `"`), Size: c.Size})
	}
	return out, nil
}

// localErr turns the backend's S3 errors into Local's, naming no key.
func localErr(err error) error {
	switch {
	case err == nil:
		return nil
	case gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey):
		return ErrNoSuchKey
	case gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchBucket):
		return ErrNoSuchBucket
	case gofakes3.HasErrorCode(err, gofakes3.ErrPreconditionFailed):
		return ErrExists
	}
	var er gofakes3.Error
	if errors.As(err, &er) {
		return fmt.Errorf("object store: %s", er.ErrorCode())
	}
	// File paths hold keys, and keys can hold names.
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return fmt.Errorf("object store: %s: %w", pe.Op, pe.Err)
	case errors.As(err, &le):
		return fmt.Errorf("object store: %s: %w", le.Op, le.Err)
	}
	return err
}
