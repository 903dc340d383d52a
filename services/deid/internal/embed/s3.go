package embed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	"go.uber.org/zap"
)

// S3Config configures the embedded S3-compatible endpoint.
type S3Config struct {
	// Dir holds the objects (Dir/buckets/<bucket>/<key>, plain files, their
	// ETag and metadata in an extended attribute; in Dir/metadata on a
	// filesystem without user attributes) and uploads in progress
	// (Dir/spool).
	Dir string
	// Listen is host:port (port 0: any free port).
	Listen string
	// AccessKey and SecretKey are the only credentials accepted (AWS
	// Signature Version 4, header-signed or presigned).
	AccessKey, SecretKey string
	// NotifyBuckets are the buckets whose object creations are announced.
	NotifyBuckets []string
	// Notify is called for every object created in a NotifyBucket (put,
	// copy, completed multipart upload) before the client gets its
	// answer: when it fails the client gets 503 and retries, so no
	// created object goes unannounced.
	Notify func(ctx context.Context, n Notification) error
	Logger *zap.Logger
}

// Notification is one object-created event, with Event in the AWS/MinIO
// `Records` JSON format that bucket notifications use.
type Notification struct {
	Bucket, Key, ETag string
	Size              int64
	Event             []byte
}

// S3 is a running embedded S3 endpoint.
type S3 struct {
	srv *http.Server
	ln  net.Listener
	be  *objectStore
	cfg S3Config
}

// StartS3 starts the endpoint; it serves until Close.
func StartS3(c S3Config) (*S3, error) {
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, errors.New("no credentials")
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	be, err := newObjectStore(c.Dir)
	if err != nil {
		return nil, err
	}
	fake := gofakes3.New(be, gofakes3.WithoutVersioning())
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	s := &S3{ln: ln, be: be, cfg: c}
	auth := &sigV4{access: c.AccessKey, secret: c.SecretKey, skew: 15 * time.Minute}
	s.srv = &http.Server{Handler: s.authenticate(auth, s.notify(dechunk(fake.Server()))), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Endpoint is the host:port clients use (plain HTTP).
func (s *S3) Endpoint() string { return s.ln.Addr().String() }

// Close stops the endpoint, letting requests in progress finish briefly.
func (s *S3) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// authenticate answers 403 (S3's AccessDenied) to anything not signed
// with the endpoint's credentials. The reason stays in the response, not
// in logs: object keys may carry patient names.
func (s *S3) authenticate(a *sigV4, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.verify(r); err != nil {
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
		next.ServeHTTP(w, r)
	})
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

// notify announces objects created in the notify buckets. The answer of
// such a request is held until the notification is stored, so a client
// told "created" can rely on the object being processed.
func (s *S3) notify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket, key, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		q := r.URL.Query()
		event := ""
		switch {
		case !ok || key == "" || s.cfg.Notify == nil || !slices.Contains(s.cfg.NotifyBuckets, bucket):
		case r.Method == http.MethodPut && q.Get("uploadId") == "" && r.Header.Get("X-Amz-Copy-Source") != "":
			event = "s3:ObjectCreated:Copy"
		case r.Method == http.MethodPut && q.Get("uploadId") == "":
			event = "s3:ObjectCreated:Put"
		case r.Method == http.MethodPost && q.Get("uploadId") != "":
			event = "s3:ObjectCreated:CompleteMultipartUpload"
		}
		if event == "" {
			next.ServeHTTP(w, r)
			return
		}
		rec := &heldResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusOK {
			if err := s.announce(r.Context(), bucket, key, event); err != nil {
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
	})
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

// dechunk decodes aws-chunked bodies (STREAMING-* payloads, as minio-go
// sends over plain HTTP) before gofakes3 sees them: gofakes3 decodes them
// for PutObject but stores the chunk framing of multipart parts
// (../../../../shared/research/infra.md). The signature was checked on
// the request; chunk signatures are not.
func dechunk(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
			next.ServeHTTP(w, r)
			return
		}
		n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || n < 0 {
			s3Error(w, http.StatusBadRequest, "MissingContentLength", "X-Amz-Decoded-Content-Length is required with a streaming payload")
			return
		}
		body := r.Body
		r.Body = io.NopCloser(io.LimitReader(&chunkReader{br: bufio.NewReader(body)}, n))
		r.ContentLength = n
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		r.Header.Del("X-Amz-Decoded-Content-Length")
		r.Header.Del("Content-Encoding")
		next.ServeHTTP(w, r)
		body.Close()
	})
}

// chunkReader reads the data of aws-chunked framing:
// hex-size[;chunk-signature=...]\r\n data \r\n ... 0[;...]\r\n [trailers].
type chunkReader struct {
	br   *bufio.Reader
	left int64
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.br.ReadString('\n')
		if err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue // the CRLF that ends the previous chunk
		}
		sz, err := strconv.ParseInt(strings.SplitN(line, ";", 2)[0], 16, 64)
		if err != nil || sz < 0 {
			return 0, errors.New("malformed aws-chunked body")
		}
		if sz == 0 {
			c.done = true
			return 0, io.EOF
		}
		c.left = sz
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if err == io.EOF && c.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Credentials are the embedded endpoint's access and secret keys.
type Credentials struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// EnsureCredentials reads DIR/s3-credentials.json, or creates it (mode
// 0600) with new random keys; created tells which.
func EnsureCredentials(dir string) (c Credentials, created bool, err error) {
	p := filepath.Join(dir, "s3-credentials.json")
	b, err := os.ReadFile(p)
	if err == nil {
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKey == "" || c.SecretKey == "" {
			return c, false, fmt.Errorf("%s: not a credentials file", p)
		}
		return c, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return c, false, err
	}
	c = Credentials{AccessKey: "deid" + randomHex(8), SecretKey: randomHex(20)}
	b, _ = json.MarshalIndent(c, "", "  ")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return c, false, err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return c, false, err
	}
	return c, true, f.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
