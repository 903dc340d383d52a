package embed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// The credentials and buckets of the role tests.
var testRoles = RoleCredentials{
	RoleUploader: {AccessKey: "test-uploader", SecretKey: "uploader-secret-0123456789"},
	RoleReader:   {AccessKey: "test-reader", SecretKey: "reader-secret-0123456789"},
	RoleOperator: {AccessKey: "test-operator", SecretKey: "operator-secret-0123456789"},
}

var testBuckets = Buckets{Input: "incoming", Output: "outputs", Quarantine: "quarantine"}

type roleS3 struct {
	s   *S3
	rec *recorder
	mc  map[Role]*minio.Client
}

func startRoleS3(t *testing.T, lim Limits) *roleS3 {
	t.Helper()
	rec := &recorder{}
	s, err := StartS3(S3Config{Dir: t.TempDir(), Listen: "127.0.0.1:0", Credentials: testRoles, Buckets: testBuckets,
		NotifyBuckets: []string{testBuckets.Input}, Notify: rec.notify, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rs := &roleS3{s: s, rec: rec, mc: map[Role]*minio.Client{}}
	for _, r := range Roles {
		c := testRoles[r]
		mc, err := minio.New(s.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: "us-east-1", MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		rs.mc[r] = mc
	}
	for _, b := range []string{testBuckets.Input, testBuckets.Output, testBuckets.Quarantine} {
		if err := rs.mc[RoleOperator].MakeBucket(context.Background(), b, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return rs
}

// put stores an object as the operator.
func (rs *roleS3) put(t *testing.T, bucket, key, body string) {
	t.Helper()
	if _, err := rs.mc[RoleOperator].PutObject(context.Background(), bucket, key, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// read returns an object's bytes as the operator sees them ("" and false
// if there is none).
func (rs *roleS3) read(t *testing.T, bucket, key string) (string, bool) {
	t.Helper()
	o, err := rs.mc[RoleOperator].GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// tree lists every file and folder under the endpoint's directory, with
// sizes: what a refused request must leave as it was.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, _ := e.Info()
		rel, _ := filepath.Rel(dir, p)
		if info != nil {
			out = append(out, fmt.Sprintf("%s %d %v", rel, info.Size(), e.IsDir()))
		}
		return nil
	})
	return out
}

// Each role does what it may and nothing else: the uploader creates in
// the input bucket only (cannot read, list, overwrite, delete or copy,
// nor touch buckets); the reader reads and lists the output bucket only;
// the operator does everything. Every refusal is AccessDenied, leaves
// every object as it was and announces nothing.
func TestS3RolesDoOnlyWhatTheyMay(t *testing.T) {
	rs := startRoleS3(t, Limits{})
	ctx := context.Background()
	rs.put(t, "incoming", "Doe Jane/1.dcm", "input one")
	rs.put(t, "outputs", "2.25.1/2.25.2/2.25.3.dcm", "output one")
	rs.put(t, "quarantine", "q1.dcm", "quarantined input")
	rs.put(t, "quarantine", "q1.json", `{"input_key":"Doe Jane/1.dcm"}`)
	announced := len(rs.rec.list())

	type op struct {
		name string
		do   func(mc *minio.Client) error
	}
	get := func(b, k string) op {
		return op{"GET " + b + "/" + k, func(mc *minio.Client) error {
			o, err := mc.GetObject(ctx, b, k, minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			_, err = io.ReadAll(o)
			return err
		}}
	}
	head := func(b, k string) op {
		return op{"HEAD " + b + "/" + k, func(mc *minio.Client) error {
			_, err := mc.StatObject(ctx, b, k, minio.StatObjectOptions{})
			return err
		}}
	}
	list := func(b string) op {
		return op{"LIST " + b, func(mc *minio.Client) error {
			for o := range mc.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true}) {
				if o.Err != nil {
					return o.Err
				}
			}
			return nil
		}}
	}
	put := func(b, k string) op {
		return op{"PUT " + b + "/" + k, func(mc *minio.Client) error {
			_, err := mc.PutObject(ctx, b, k, strings.NewReader("identifiable!"), 13, minio.PutObjectOptions{})
			return err
		}}
	}
	del := func(b, k string) op {
		return op{"DELETE " + b + "/" + k, func(mc *minio.Client) error {
			return mc.RemoveObject(ctx, b, k, minio.RemoveObjectOptions{})
		}}
	}
	copyOp := func(sb, sk, db, dk string) op {
		return op{"COPY " + sb + "/" + sk + " -> " + db + "/" + dk, func(mc *minio.Client) error {
			_, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: db, Object: dk}, minio.CopySrcOptions{Bucket: sb, Object: sk})
			return err
		}}
	}
	makeB := op{"MAKE BUCKET", func(mc *minio.Client) error { return mc.MakeBucket(ctx, "newbucket", minio.MakeBucketOptions{}) }}
	removeB := func(b string) op {
		return op{"REMOVE BUCKET " + b, func(mc *minio.Client) error { return mc.RemoveBucket(ctx, b) }}
	}
	listB := op{"LIST BUCKETS", func(mc *minio.Client) error { _, err := mc.ListBuckets(ctx); return err }}

	denied := map[Role][]op{
		RoleUploader: {
			get("quarantine", "q1.dcm"), get("quarantine", "q1.json"), head("quarantine", "q1.dcm"), list("quarantine"),
			get("incoming", "Doe Jane/1.dcm"), head("incoming", "Doe Jane/1.dcm"), list("incoming"),
			get("outputs", "2.25.1/2.25.2/2.25.3.dcm"), list("outputs"),
			put("outputs", "2.25.1/2.25.2/2.25.3.dcm"), del("outputs", "2.25.1/2.25.2/2.25.3.dcm"),
			del("incoming", "Doe Jane/1.dcm"), put("quarantine", "q1.json"),
			copyOp("quarantine", "q1.dcm", "incoming", "copied.dcm"), copyOp("incoming", "Doe Jane/1.dcm", "incoming", "again.dcm"),
			makeB, removeB("incoming"), removeB("outputs"), listB,
		},
		RoleReader: {
			put("outputs", "2.25.1/2.25.2/2.25.3.dcm"), put("outputs", "new.dcm"), del("outputs", "2.25.1/2.25.2/2.25.3.dcm"),
			put("incoming", "x.dcm"), get("incoming", "Doe Jane/1.dcm"), list("incoming"),
			get("quarantine", "q1.dcm"), get("quarantine", "q1.json"), list("quarantine"),
			copyOp("outputs", "2.25.1/2.25.2/2.25.3.dcm", "outputs", "copy.dcm"),
			makeB, removeB("outputs"), listB,
		},
	}
	for _, role := range []Role{RoleUploader, RoleReader} {
		for _, o := range denied[role] {
			t.Run(role.String()+" "+o.name, func(t *testing.T) {
				err := o.do(rs.mc[role])
				if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" {
					t.Fatalf("got %v (code %q), want AccessDenied", err, code)
				}
			})
		}
	}
	// Nothing changed, nothing was created, nothing announced.
	for _, c := range []struct{ b, k, want string }{{"incoming", "Doe Jane/1.dcm", "input one"},
		{"outputs", "2.25.1/2.25.2/2.25.3.dcm", "output one"}, {"quarantine", "q1.dcm", "quarantined input"}} {
		if got, ok := rs.read(t, c.b, c.k); !ok || got != c.want {
			t.Errorf("%s/%s is now %q (%v)", c.b, c.k, got, ok)
		}
	}
	for _, c := range []struct{ b, k string }{{"incoming", "copied.dcm"}, {"incoming", "again.dcm"}, {"outputs", "new.dcm"},
		{"outputs", "copy.dcm"}, {"incoming", "x.dcm"}} {
		if _, ok := rs.read(t, c.b, c.k); ok {
			t.Errorf("%s/%s was created", c.b, c.k)
		}
	}
	if ok, _ := rs.mc[RoleOperator].BucketExists(ctx, "newbucket"); ok {
		t.Error("a bucket was created")
	}
	if n := len(rs.rec.list()); n != announced {
		t.Errorf("%d notifications from refused requests", n-announced)
	}

	// What they may do, they can.
	up, rd := rs.mc[RoleUploader], rs.mc[RoleReader]
	if _, err := up.PutObject(ctx, "incoming", "Doe John/2.dcm", strings.NewReader("input two"), 9, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("uploader PUT: %v", err)
	}
	big := make([]byte, 11<<20)
	rand.Read(big)
	if _, err := up.PutObject(ctx, "incoming", "Doe John/big.dcm", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatalf("uploader multipart upload: %v", err)
	}
	// A resend of the same bytes (a retry after a lost answer) succeeds;
	// other bytes under an existing key do not replace them.
	if _, err := up.PutObject(ctx, "incoming", "Doe John/2.dcm", strings.NewReader("input two"), 9, minio.PutObjectOptions{}); err != nil {
		t.Errorf("uploader resending the same bytes: %v", err)
	}
	_, err := up.PutObject(ctx, "incoming", "Doe Jane/1.dcm", strings.NewReader("overwritten"), 11, minio.PutObjectOptions{})
	if code := minio.ToErrorResponse(err).Code; code != "PreconditionFailed" {
		t.Errorf("uploader overwriting an input: %v (%s), want PreconditionFailed", err, code)
	}
	other := bytes.Clone(big)
	other[0] ^= 1
	_, err = up.PutObject(ctx, "incoming", "Doe John/big.dcm", bytes.NewReader(other), int64(len(other)), minio.PutObjectOptions{PartSize: 5 << 20})
	if code := minio.ToErrorResponse(err).Code; code != "PreconditionFailed" {
		t.Errorf("uploader overwriting an input by multipart: %v (%s), want PreconditionFailed", err, code)
	}
	if got, _ := rs.read(t, "incoming", "Doe Jane/1.dcm"); got != "input one" {
		t.Errorf("input overwritten: %q", got)
	}
	if got, _ := rs.read(t, "incoming", "Doe John/big.dcm"); got != string(big) {
		t.Error("multipart input overwritten")
	}
	if err := get("outputs", "2.25.1/2.25.2/2.25.3.dcm").do(rd); err != nil {
		t.Errorf("reader GET: %v", err)
	}
	if err := list("outputs").do(rd); err != nil {
		t.Errorf("reader LIST: %v", err)
	}
	if err := head("outputs", "2.25.1/2.25.2/2.25.3.dcm").do(rd); err != nil {
		t.Errorf("reader HEAD: %v", err)
	}
	// The reader's presigned URL works for GET, and only for its bucket.
	pu, err := rd.PresignedGetObject(ctx, "outputs", "2.25.1/2.25.2/2.25.3.dcm", time.Minute, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, pu.String()); code != 200 || body != "output one" {
		t.Errorf("reader's presigned GET: %d %q", code, body)
	}
	pq, _ := rd.PresignedGetObject(ctx, "quarantine", "q1.dcm", time.Minute, url.Values{})
	if code, body := httpGet(t, pq.String()); code != 403 || strings.Contains(body, "quarantined input") {
		t.Errorf("reader's presigned GET of quarantine: %d %q", code, body)
	}
	// The operator: everything, quarantine included.
	opc := rs.mc[RoleOperator]
	for _, o := range []op{get("quarantine", "q1.dcm"), list("quarantine"), put("outputs", "op.dcm"), del("outputs", "op.dcm"),
		copyOp("quarantine", "q1.dcm", "quarantine", "q2.dcm"), makeB, removeB("newbucket"), listB} {
		if err := o.do(opc); err != nil {
			t.Errorf("operator %s: %v", o.name, err)
		}
	}
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testSigner signs requests by hand, independently of the endpoint's
// verifier, choosing what is signed: as aws-cli does (a hex SHA-256 of
// the body, Host, X-Amz-Content-Sha256 and X-Amz-Date signed), or
// leaving headers out to see the endpoint refuse.
type testSigner struct {
	access, secret string
	now            time.Time
}

func (ts testSigner) sign(req *http.Request, path string, payload string, signed []string) {
	if ts.now.IsZero() {
		ts.now = time.Now().UTC()
	}
	date := ts.now.Format("20060102T150405Z")
	req.Header.Set("X-Amz-Date", date)
	req.Header.Set("X-Amz-Content-Sha256", payload)
	esc := func(s string, slash bool) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 || c == '/' && !slash {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	q := req.URL.Query()
	var qs []string
	for k, vs := range q {
		for _, v := range vs {
			qs = append(qs, esc(k, true)+"="+esc(v, true))
		}
	}
	sort.Strings(qs)
	sort.Strings(signed)
	var canon strings.Builder
	canon.WriteString(req.Method + "\n" + esc(path, false) + "\n" + strings.Join(qs, "&") + "\n")
	for _, h := range signed {
		v := req.Header.Get(h)
		if h == "host" {
			v = req.Host
		}
		canon.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	canon.WriteString("\n" + strings.Join(signed, ";") + "\n" + payload)
	scope := ts.now.Format("20060102") + "/us-east-1/s3/aws4_request"
	sum := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	mac := func(k []byte, s string) []byte { m := hmac.New(sha256.New, k); m.Write([]byte(s)); return m.Sum(nil) }
	k := mac([]byte("AWS4"+ts.secret), ts.now.Format("20060102"))
	k = mac(mac(mac(k, "us-east-1"), "s3"), "aws4_request")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+ts.access+"/"+scope+", SignedHeaders="+strings.Join(signed, ";")+
		", Signature="+hex.EncodeToString(mac(k, toSign)))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// rawDo sends one request with exactly the request target given (no
// client cleaning of the path) and returns the status and body.
func rawDo(t *testing.T, addr string, req *http.Request, target string, body []byte) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", req.Method, target, req.Host, len(body))
	req.Header.Write(&b)
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb)
}

// signedPut is an aws-cli-like PUT: the body's SHA-256 declared and
// signed, with Host, X-Amz-Content-Sha256 and X-Amz-Date.
func signedPut(addr, path string, body []byte, payload string, cred Credentials, signed ...string) *http.Request {
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+path, bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	if signed == nil {
		signed = []string{"host", "x-amz-content-sha256", "x-amz-date"}
	}
	testSigner{access: cred.AccessKey, secret: cred.SecretKey}.sign(req, path, payload, signed)
	return req
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A body must be the one the signature covers: a PUT signed for body A
// that sends body B is refused, nothing is stored and nothing announced;
// a body with no payload signature at all (UNSIGNED-PAYLOAD, presigned,
// STREAMING-UNSIGNED-PAYLOAD-TRAILER) is refused. The aws-cli-like PUT
// with the right digest is stored.
func TestS3BodyMustMatchItsSignature(t *testing.T) {
	rs := startRoleS3(t, Limits{})
	addr, up := rs.s.Endpoint(), testRoles[RoleUploader]
	a, b := []byte("DICM body A, signed"), []byte("DICM body B, swapped")
	before := tree(t, rs.s.cfg.Dir)

	code, msg := do(t, signedPut(addr, "/incoming/swapped.dcm", b[:len(a)], sha256Hex(a), up))
	if code != http.StatusBadRequest || !strings.Contains(msg, "XAmzContentSHA256Mismatch") {
		t.Errorf("body B under body A's digest: %d %s", code, msg)
	}
	code, msg = do(t, signedPut(addr, "/incoming/unsigned.dcm", a, "UNSIGNED-PAYLOAD", up))
	if code != http.StatusForbidden {
		t.Errorf("UNSIGNED-PAYLOAD body: %d %s", code, msg)
	}
	req := signedPut(addr, "/incoming/trailer.dcm", a, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", up)
	if code, msg = do(t, req); code != http.StatusForbidden {
		t.Errorf("STREAMING-UNSIGNED-PAYLOAD-TRAILER: %d %s", code, msg)
	}
	pu, err := rs.mc[RoleUploader].PresignedPutObject(context.Background(), "incoming", "presigned.dcm", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	preq, _ := http.NewRequest(http.MethodPut, pu.String(), bytes.NewReader(a))
	if code, msg = do(t, preq); code != http.StatusForbidden {
		t.Errorf("presigned PUT: %d %s", code, msg)
	}
	if after := tree(t, rs.s.cfg.Dir); !slices.Equal(before, after) {
		t.Errorf("refused PUTs changed the store:\n%v\n%v", before, after)
	}
	if n := len(rs.rec.list()); n != 0 {
		t.Errorf("%d notifications of refused PUTs", n)
	}
	if code, msg = do(t, signedPut(addr, "/incoming/signed.dcm", a, sha256Hex(a), up)); code != 200 {
		t.Fatalf("aws-cli-like PUT: %d %s", code, msg)
	}
	if got, ok := rs.read(t, "incoming", "signed.dcm"); !ok || got != string(a) {
		t.Errorf("stored %q", got)
	}
	if n := rs.rec.list(); len(n) != 1 || n[0].Key != "signed.dcm" {
		t.Errorf("notifications %v", n)
	}
}

// streamingPut builds a STREAMING-AWS4-HMAC-SHA256-PAYLOAD PUT with
// minio-go's signer and returns the request and its encoded body.
func streamingPut(t *testing.T, addr, path string, data []byte, cred Credentials) (*http.Request, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+path, bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	req = signer.StreamingSignV4(req, cred.AccessKey, cred.SecretKey, "", "us-east-1", int64(len(data)), time.Now().UTC(), shaHasher{sha256.New()})
	enc, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req, enc
}

type shaHasher struct{ hash.Hash }

func (shaHasher) Close() {}

// Every chunk of a streaming body is checked: a chunk whose data was
// changed, a forged chunk signature, a stream cut before its final
// chunk, a stream longer or shorter than its signed decoded length: all
// refused, nothing stored, nothing announced. minio-go's own streaming
// uploads (with and without a signed trailer) are stored.
func TestS3ChunkSignaturesAreChecked(t *testing.T) {
	rs := startRoleS3(t, Limits{})
	addr, up := rs.s.Endpoint(), testRoles[RoleUploader]
	data := make([]byte, 150<<10) // three chunks of minio-go's 64 KiB
	rand.Read(data)
	before := tree(t, rs.s.cfg.Dir)
	send := func(req *http.Request, body []byte) (int, string) {
		r2, _ := http.NewRequest(req.Method, req.URL.String(), bytes.NewReader(body))
		r2.Header = req.Header.Clone()
		r2.ContentLength = int64(len(body))
		return do(t, r2)
	}
	req, enc := streamingPut(t, addr, "/incoming/chunked.dcm", data, up)
	cases := []struct {
		name string
		body func() []byte
	}{
		{"a data byte changed", func() []byte {
			b := bytes.Clone(enc)
			i := bytes.Index(b, []byte("\r\n")) + 2 + 1000
			b[i] ^= 0xff
			return b
		}},
		{"a forged chunk signature", func() []byte {
			b := bytes.Clone(enc)
			i := bytes.Index(b, []byte("chunk-signature=")) + len("chunk-signature=")
			copy(b[i:], strings.Repeat("0", 64))
			return b
		}},
		{"the final chunk dropped", func() []byte {
			i := bytes.LastIndex(enc, []byte("0;chunk-signature="))
			return bytes.Clone(enc[:i])
		}},
		{"a chunk signature of another chunk", func() []byte {
			// The second chunk's signature on the first: each is valid,
			// but not there.
			b := bytes.Clone(enc)
			sigs := [][]byte{}
			for rest := b; ; {
				i := bytes.Index(rest, []byte("chunk-signature="))
				if i < 0 {
					break
				}
				sigs = append(sigs, rest[i+16:i+16+64])
				rest = rest[i+16+64:]
			}
			first := bytes.Clone(sigs[0])
			copy(sigs[0], sigs[1])
			copy(sigs[1], first)
			return b
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, msg := send(req, c.body()); code < 400 {
				t.Fatalf("accepted: %d %s", code, msg)
			}
		})
	}
	// A decoded length other than the data's: the signature covers it.
	r2 := req.Clone(context.Background())
	r2.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(data)-10))
	if code, msg := send(r2, enc); code != http.StatusForbidden {
		t.Errorf("decoded length changed: %d %s", code, msg)
	}
	if after := tree(t, rs.s.cfg.Dir); !slices.Equal(before, after) {
		t.Errorf("refused streams changed the store:\n%v\n%v", before, after)
	}
	if n := len(rs.rec.list()); n != 0 {
		t.Errorf("%d notifications of refused streams", n)
	}
	if code, msg := send(req, enc); code != 200 {
		t.Fatalf("the untouched stream: %d %s", code, msg)
	}
	if got, _ := rs.read(t, "incoming", "chunked.dcm"); got != string(data) {
		t.Error("stored bytes differ")
	}
	// minio-go with a signed trailer (a CRC32C checksum after the data).
	c := testRoles[RoleOperator]
	mc, _ := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: "us-east-1", TrailingHeaders: true})
	if _, err := mc.PutObject(context.Background(), "outputs", "trailer.dcm", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C, DisableMultipart: true}); err != nil {
		t.Fatalf("signed trailer: %v", err)
	}
	if got, _ := rs.read(t, "outputs", "trailer.dcm"); got != string(data) {
		t.Error("trailer upload: stored bytes differ")
	}
}

