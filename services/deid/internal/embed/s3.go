package embed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/johannesboyne/gofakes3"
	"go.uber.org/zap"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/connlimit"
)

// S3Config configures the embedded S3-compatible endpoint.
type S3Config struct {
	// Dir holds the objects (Dir/buckets/<bucket>/<key>, plain files, their
	// ETag and metadata in an extended attribute; in Dir/metadata on a
	// filesystem without user attributes), PUTs in progress (Dir/spool)
	// and multipart uploads in progress (Dir/uploads).
	Dir string
	// Listen is host:port (port 0: any free port).
	Listen string
	// Credentials per role (AWS Signature Version 4, header-signed or
	// presigned); a role without credentials has no access. AccessKey and
	// SecretKey, when set, are the operator's.
	Credentials          RoleCredentials
	AccessKey, SecretKey string
	// Buckets says which bucket is the uploader's and which the reader's.
	Buckets Buckets
	// NotifyBuckets are the buckets whose object creations are announced.
	NotifyBuckets []string
	// Notify is called for every object created in a NotifyBucket (put,
	// copy, completed multipart upload) before the client gets its
	// answer: when it fails the client gets 503 and retries, so no
	// created object goes unannounced.
	Notify func(ctx context.Context, n Notification) error
	// Limits bound sizes, uploads in progress, connections and slow
	// clients; zero fields take their defaults.
	Limits Limits
	Logger *zap.Logger
}

// Limits of the embedded endpoint.
type Limits struct {
	// MaxObjectSize bounds an object, PUT or assembled from parts
	// (default DefaultMaxObjectSize; parts are at most 5 GiB, as in S3).
	MaxObjectSize int64
	// UploadExpiry is how long a multipart upload may stay unfinished
	// before it is removed, parts and all (default 24 h).
	UploadExpiry time.Duration
	// MaxUploads bounds the multipart uploads in progress (default 1000).
	MaxUploads int
	// MaxConns bounds the connections open at once (default 256); more
	// are closed as they arrive.
	MaxConns int
	// ReadHeaderTimeout bounds the wait for a request's headers (default
	// 10 s); IdleTimeout each read of a body or write of an answer
	// (default 30 s), and twice it a kept-alive connection's wait for its
	// next request.
	ReadHeaderTimeout, IdleTimeout time.Duration
	// MinRate is the average rate, in bytes a second, under which a body
	// or an answer is cut off once SlowGrace has passed (default 8 KiB/s
	// after 30 s).
	MinRate   float64
	SlowGrace time.Duration
}

func (l *Limits) defaults() {
	if l.MaxObjectSize <= 0 {
		l.MaxObjectSize = DefaultMaxObjectSize
	}
	if l.UploadExpiry <= 0 {
		l.UploadExpiry = 24 * time.Hour
	}
	if l.MaxUploads <= 0 {
		l.MaxUploads = 1000
	}
	if l.MaxConns <= 0 {
		l.MaxConns = 256
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 30 * time.Second
	}
	if l.MinRate <= 0 {
		l.MinRate = 8 << 10
	}
	if l.SlowGrace <= 0 {
		l.SlowGrace = 30 * time.Second
	}
}

// DefaultMaxObjectSize is the default bound of an object: twice the
// largest native (uncompressed) DICOM object, whose Pixel Data length is
// a 32-bit field (under 4 GiB); encapsulated objects (whole-slide base
// levels, long multi-frame series) can pass 4 GiB with fragments.
const DefaultMaxObjectSize = 8 << 30

// Notification is one object-created event, with Event in the AWS/MinIO
// `Records` JSON format that bucket notifications use.
type Notification struct {
	Bucket, Key, ETag string
	Size              int64
	Event             []byte
}

// S3 is a running embedded S3 endpoint.
type S3 struct {
	srv     *http.Server
	ln      net.Listener
	be      *objectStore
	uploads *uploads
	auth    *sigV4
	fake    http.Handler
	ctl     chan struct{} // XML bodies read at once
	cfg     S3Config
}

// StartS3 starts the endpoint; it serves until Close.
func StartS3(c S3Config) (*S3, error) {
	creds := RoleCredentials{}
	for r, cr := range c.Credentials {
		creds[r] = cr
	}
	if c.AccessKey != "" || c.SecretKey != "" {
		creds[RoleOperator] = Credentials{AccessKey: c.AccessKey, SecretKey: c.SecretKey}
	}
	if op := creds[RoleOperator]; op.AccessKey == "" || op.SecretKey == "" {
		return nil, errors.New("no operator credentials")
	}
	if err := creds.check(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	c.Limits.defaults()
	lim := c.Limits
	be, err := newObjectStore(c.Dir)
	if err != nil {
		return nil, err
	}
	ups, err := newUploads(filepath.Join(c.Dir, "uploads"), be, lim.MaxObjectSize, lim.MaxUploads, lim.UploadExpiry, c.Logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		ups.close()
		return nil, fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	s := &S3{ln: connlimit.Listen(ln, lim.MaxConns), be: be, uploads: ups, cfg: c, ctl: make(chan struct{}, 8),
		auth: newSigV4(creds, 15*time.Minute), fake: gofakes3.New(be, gofakes3.WithoutVersioning()).Server()}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: lim.ReadHeaderTimeout, IdleTimeout: 2 * lim.IdleTimeout,
		MaxHeaderBytes: 64 << 10, ErrorLog: log.New(io.Discard, "", 0)}
	go s.srv.Serve(s.ln)
	return s, nil
}

// Endpoint is the host:port clients use (plain HTTP).
func (s *S3) Endpoint() string { return s.ln.Addr().String() }

// Close stops the endpoint, letting requests in progress finish briefly.
func (s *S3) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.uploads.close()
	return err
}

