package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/embed"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
)

// localStore is ingest's Store over the embedded endpoint's objects, for
// the workers in its process: the single-machine default reads inputs
// and writes outputs without sending every byte through HTTP to itself.
// Other processes (deid submit, S3 clients) still use the endpoint.
type localStore struct{ l embed.Local }

func (s localStore) Get(ctx context.Context, bucket, key string, w io.Writer) (string, int64, error) {
	etag, n, err := s.l.Get(bucket, key, w)
	return etag, n, storeErr("get object", err)
}

func (s localStore) Open(ctx context.Context, bucket, key string) (ingest.ReadAtCloser, string, int64, error) {
	f, etag, n, err := s.l.Open(bucket, key)
	if err != nil {
		return nil, "", 0, storeErr("open object", err)
	}
	return f, etag, n, nil
}

func (s localStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, o ingest.PutOptions) error {
	return storeErr("put object", s.l.Put(bucket, key, r, size, o.Meta, o.Create))
}

func (s localStore) Metadata(ctx context.Context, bucket, key string) (map[string]string, error) {
	m, err := s.l.Metadata(bucket, key)
	return m, storeErr("stat object", err)
}

func (s localStore) Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string) error {
	return storeErr("copy object", s.l.Copy(srcBucket, srcKey, dstBucket, dstKey))
}

func (s localStore) List(ctx context.Context, bucket, prefix string) ([]ingest.Object, error) {
	objs, err := s.l.List(bucket, prefix)
	if err != nil {
		return nil, storeErr("list objects", err)
	}
	out := make([]ingest.Object, len(objs))
	for i, o := range objs {
		out[i] = ingest.Object{Key: o.Key, ETag: o.ETag, Size: o.Size}
	}
	return out, nil
}

// storeErr maps embed's errors onto ingest's kinds.
func storeErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, embed.ErrNoSuchKey):
		return fmt.Errorf("%s: %w", op, ingest.ErrNotFound)
	case errors.Is(err, embed.ErrNoSuchBucket):
		return fmt.Errorf("%s: %w", op, ingest.ErrNoBucket)
	case errors.Is(err, embed.ErrExists):
		return fmt.Errorf("%s: %w", op, ingest.ErrExists)
	}
	return fmt.Errorf("%s: %w", op, err)
}