// The signature must cover Host (a request signed for one host cannot be
// sent to another) and every x-amz-* header (metadata, decoded length).
func TestS3SignatureMustCoverHostAndAmzHeaders(t *testing.T) {
	rs := startRoleS3(t, Limits{})
	addr, up := rs.s.Endpoint(), testRoles[RoleUploader]
	body := []byte("DICM")
	req := signedPut(addr, "/incoming/nohost.dcm", body, sha256Hex(body), up, "x-amz-content-sha256", "x-amz-date")
	if code, msg := do(t, req); code != http.StatusForbidden || !strings.Contains(msg, "Host") {
		t.Errorf("Host not signed: %d %s", code, msg)
	}
	req = signedPut(addr, "/incoming/meta.dcm", body, sha256Hex(body), up)
	req.Header.Set("X-Amz-Meta-Patient", "added after signing")
	if code, msg := do(t, req); code != http.StatusForbidden {
		t.Errorf("unsigned x-amz-meta header: %d %s", code, msg)
	}
	// Signed for another host.
	req = signedPut(addr, "/incoming/host.dcm", body, sha256Hex(body), up)
	req.Host = "other.example:9000"
	if code, msg := do(t, req); code != http.StatusForbidden {
		t.Errorf("sent to another host: %d %s", code, msg)
	}
	for _, k := range []string{"nohost.dcm", "meta.dcm", "host.dcm"} {
		if _, ok := rs.read(t, "incoming", k); ok {
			t.Errorf("%s stored", k)
		}
	}
	if n := len(rs.rec.list()); n != 0 {
		t.Errorf("%d notifications", n)
	}
}

