package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
)

// Store is the object store as the worker sees it.
type Store interface {
	// Get streams an object into w and returns its ETag and size.
	Get(ctx context.Context, bucket, key string, w io.Writer) (etag string, size int64, err error)
	// Put stores size bytes from r as o says.
	Put(ctx context.Context, bucket, key string, r io.Reader, size int64, o PutOptions) error
	// Metadata returns an object's user metadata, keys in lower case.
	Metadata(ctx context.Context, bucket, key string) (map[string]string, error)
	// Copy copies an object within the store.
	Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string) error
	// List returns the objects under a prefix.
	List(ctx context.Context, bucket, prefix string) ([]Object, error)
}

// PutOptions says how Put stores an object.
type PutOptions struct {
	Meta map[string]string // user metadata
	// Create stores only if no object has the key, and reports ErrExists
	// otherwise (a conditional PUT: If-None-Match: *).
	Create bool
	// SHA256, the hex SHA-256 of the bytes when the caller has it: an S3
	// request is then signed with it (the server checks the bytes against
	// it) instead of hashing the bytes a second time.
	SHA256 string
}

// Opener is a Store that can hand out an object to read in place (the
// embedded endpoint's files, in the worker's process), sparing the copy
// into memory. The object must stay as it was opened until closed, even
// if it is replaced meanwhile.
type Opener interface {
	Open(ctx context.Context, bucket, key string) (r ReadAtCloser, etag string, size int64, err error)
}

// ReadAtCloser is an object opened in place.
type ReadAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Object is one listed object.
type Object struct {
	Key  string
	ETag string
	Size int64
}

// Errors a Store reports by kind.
var (
	ErrNotFound = errors.New("object not found")
	ErrExists   = errors.New("object already exists")
	ErrNoBucket = errors.New("no such bucket")
)

// MinioStore is a Store over any S3-compatible endpoint (AWS S3, MinIO,
// versitygw, the embedded endpoint) through minio-go.
type MinioStore struct {
	C *minio.Client
	// UnsignedPayload sends object bodies without a payload signature
	// (the request itself is still signed): for the embedded endpoint in
	// the same process, where hashing every body buys nothing.
	UnsignedPayload bool
	// Waiting, when set, is told (once) that EnsureBuckets is waiting for
	// a server that does not answer yet, so that a wrong endpoint shows in
	// the log before the startup window ends.
	Waiting func(err error)
}

// Get implements Store.
func (s MinioStore) Get(ctx context.Context, bucket, key string, w io.Writer) (string, int64, error) {
	obj, err := s.C.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("get object: %w", classify(err))
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("get object: %w", classify(err))
	}
	if e, ok := w.(interface{ Expect(int64) }); ok { // a spool: sized, or a file for a large object
		e.Expect(st.Size)
	}
	n, err := io.Copy(w, obj)
	if err != nil {
		return "", 0, fmt.Errorf("get object: %w", classify(err))
	}
	if n != st.Size {
		return "", 0, fmt.Errorf("get object: read %d of %d bytes", n, st.Size)
	}
	return st.ETag, n, nil
}

// Put implements Store.
func (s MinioStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, o PutOptions) error {
	opts := minio.PutObjectOptions{
		UserMetadata: o.Meta, ContentType: "application/dicom",
		// One streamed PUT up to S3's single-PUT limit: memory stays flat
		// (multipart buffers whole parts) and a retry rewrites the object
		// whole.
		DisableMultipart:     size <= 5<<30,
		DisableContentSha256: s.UnsignedPayload,
	}
	if o.Create {
		opts.SetMatchETagExcept("*")
	}
	var err error
	if o.SHA256 != "" && !s.UnsignedPayload && opts.DisableMultipart {
		// One PUT signed with the digest the caller already has: the
		// client would otherwise hash every byte again for a streaming
		// signature. The server still checks the bytes against it.
		opts.DisableContentSha256 = true // no streaming signature
		_, err = minio.Core{Client: s.C}.PutObject(ctx, bucket, key, r, size, "", o.SHA256, opts)
	} else {
		_, err = s.C.PutObject(ctx, bucket, key, r, size, opts)
	}
	if err != nil {
		return fmt.Errorf("put object: %w", classify(err))
	}
	return nil
}

