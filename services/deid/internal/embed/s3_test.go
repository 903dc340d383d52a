package embed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
)

type recorder struct {
	mu    sync.Mutex
	got   []Notification
	fails int // next calls to fail
}

func (r *recorder) notify(_ context.Context, n Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return errors.New("store down")
	}
	r.got = append(r.got, n)
	return nil
}

func (r *recorder) list() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.got...)
}

func startTestS3(t *testing.T, rec *recorder) (*S3, *minio.Client) {
	t.Helper()
	s, err := StartS3(S3Config{Dir: t.TempDir(), Listen: "127.0.0.1:0", AccessKey: "deidtest", SecretKey: "secret-0123456789",
		NotifyBuckets: []string{"incoming"}, Notify: rec.notify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mc, err := minio.New(s.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4("deidtest", "secret-0123456789", "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, b := range []string{"incoming", "other"} {
		if err := mc.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return s, mc
}

// The embedded endpoint answers only requests signed with its credentials.
func TestS3RefusesWhatIsNotSignedWithItsKeys(t *testing.T) {
	s, mc := startTestS3(t, &recorder{})
	ctx := context.Background()
	if _, err := mc.PutObject(ctx, "incoming", "a.dcm", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("signed put: %v", err)
	}
	cases := []struct {
		name, access, secret, code string
	}{
		{"wrong secret", "deidtest", "not-the-secret", "SignatureDoesNotMatch"},
		{"other access key", "someone", "secret-0123456789", "InvalidAccessKeyId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad, _ := minio.New(s.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(c.access, c.secret, ""), Region: "us-east-1"})
			var err error
			for o := range bad.ListObjects(ctx, "incoming", minio.ListObjectsOptions{}) {
				err = o.Err
			}
			if got := minio.ToErrorResponse(err).Code; got != c.code {
				t.Fatalf("error code %q (%v), want %s", got, err, c.code)
			}
			if _, err := bad.PutObject(ctx, "incoming", "b.dcm", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
				t.Fatal("put with bad credentials accepted")
			}
		})
	}
	// Anonymous HTTP.
	for _, u := range []string{"/incoming/a.dcm", "/", "/incoming"} {
		resp, err := http.Get("http://" + s.Endpoint() + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("anonymous GET %s: %d, want 403", u, resp.StatusCode)
		}
	}
	// A presigned URL works until it expires.
	pu, err := mc.PresignedGetObject(ctx, "incoming", "a.dcm", time.Minute, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(pu.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "x" {
		t.Errorf("presigned GET: %d %q", resp.StatusCode, body)
	}
	q := pu.Query()
	q.Set("X-Amz-Expires", "120") // tampered: the signature covers it
	pu.RawQuery = q.Encode()
	resp, err = http.Get(pu.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered presigned GET: %d, want 403", resp.StatusCode)
	}
}

// Objects round-trip byte for byte, whatever way they were uploaded.
func TestS3RoundTrips(t *testing.T) {
	_, mc := startTestS3(t, &recorder{})
	ctx := context.Background()
	big := make([]byte, 21<<20+17) // multipart: three parts of minio-go's minimum
	rand.Read(big)
	cases := []struct {
		name string
		key  string
		data []byte
		opts minio.PutObjectOptions
		size int64
	}{
		{"small", "Müller Jürgen/IM 0001.dcm", []byte("DICM small"), minio.PutObjectOptions{}, 10},
		{"single streamed put", "one/big.dcm", big, minio.PutObjectOptions{DisableMultipart: true}, int64(len(big))},
		{"multipart", "multi/big.dcm", big, minio.PutObjectOptions{PartSize: 5 << 20}, int64(len(big))},
		{"unknown size", "stream/big.dcm", big, minio.PutObjectOptions{PartSize: 5 << 20}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := mc.PutObject(ctx, "other", c.key, bytes.NewReader(c.data), c.size, c.opts); err != nil {
				t.Fatalf("put: %v", err)
			}
			o, err := mc.GetObject(ctx, "other", c.key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.data) {
				t.Fatalf("got %d bytes back, want the %d put", len(got), len(c.data))
			}
		})
	}
	// Listing under a prefix, recursively.
	for prefix, want := range map[string]int{"": 4, "multi/": 1, "Müller Jürgen/": 1, "none/": 0} {
		n := 0
		for o := range mc.ListObjects(ctx, "other", minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			n++
		}
		if n != want {
			t.Errorf("listed %d objects under %q, want %d", n, prefix, want)
		}
	}
}

// Every object created in a notify bucket is announced once, in the
// Records format, before the client hears "created"; parts and other
// buckets are not announced.
func TestS3AnnouncesCreatedObjects(t *testing.T) {
	rec := &recorder{}
	_, mc := startTestS3(t, rec)
	ctx := context.Background()
	big := make([]byte, 11<<20)
	rand.Read(big)
	if _, err := mc.PutObject(ctx, "incoming", "Doe Jane/a.dcm", strings.NewReader("aaaa"), 4, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "incoming", "b.dcm", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "other", "c.dcm", strings.NewReader("cc"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "incoming", Object: "copied/c.dcm"},
		minio.CopySrcOptions{Bucket: "other", Object: "c.dcm"}); err != nil {
		t.Fatal(err)
	}
	got := rec.list()
	want := []struct {
		key, event string
		size       int64
	}{
		{"Doe Jane/a.dcm", "s3:ObjectCreated:Put", 4},
		{"b.dcm", "s3:ObjectCreated:CompleteMultipartUpload", int64(len(big))},
		{"copied/c.dcm", "s3:ObjectCreated:Copy", 2},
	}
	if len(got) != len(want) {
		t.Fatalf("%d notifications, want %d", len(got), len(want))
	}
	for i, w := range want {
		n := got[i]
		var ev struct {
			Records []struct {
				EventName string `json:"eventName"`
				S3        struct {
					Bucket struct{ Name string } `json:"bucket"`
					Object struct {
						Key  string `json:"key"`
						Size int64  `json:"size"`
						ETag string `json:"eTag"`
					} `json:"object"`
				} `json:"s3"`
			}
		}
		if err := json.Unmarshal(n.Event, &ev); err != nil || len(ev.Records) != 1 {
			t.Fatalf("notification %d is not a Records event: %v", i, err)
		}
		r := ev.Records[0]
		key, _ := url.QueryUnescape(r.S3.Object.Key)
		if r.EventName != w.event || r.S3.Bucket.Name != "incoming" || key != w.key || r.S3.Object.Size != w.size || n.Key != w.key {
			t.Errorf("notification %d: %s %s/%s (%d bytes), want %s incoming/%s (%d)", i, r.EventName, r.S3.Bucket.Name, key, r.S3.Object.Size, w.event, w.key, w.size)
		}
		st, err := mc.StatObject(ctx, "incoming", w.key, minio.StatObjectOptions{})
		if err != nil || strings.Trim(st.ETag, `"`) != r.S3.Object.ETag {
			t.Errorf("notification %d: eTag %s, GET reports %s (%v)", i, r.S3.Object.ETag, st.ETag, err)
		}
	}
}

// When the notification cannot be stored the client is told to retry
// (503), and its retry is announced: no created object goes unannounced.
func TestS3NotificationFailureMakesTheClientRetry(t *testing.T) {
	rec := &recorder{fails: 2}
	_, mc := startTestS3(t, rec)
	if _, err := mc.PutObject(context.Background(), "incoming", "x.dcm", strings.NewReader("xx"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put (retried by the client): %v", err)
	}
	if got := rec.list(); len(got) != 1 || got[0].Key != "x.dcm" {
		t.Fatalf("notifications %v, want x.dcm once", got)
	}
}

// An upload that stops halfway leaves nothing behind.
func TestS3IncompleteUploadLeavesNoObject(t *testing.T) {
	s, mc := startTestS3(t, &recorder{})
	// A signed PUT whose body ends early: minio-go cannot be made to do
	// that, so sign one by hand with a reader that fails.
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.Endpoint()+"/other/half.dcm", io.MultiReader(strings.NewReader("abc"), failingReader{}))
	req.ContentLength = 100
	signed := signForTest(t, req, "deidtest", "secret-0123456789", strings.Repeat("ab", 32))
	if resp, err := http.DefaultClient.Do(signed); err == nil {
		resp.Body.Close()
	}
	if _, err := mc.StatObject(context.Background(), "other", "half.dcm", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Fatalf("half-uploaded object: stat error %v, want NoSuchKey", err)
	}
	// Nothing left in the spool either, once the server saw the
	// connection end.
	var left []string
	for i := 0; i < 100; i++ {
		if left, _ = filepath.Glob(filepath.Join(s.cfg.Dir, "spool", "*", "*")); len(left) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) != 0 {
		t.Errorf("spool holds %d files", len(left))
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("client went away") }

// signForTest signs a request as minio-go would, with payload as its
// X-Amz-Content-Sha256.
func signForTest(t *testing.T, req *http.Request, access, secret, payload string) *http.Request {
	t.Helper()
	req.Header.Set("X-Amz-Content-Sha256", payload)
	return signer.SignV4(*req, access, secret, "", "us-east-1")
}