// Bucket names S3 would refuse never reach the file system: ".", "..",
// upper case, empty (a doubled slash), percent-encoded dots, the store's
// own folders. Keys with "." or ".." segments likewise. Each is refused
// with nothing stored, nothing created and nothing announced, whoever
// asks (the operator here: the role allows everything, the names do
// not).
func TestS3RefusesBadNamesBeforeTheFileSystem(t *testing.T) {
	rs := startRoleS3(t, Limits{})
	addr := rs.s.Endpoint()
	rs.put(t, "quarantine", "q1.dcm", "quarantined")
	before := tree(t, rs.s.cfg.Dir)
	body := []byte("DICM planted")
	cases := []struct {
		target, path string // as sent, as the server decodes it
		code         string
	}{
		{"/./incoming/x.dcm", "/./incoming/x.dcm", "InvalidBucketName"},
		{"/../incoming/x.dcm", "/../incoming/x.dcm", "InvalidBucketName"},
		{"/../buckets/quarantine/q1.dcm", "/../buckets/quarantine/q1.dcm", "InvalidBucketName"},
		{"/%2e/incoming/x.dcm", "/./incoming/x.dcm", "InvalidBucketName"},
		{"/%2E%2E/spool/x.dcm", "/../spool/x.dcm", "InvalidBucketName"},
		{"//incoming/x.dcm", "//incoming/x.dcm", "InvalidBucketName"},
		{"/INCOMING/x.dcm", "/INCOMING/x.dcm", "InvalidBucketName"},
		{"/in/x.dcm", "/in/x.dcm", "InvalidBucketName"},
		{"/incoming/../quarantine/q1.dcm", "/incoming/../quarantine/q1.dcm", "InvalidArgument"},
		{"/incoming/a/%2e%2e/%2e%2e/quarantine/q1.dcm", "/incoming/a/../../quarantine/q1.dcm", "InvalidArgument"},
		{"/incoming/./x.dcm", "/incoming/./x.dcm", "InvalidArgument"},
	}
	op := testRoles[RoleOperator]
	for _, c := range cases {
		for _, method := range []string{http.MethodPut, http.MethodGet} {
			t.Run(method+" "+c.target, func(t *testing.T) {
				b := body
				if method == http.MethodGet {
					b = nil
				}
				req, _ := http.NewRequest(method, "http://"+addr+"/", nil)
				req.Host = addr
				testSigner{access: op.AccessKey, secret: op.SecretKey}.sign(req, c.path, sha256Hex(b), []string{"host", "x-amz-content-sha256", "x-amz-date"})
				code, msg := rawDo(t, addr, req, c.target, b)
				if code != http.StatusBadRequest || !strings.Contains(msg, c.code) {
					t.Errorf("%d %s, want 400 %s", code, msg, c.code)
				}
				if strings.Contains(msg, "quarantined") || strings.Contains(msg, "x.dcm") {
					t.Errorf("the answer echoes: %s", msg)
				}
			})
		}
	}
	if after := tree(t, rs.s.cfg.Dir); !slices.Equal(before, after) {
		t.Errorf("refused names changed the store:\n%v\n%v", before, after)
	}
	if n := len(rs.rec.list()); n != 0 {
		t.Errorf("%d notifications", n)
	}
	// Subresources the endpoint does not serve are refused, not read as
	// an overwrite (gofakes3 takes PUT /b/k?acl for a PUT of the object).
	rs.put(t, "incoming", "kept.dcm", "kept")
	for _, sub := range []string{"acl", "tagging", "policy", "retention"} {
		req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/incoming/kept.dcm?"+sub, bytes.NewReader(body))
		testSigner{access: op.AccessKey, secret: op.SecretKey}.sign(req, "/incoming/kept.dcm", sha256Hex(body), []string{"host", "x-amz-content-sha256", "x-amz-date"})
		if code, msg := do(t, req); code != http.StatusNotImplemented {
			t.Errorf("PUT ?%s: %d %s", sub, code, msg)
		}
	}
	if got, _ := rs.read(t, "incoming", "kept.dcm"); got != "kept" {
		t.Errorf("object after subresource PUTs: %q", got)
	}
}