// Metadata implements Store.
func (s MinioStore) Metadata(ctx context.Context, bucket, key string) (map[string]string, error) {
	st, err := s.C.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("stat object: %w", classify(err))
	}
	out := map[string]string{}
	for k, v := range st.UserMetadata {
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

// Copy implements Store.
func (s MinioStore) Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string) error {
	_, err := s.C.CopyObject(ctx, minio.CopyDestOptions{Bucket: dstBucket, Object: dstKey},
		minio.CopySrcOptions{Bucket: srcBucket, Object: srcKey})
	if err != nil {
		return fmt.Errorf("copy object: %w", classify(err))
	}
	return nil
}

// List implements Store.
func (s MinioStore) List(ctx context.Context, bucket, prefix string) ([]Object, error) {
	var out []Object
	for o := range s.C.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list objects: %w", classify(o.Err))
		}
		out = append(out, Object{Key: o.Key, ETag: o.ETag, Size: o.Size})
	}
	return out, nil
}

// EnsureBuckets creates missing buckets.
func (s MinioStore) EnsureBuckets(ctx context.Context, names ...string) error {
	told := false
	for _, b := range names {
		err := untilReady(ctx, func(err error) {
			if s.Waiting != nil && !told {
				told = true
				s.Waiting(classify(err))
			}
		}, func() error {
			ok, err := s.C.BucketExists(ctx, b)
			if err != nil || ok {
				return err
			}
			err = s.C.MakeBucket(ctx, b, minio.MakeBucketOptions{})
			if er := minio.ToErrorResponse(err); er.Code == "BucketAlreadyOwnedByYou" || er.Code == "BucketAlreadyExists" {
				return nil // another worker made it meanwhile
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("bucket %s: %w", b, classify(err))
		}
	}
	return nil
}

// untilReady retries op, until ctx ends, while the server is starting,
// busy or not answering yet: HTTP 503 (MinIO answers
// XMinioServerNotInitialized for a moment after its health check turns
// ready), or a connection refused or timed out (an S3 server restarting
// while this worker starts). Other errors return at once. waiting is
// called with each error waited out.
func untilReady(ctx context.Context, waiting func(error), op func() error) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := op()
		var ne *net.OpError
		if minio.ToErrorResponse(err).StatusCode != http.StatusServiceUnavailable && !errors.As(err, &ne) {
			return err
		}
		waiting(err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// classify turns a client error into one that names no bucket, key or
// URL (object keys may hold patient names, and errors reach logs), keeping
// what tells a retry from a permanent failure.
// NotifyOnCreate sets a MinIO bucket notification: every object created
// in bucket is sent to the target ARN (a NATS JetStream target publishing
// on deid.ingest.objects).
func (s MinioStore) NotifyOnCreate(ctx context.Context, bucket, arn string) error {
	a, err := notification.NewArnFromString(arn)
	if err != nil {
		return err
	}
	q := notification.NewConfig(a)
	q.AddEvents(notification.ObjectCreatedAll)
	var cfg notification.Configuration
	cfg.AddQueue(q)
	if err := s.C.SetBucketNotification(ctx, bucket, cfg); err != nil {
		return classify(err)
	}
	return nil
}

func classify(err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.Code == "NoSuchKey":
			return ErrNotFound
		case er.Code == "NoSuchBucket":
			return ErrNoBucket
		case er.StatusCode == http.StatusNotFound:
			return ErrNotFound
		case er.StatusCode == http.StatusPreconditionFailed || er.Code == "PreconditionFailed":
			return ErrExists
		}
		return fmt.Errorf("S3 error %s (HTTP %d)", er.Code, er.StatusCode)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("S3 request: %s: %w", ue.Op, ue.Err)
	}
	return err
}