// ServeHTTP answers one request, in this order: the signature (whose
// credential, hence which role); the request read as an S3 operation
// (names checked before anything touches the file system); the role's
// right to it; the body's checks and limits; then the operation, its
// answer held until the body proved whole and signed, and until the
// notification of a created input is stored. Refusals say why in the
// answer, never in the log, and never echo a name: object keys may
// carry patient names.
func (s *S3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lim := s.cfg.Limits
	p := newPace(w, lim.IdleTimeout, lim.SlowGrace, lim.MinRate)
	hasBody := r.ContentLength != 0
	defer p.end(hasBody)
	// The server looks at the request's own body once the handler is
	// done, to skip (close) rather than read what a refused request still
	// has to send.
	orig := r.Body
	defer func() { r.Body = orig }()
	r.Body = pacedBody{r.Body, p}
	w = pacedWriter{w, p}

	a, err := s.auth.verify(r)
	if err != nil {
		code := "AccessDenied"
		switch {
		case errors.Is(err, errSignature):
			code = "SignatureDoesNotMatch"
		case errors.Is(err, errAccessKey):
			code = "InvalidAccessKeyId"
		case errors.Is(err, errRequestTime):
			code = "RequestTimeTooSkewed"
		}
		s3Error(w, http.StatusForbidden, code, err.Error())
		return
	}
	q, rerr := route(r)
	if rerr != nil {
		writeErr(w, rerr)
		return
	}
	if !allowed(a.role, q, s.cfg.Buckets) {
		s3Error(w, http.StatusForbidden, "AccessDenied", "the "+a.role.String()+" role may not do this")
		return
	}
	if a.presigned && hasBody {
		writeErr(w, errUnsignedBody)
		return
	}
	st, berr := prepareBody(r, a, q, bodyLimits{object: lim.MaxObjectSize, part: s.uploads.maxPart}, s.ctl)
	if berr != nil {
		writeErr(w, berr)
		return
	}
	if q.act == actPutObject && createOnly(a.role) {
		// Create-only: never over an existing object (a resend of the same
		// bytes succeeds, objects.go).
		r.Header.Del("If-Match")
		r.Header.Set("If-None-Match", "*")
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if q.act == actListParts || q.act == actListUploads {
			if e := s.serveUpload(w, r, q, a.role); e != nil {
				writeErr(w, e)
			}
			return
		}
		s.fake.ServeHTTP(w, r)
		return
	}
	// A change: its answer is small (XML at most), held until the body
	// proved whole and the creation is announced.
	rec := &heldResponse{header: http.Header{}, status: http.StatusOK}
	switch q.act {
	case actCreateUpload, actUploadPart, actCompleteUpload, actAbortUpload:
		if e := s.serveUpload(rec, r, q, a.role); e != nil {
			rec = &heldResponse{header: http.Header{}}
			writeErr(rec, e)
		}
	default:
		s.fake.ServeHTTP(rec, r)
	}
	if e := st.failure(); e != nil {
		// gofakes3 has dropped what it wrote (its answer: an internal
		// error); the client hears why.
		writeErr(w, e)
		return
	}
	if event, ok := q.creates(); ok && rec.status == http.StatusOK && s.cfg.Notify != nil && slices.Contains(s.cfg.NotifyBuckets, q.bucket) {
		if err := s.announce(r.Context(), q.bucket, q.key, event); err != nil {
			s.cfg.Logger.Warn("object stored but its notification was not: the client is told to retry", zap.Error(err))
			s3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", "notification not stored; retry")
			return
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}

func writeErr(w http.ResponseWriter, e *s3Err) { s3Error(w, e.status, e.code, e.msg) }

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

// announce builds the notification from the stored object (its ETag as
// GET will report it) and hands it to Notify.
func (s *S3) announce(ctx context.Context, bucket, key, event string) error {
	obj, err := s.be.HeadObject(bucket, key)
	if err != nil {
		return fmt.Errorf("head created object: %w", err)
	}
	etag := hex.EncodeToString(obj.Hash)
	now := time.Now().UTC()
	rec := map[string]any{
		"eventVersion": "2.1", "eventSource": "dicomdeid:s3", "awsRegion": "us-east-1",
		"eventTime": now.Format("2006-01-02T15:04:05.000Z"), "eventName": event,
		"s3": map[string]any{
			"s3SchemaVersion": "1.0",
			"bucket":          map[string]any{"name": bucket, "arn": "arn:aws:s3:::" + bucket},
			"object": map[string]any{"key": url.QueryEscape(key), "size": obj.Size, "eTag": etag,
				"sequencer": strconv.FormatInt(now.UnixNano(), 16)},
		},
	}
	// MinIO's top-level fields too, for consumers written against it.
	b, err := json.Marshal(map[string]any{"EventName": event, "Key": bucket + "/" + key, "Records": []any{rec}})
	if err != nil {
		return err
	}
	return s.cfg.Notify(ctx, Notification{Bucket: bucket, Key: key, ETag: etag, Size: obj.Size, Event: b})
}

// heldResponse records a small response (headers, status, an XML body at
// most) to send after the notification.
type heldResponse struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }
func (h *heldResponse) WriteHeader(code int) {
	if !h.wrote {
		h.status, h.wrote = code, true
	}
}
func (h *heldResponse) Write(p []byte) (int, error) {
	h.wrote = true
	return h.body.Write(p)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