// An object over the maximum size is refused: a PUT declaring it before
// a byte of its body is read, a PUT of unknown length once it passes the
// limit, a multipart upload at the part that passes it (and at its
// completion). Nothing is stored or announced.
func TestS3RefusesOversizeObjects(t *testing.T) {
	const max = 1 << 20
	rs := startRoleS3(t, Limits{MaxObjectSize: max})
	addr, up := rs.s.Endpoint(), testRoles[RoleUploader]
	ctx := context.Background()
	// Declared: the answer comes while the body has not been sent.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/incoming/huge.dcm", nil)
	testSigner{access: up.AccessKey, secret: up.SecretKey}.sign(req, "/incoming/huge.dcm", strings.Repeat("a", 64), []string{"host", "x-amz-content-sha256", "x-amz-date"})
	fmt.Fprintf(c, "PUT /incoming/huge.dcm HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", addr, int64(100)<<30)
	req.Header.Write(c)
	io.WriteString(c, "\r\n")
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a 100 GiB PUT before its body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "EntityTooLarge") {
		t.Errorf("100 GiB PUT: %d %s", resp.StatusCode, b)
	}
	data := make([]byte, max+1)
	rand.Read(data)
	if _, err := rs.mc[RoleUploader].PutObject(ctx, "incoming", "over.dcm", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableMultipart: true}); minio.ToErrorResponse(err).Code != "EntityTooLarge" {
		t.Errorf("PUT of max+1 bytes: %v", err)
	}
	// Unknown length (chunked transfer encoding, digest declared).
	creq, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/incoming/chunked.dcm", io.MultiReader(bytes.NewReader(data)))
	creq.ContentLength = -1
	testSigner{access: up.AccessKey, secret: up.SecretKey}.sign(creq, "/incoming/chunked.dcm", sha256Hex(data), []string{"host", "x-amz-content-sha256", "x-amz-date"})
	if code, msg := do(t, creq); code < 400 {
		t.Errorf("unknown-length PUT over the limit: %d %s", code, msg)
	}
	// Multipart: parts within the limit, together over it.
	core := minio.Core{Client: rs.mc[RoleUploader]}
	id, err := core.NewMultipartUpload(ctx, "incoming", "multi.dcm", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	half := data[:max/2+1]
	p1, err := core.PutObjectPart(ctx, "incoming", "multi.dcm", id, 1, bytes.NewReader(half), int64(len(half)), minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.PutObjectPart(ctx, "incoming", "multi.dcm", id, 2, bytes.NewReader(half), int64(len(half)), minio.PutObjectPartOptions{}); minio.ToErrorResponse(err).Code != "EntityTooLarge" {
		t.Errorf("a part that takes the upload over the limit: %v", err)
	}
	// Sent again as the same number, the part replaces itself: within.
	if _, err := core.PutObjectPart(ctx, "incoming", "multi.dcm", id, 1, bytes.NewReader(half), int64(len(half)), minio.PutObjectPartOptions{}); err != nil {
		t.Errorf("part 1 again: %v", err)
	}
	if _, err := core.CompleteMultipartUpload(ctx, "incoming", "multi.dcm", id, []minio.CompletePart{{PartNumber: 1, ETag: p1.ETag}}, minio.PutObjectOptions{}); err != nil {
		t.Errorf("complete within the limit: %v", err)
	}
	for _, k := range []string{"huge.dcm", "over.dcm", "chunked.dcm"} {
		if _, ok := rs.read(t, "incoming", k); ok {
			t.Errorf("%s stored", k)
		}
	}
	if n := rs.rec.list(); len(n) != 1 || n[0].Key != "multi.dcm" {
		t.Errorf("notifications %v, want multi.dcm only", n)
	}
}

// Multipart parts are files on disk, not memory, under the data
// directory; an upload left unfinished is removed after the expiry,
// parts and all, and can no longer be completed; a completed upload
// leaves nothing behind.
func TestS3MultipartPartsAreFilesAndExpire(t *testing.T) {
	rs := startRoleS3(t, Limits{UploadExpiry: 2 * time.Second})
	ctx := context.Background()
	core := minio.Core{Client: rs.mc[RoleUploader]}
	part := make([]byte, 5<<20)
	rand.Read(part)
	uploadsDir := filepath.Join(rs.s.cfg.Dir, "uploads")
	id, err := core.NewMultipartUpload(ctx, "incoming", "abandoned.dcm", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []minio.CompletePart
	for n := 1; n <= 3; n++ {
		p, err := core.PutObjectPart(ctx, "incoming", "abandoned.dcm", id, n, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
	}
	files, _ := filepath.Glob(filepath.Join(uploadsDir, id, "0000*"))
	if len(files) != 3 {
		t.Fatalf("%d part files on disk, want 3", len(files))
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err != nil || !bytes.Equal(b, part) {
			t.Errorf("part file %s does not hold the part", filepath.Base(f))
		}
	}
	if lp, err := core.ListObjectParts(ctx, "incoming", "abandoned.dcm", id, 0, 100); err != nil || len(lp.ObjectParts) != 3 {
		t.Errorf("uploader listing its upload's parts: %v %v", lp.ObjectParts, err)
	}
	// Another upload, completed: nothing of it stays.
	id2, err := core.NewMultipartUpload(ctx, "incoming", "done.dcm", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := core.PutObjectPart(ctx, "incoming", "done.dcm", id2, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.CompleteMultipartUpload(ctx, "incoming", "done.dcm", id2, []minio.CompletePart{{PartNumber: 1, ETag: p.ETag}}, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(uploadsDir, id2)); !os.IsNotExist(err) {
		t.Errorf("completed upload still on disk: %v", err)
	}
	// The abandoned one expires.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(uploadsDir, id)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the abandoned upload is still on disk")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = core.CompleteMultipartUpload(ctx, "incoming", "abandoned.dcm", id, parts, minio.PutObjectOptions{})
	if minio.ToErrorResponse(err).Code != "NoSuchUpload" {
		t.Errorf("completing an expired upload: %v", err)
	}
	if _, ok := rs.read(t, "incoming", "abandoned.dcm"); ok {
		t.Error("the expired upload became an object")
	}
	// Upload ids are checked before they name a folder.
	_, err = core.PutObjectPart(ctx, "incoming", "x.dcm", "../../buckets/quarantine", 1, bytes.NewReader(part[:10]), 10, minio.PutObjectPartOptions{})
	if minio.ToErrorResponse(err).Code != "NoSuchUpload" {
		t.Errorf("a path as upload id: %v", err)
	}
}

// Connections are bounded: past MaxConns one is closed as it arrives; a
// connection that sends no request is closed after the header timeout;
// a body sent too slowly, or not at all, is cut off; an idle kept-alive
// connection is closed. Meanwhile a normal request is served.
func TestS3BoundsConnectionsAndSlowClients(t *testing.T) {
	rs := startRoleS3(t, Limits{MaxConns: 8, ReadHeaderTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond,
		SlowGrace: time.Second, MinRate: 1 << 10})
	addr, up := rs.s.Endpoint(), testRoles[RoleUploader]
	closed := func(c net.Conn, within time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(within))
		_, err := io.Copy(io.Discard, c) // until the server closes it
		return err == nil
	}
	// 8 idle connections fill the endpoint; the ninth is closed at once.
	var idle []net.Conn
	for i := 0; i < 8; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	waitOpen(t, rs.s, 8)
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !closed(extra, 10*time.Second) {
		t.Error("a connection past the limit stayed open")
	}
	// The idle ones are closed by the header timeout.
	for i, c := range idle {
		if !closed(c, 20*time.Second) {
			t.Errorf("idle connection %d still open", i)
		}
	}
	// The client sees a connection end a moment before the server's
	// count does (on a loaded machine, long enough for the next
	// connection to find the endpoint still full).
	waitOpen(t, rs.s, 0)
	// Slow bodies: headers, then a byte now and then, or nothing.
	body := make([]byte, 64<<10)
	var slow []net.Conn
	for i := 0; i < 6; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/incoming/slow.dcm", nil)
		testSigner{access: up.AccessKey, secret: up.SecretKey}.sign(req, "/incoming/slow.dcm", sha256Hex(body), []string{"host", "x-amz-content-sha256", "x-amz-date"})
		fmt.Fprintf(c, "PUT /incoming/slow.dcm HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", addr, len(body))
		req.Header.Write(c)
		io.WriteString(c, "\r\n")
		slow = append(slow, c)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // trickle into half of them, well under MinRate
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, c := range slow[:3] {
				c.Write(body[i%len(body) : i%len(body)+1])
			}
		}
	}()
	// Meanwhile, a normal request is served.
	if code, msg := do(t, signedPut(addr, "/incoming/normal.dcm", body, sha256Hex(body), up)); code != 200 {
		t.Errorf("a normal PUT beside slow ones: %d %s", code, msg)
	}
	for i, c := range slow {
		if !closed(c, 30*time.Second) {
			t.Errorf("slow PUT %d still open", i)
		}
	}
	if _, ok := rs.read(t, "incoming", "slow.dcm"); ok {
		t.Error("a slow body was stored")
	}
	// A kept-alive connection left idle after a request is closed too.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/outputs?location", nil)
	testSigner{access: testRoles[RoleReader].AccessKey, secret: testRoles[RoleReader].SecretKey}.sign(req, "/outputs", sha256Hex(nil), []string{"host", "x-amz-content-sha256", "x-amz-date"})
	fmt.Fprintf(c, "GET /outputs?location HTTP/1.1\r\nHost: %s\r\n", addr)
	req.Header.Write(c)
	io.WriteString(c, "\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("idle kept-alive connection still open: %v", err)
	}
}

// waitOpen waits (up to five seconds) until s counts n connections open.
func waitOpen(t *testing.T, s *S3, n int) {
	t.Helper()
	l := s.ln.(interface{ Open() int })
	for i := 0; i < 500 && l.Open() != n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := l.Open(); got != n {
		t.Fatalf("%d connections open, want %d", got, n)
	}
}

// Credentials are made once per role (mode 0600, AWS shared-credentials
// format, distinct keys) and read back on the next start; an earlier
// version's single credential becomes the uploader's, and only that.
func TestEnsureRoleCredentials(t *testing.T) {
	dir := t.TempDir()
	rc, setup, err := EnsureRoleCredentials(dir)
	if err != nil || len(setup.Created) != 3 || setup.Migrated {
		t.Fatalf("first call: %+v %v", setup, err)
	}
	keys := map[string]bool{}
	for _, r := range Roles {
		st, err := os.Stat(CredentialsFile(dir, r))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", r, st.Mode().Perm(), err)
		}
		if len(rc[r].SecretKey) < 32 || keys[rc[r].AccessKey] {
			t.Errorf("%s: weak or shared credentials", r)
		}
		keys[rc[r].AccessKey] = true
		// The file works with the AWS SDKs' reader (minio-go's here).
		v, err := credentials.NewFileAWSCredentials(CredentialsFile(dir, r), "default").Get()
		if err != nil || v.AccessKeyID != rc[r].AccessKey || v.SecretAccessKey != rc[r].SecretKey {
			t.Errorf("%s: read by minio-go as %+v (%v)", r, v, err)
		}
	}
	rc2, setup, err := EnsureRoleCredentials(dir)
	if err != nil || len(setup.Created) != 0 {
		t.Fatalf("second call: %+v %v", setup, err)
	}
	for _, r := range Roles {
		if rc2[r] != rc[r] {
			t.Errorf("%s changed", r)
		}
	}
	// A data directory of an earlier version.
	old := t.TempDir()
	os.WriteFile(filepath.Join(old, "s3-credentials.json"), []byte(`{"access_key":"deidold","secret_key":"old-secret-0123456789"}`), 0o600)
	rc3, setup, err := EnsureRoleCredentials(old)
	if err != nil || !setup.Migrated || !slices.Equal(setup.Created, []Role{RoleReader, RoleOperator}) {
		t.Fatalf("migration: %+v %v", setup, err)
	}
	if rc3[RoleUploader] != (Credentials{"deidold", "old-secret-0123456789"}) || rc3[RoleOperator].AccessKey == "deidold" {
		t.Errorf("migrated credentials: %+v", rc3)
	}
	if _, err := os.Stat(filepath.Join(old, "s3-credentials.json")); !os.IsNotExist(err) {
		t.Errorf("the old file is still there: %v", err)
	}
}
