package main

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
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/embed"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

// roleCreds reads a role's credentials from the data directory, as a
// local process handed that file would.
func roleCreds(t *testing.T, data string, r embed.Role) embed.Credentials {
	t.Helper()
	c, err := embed.ReadCredentialsFile(embed.CredentialsFile(data, r))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func roleClient(t *testing.T, addr string, c embed.Credentials) *minio.Client {
	t.Helper()
	mc, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: "us-east-1", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// handSign signs a request as aws-cli does over HTTP (the body's SHA-256
// declared; Host, X-Amz-Content-Sha256 and X-Amz-Date signed), or with
// the signed headers given, independently of the endpoint's verifier.
func handSign(req *http.Request, path string, c embed.Credentials, payload string, signed ...string) {
	if signed == nil {
		signed = []string{"host", "x-amz-content-sha256", "x-amz-date"}
	}
	now := time.Now().UTC()
	date := now.Format("20060102T150405Z")
	req.Header.Set("X-Amz-Date", date)
	req.Header.Set("X-Amz-Content-Sha256", payload)
	esc := func(s string, slash bool) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			ch := s[i]
			if 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' || strings.IndexByte("-_.~", ch) >= 0 || ch == '/' && !slash {
				b.WriteByte(ch)
			} else {
				fmt.Fprintf(&b, "%%%02X", ch)
			}
		}
		return b.String()
	}
	var qs []string
	for k, vs := range req.URL.Query() {
		for _, v := range vs {
			qs = append(qs, esc(k, true)+"="+esc(v, true))
		}
	}
	sort.Strings(qs)
	sort.Strings(signed)
	canon := req.Method + "\n" + esc(path, false) + "\n" + strings.Join(qs, "&") + "\n"
	for _, h := range signed {
		v := req.Header.Get(h)
		if h == "host" {
			v = req.Host
			if v == "" {
				v = req.URL.Host
			}
		}
		canon += h + ":" + strings.TrimSpace(v) + "\n"
	}
	canon += "\n" + strings.Join(signed, ";") + "\n" + payload
	scope := now.Format("20060102") + "/us-east-1/s3/aws4_request"
	sum := sha256.Sum256([]byte(canon))
	mac := func(k []byte, s string) []byte { m := hmac.New(sha256.New, k); m.Write([]byte(s)); return m.Sum(nil) }
	k := mac(mac(mac(mac([]byte("AWS4"+c.SecretKey), now.Format("20060102")), "us-east-1"), "s3"), "aws4_request")
	sig := mac(k, "AWS4-HMAC-SHA256\n"+date+"\n"+scope+"\n"+hex.EncodeToString(sum[:]))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.AccessKey+"/"+scope+", SignedHeaders="+
		strings.Join(signed, ";")+", Signature="+hex.EncodeToString(sig))
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sendRaw sends a request whose target is written as given: no client
// cleans "/./" or "//" or decodes "%2e" on the way.
func sendRaw(t *testing.T, addr string, req *http.Request, target string, body []byte) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", req.Method, target, addr, len(body))
	req.Header.Write(&b)
	b.WriteString("\r\n")
	b.Write(body)
	c.Write(b.Bytes())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rb)
}

// allObjects is every object of the service's buckets with its bytes, as
// the operator reads them.
func allObjects(t *testing.T, mc *minio.Client, buckets ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, b := range buckets {
		for o := range mc.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			obj, err := mc.GetObject(ctx, b, o.Key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(obj)
			if err != nil {
				t.Fatal(err)
			}
			out[b+"/"+o.Key] = string(data)
		}
	}
	return out
}

// notified is how many object notifications the work queue ever stored.
func notified(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), ingest.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(ingest.SubjectObjects))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

func awaitObjects(t *testing.T, mc *minio.Client, bucket string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var keys []string
		for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				keys = append(keys, o.Key)
			}
		}
		if len(keys) >= n {
			sort.Strings(keys)
			return keys
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d objects, want %d", bucket, len(keys), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeS3Attacks is issue 18's S3 attacks against `deid serve` on its
// embedded default, made as a local process would with the credentials a
// client is handed: the uploader's (the one every sending system has)
// and the reader's. Each is refused with nothing stored, nothing echoed,
// nothing announced and nothing lost; the legitimate uploads and reads
// (aws-cli-like signed PUT, minio-go multipart upload, presigned GET)
// still work end to end.
func TestServeS3Attacks(t *testing.T) {
	c := serveConfigForTest(t)
	c.maxObjectSize = 16 << 20
	var stdout bytes.Buffer
	srv, err := startService(context.Background(), c, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx := context.Background()
	addr := srv.s3Addr
	upC, rdC, opC := roleCreds(t, c.data, embed.RoleUploader), roleCreds(t, c.data, embed.RoleReader), roleCreds(t, c.data, embed.RoleOperator)
	// The first start says where each role's credentials are, and shows
	// no secret.
	for _, r := range embed.Roles {
		if !strings.Contains(stdout.String(), embed.CredentialsFile(c.data, r)) {
			t.Errorf("the first start does not say where the %s credentials are:\n%s", r, stdout.String())
		}
	}
	for _, cr := range []embed.Credentials{upC, rdC, opC} {
		if strings.Contains(stdout.String(), cr.SecretKey) {
			t.Error("a secret key was printed")
		}
	}
	up, rd, op := roleClient(t, addr, upC), roleClient(t, addr, rdC), roleClient(t, addr, opC)
	js, err := jetstream.New(srv.nc)
	if err != nil {
		t.Fatal(err)
	}

	// A hospital's uploads: a CT slice and a note, both named after the
	// patient; the note is quarantined.
	series, err := synth.CTSeries(synth.DefaultPatient(), 3)
	if err != nil {
		t.Fatal(err)
	}
	const inKey, noteKey = "Kowalska Zofia/IM0001.dcm", "Kowalska Zofia/notes.txt"
	if _, err := up.PutObject(ctx, c.inBucket, inKey, bytes.NewReader(series[0].Data), int64(len(series[0].Data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("uploader PUT: %v", err)
	}
	note := "Kowalska Zofia, MRN 4471, called about her scan"
	if _, err := up.PutObject(ctx, c.inBucket, noteKey, strings.NewReader(note), int64(len(note)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("uploader PUT: %v", err)
	}
	outKey := awaitObjects(t, op, c.outBucket, 1)[0]
	qKeys := awaitObjects(t, op, c.quarantine, 2) // <id>.dcm and <id>.json
	awaitDrained(t, js, time.Minute)
	if err := op.MakeBucket(ctx, "deid-empty", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	before := allObjects(t, op, c.inBucket, c.outBucket, c.quarantine)
	buckets, _ := op.ListBuckets(ctx)
	sent := notified(t, js)
	dataTree := tree(t, filepath.Join(c.data, "s3", "buckets"))

	accessDenied := func(what string, err error) {
		t.Helper()
		if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" {
			t.Errorf("%s: %v (%q), want AccessDenied", what, err, code)
		}
	}
	read := func(mc *minio.Client, b, k string) error {
		o, err := mc.GetObject(ctx, b, k, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		_, err = io.ReadAll(o)
		return err
	}
	list := func(mc *minio.Client, b string) error {
		for o := range mc.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				return o.Err
			}
		}
		return nil
	}
	identifiable := series[1].Data // another slice, with the patient's name in it
	putAs := func(mc *minio.Client, b, k string, data []byte) error {
		_, err := mc.PutObject(ctx, b, k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
		return err
	}

	// The uploader's key: no quarantine original, no note, no listing.
	for _, k := range qKeys {
		accessDenied("uploader GET quarantine "+k, read(up, c.quarantine, k))
		_, err := up.StatObject(ctx, c.quarantine, k, minio.StatObjectOptions{})
		accessDenied("uploader HEAD quarantine", err)
	}
	accessDenied("uploader LIST quarantine", list(up, c.quarantine))
	accessDenied("uploader LIST input", list(up, c.inBucket))
	accessDenied("uploader GET input", read(up, c.inBucket, inKey))
	accessDenied("uploader GET output", read(up, c.outBucket, outKey))
	// No overwrite or delete of outputs or inputs.
	accessDenied("uploader overwriting an output", putAs(up, c.outBucket, outKey, identifiable))
	accessDenied("uploader deleting an output", up.RemoveObject(ctx, c.outBucket, outKey, minio.RemoveObjectOptions{}))
	accessDenied("uploader deleting an input", up.RemoveObject(ctx, c.inBucket, inKey, minio.RemoveObjectOptions{}))
	if err := putAs(up, c.inBucket, inKey, identifiable); minio.ToErrorResponse(err).Code != "PreconditionFailed" {
		t.Errorf("uploader overwriting an input: %v, want PreconditionFailed", err)
	}
	_, err = up.CopyObject(ctx, minio.CopyDestOptions{Bucket: c.inBucket, Object: "copied.dcm"}, minio.CopySrcOptions{Bucket: c.quarantine, Object: qKeys[0]})
	accessDenied("uploader copying a quarantined input back", err)
	// No bucket administration.
	accessDenied("uploader creating a bucket", up.MakeBucket(ctx, "deid-mine", minio.MakeBucketOptions{}))
	accessDenied("uploader deleting a bucket", up.RemoveBucket(ctx, "deid-empty"))
	_, err = up.ListBuckets(ctx)
	accessDenied("uploader listing buckets", err)

	// The reader's key: reads outputs, writes nothing, no quarantine.
	accessDenied("reader PUT output", putAs(rd, c.outBucket, "2.25.9/2.25.9/2.25.9.dcm", identifiable))
	accessDenied("reader overwriting an output", putAs(rd, c.outBucket, outKey, identifiable))
	accessDenied("reader PUT input", putAs(rd, c.inBucket, "from-reader.dcm", identifiable))
	accessDenied("reader deleting an output", rd.RemoveObject(ctx, c.outBucket, outKey, minio.RemoveObjectOptions{}))
	accessDenied("reader GET quarantine", read(rd, c.quarantine, qKeys[0]))
	accessDenied("reader GET input", read(rd, c.inBucket, inKey))
	accessDenied("reader creating a bucket", rd.MakeBucket(ctx, "deid-mine", minio.MakeBucketOptions{}))

	// The payload is bound to the signature.
	body, other := series[2].Data, bytes.Clone(series[2].Data)
	other[len(other)-1] ^= 0xff
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/"+c.inBucket+"/swapped.dcm", bytes.NewReader(other))
	handSign(req, "/"+c.inBucket+"/swapped.dcm", upC, hexSHA256(body))
	if code, msg := send(t, req); code != http.StatusBadRequest || !strings.Contains(msg, "XAmzContentSHA256Mismatch") {
		t.Errorf("a PUT signed for body A sending body B: %d %s", code, msg)
	}
	req, _ = http.NewRequest(http.MethodPut, "http://"+addr+"/"+c.inBucket+"/unsigned.dcm", bytes.NewReader(body))
	handSign(req, "/"+c.inBucket+"/unsigned.dcm", upC, "UNSIGNED-PAYLOAD")
	if code, msg := send(t, req); code != http.StatusForbidden {
		t.Errorf("UNSIGNED-PAYLOAD PUT: %d %s", code, msg)
	}
	// Fake chunk signatures.
	sreq, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/"+c.inBucket+"/chunked.dcm", bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq = signer.StreamingSignV4(sreq, upC.AccessKey, upC.SecretKey, "", "us-east-1", int64(len(body)), time.Now().UTC(), shaHasher{sha256.New()})
	enc, _ := io.ReadAll(sreq.Body)
	for i := 0; ; {
		j := bytes.Index(enc[i:], []byte("chunk-signature="))
		if j < 0 {
			break
		}
		i += j + len("chunk-signature=")
		copy(enc[i:], strings.Repeat("f", 64))
	}
	freq, _ := http.NewRequest(http.MethodPut, sreq.URL.String(), bytes.NewReader(enc))
	freq.Header, freq.ContentLength = sreq.Header, int64(len(enc))
	if code, msg := send(t, freq); code != http.StatusForbidden || !strings.Contains(msg, "SignatureDoesNotMatch") {
		t.Errorf("fake chunk signatures: %d %s", code, msg)
	}
	// Host must be signed.
	req, _ = http.NewRequest(http.MethodPut, "http://"+addr+"/"+c.inBucket+"/nohost.dcm", bytes.NewReader(body))
	handSign(req, "/"+c.inBucket+"/nohost.dcm", upC, hexSHA256(body), "x-amz-content-sha256", "x-amz-date")
	if code, msg := send(t, req); code != http.StatusForbidden {
		t.Errorf("Host not signed: %d %s", code, msg)
	}
	// Bucket names and keys that reach elsewhere: refused, even to the
	// operator, before the file system.
	for _, tc := range []struct{ target, path string }{
		{"/./" + c.inBucket + "/dot.dcm", "/./" + c.inBucket + "/dot.dcm"},
		{"/../s3/buckets/" + c.quarantine + "/" + qKeys[0], "/../s3/buckets/" + c.quarantine + "/" + qKeys[0]},
		{"/%2e%2e/" + c.quarantine + "/" + qKeys[0], "/../" + c.quarantine + "/" + qKeys[0]},
		{"//" + c.inBucket + "/double.dcm", "//" + c.inBucket + "/double.dcm"},
		{"/" + c.inBucket + "/../" + c.quarantine + "/" + qKeys[0], "/" + c.inBucket + "/../" + c.quarantine + "/" + qKeys[0]},
	} {
		for _, m := range []string{http.MethodPut, http.MethodGet} {
			b := body
			if m == http.MethodGet {
				b = nil
			}
			for _, cr := range []embed.Credentials{upC, opC} {
				r, _ := http.NewRequest(m, "http://"+addr+"/", nil)
				r.Host = addr
				handSign(r, tc.path, cr, hexSHA256(b))
				code, msg := sendRaw(t, addr, r, tc.target, b)
				if code != http.StatusBadRequest {
					t.Errorf("%s %s: %d %s, want 400", m, tc.target, code, msg)
				}
				if strings.Contains(msg, "Kowalska") || strings.Contains(msg, "DICM") || strings.Contains(msg, qKeys[0]) {
					t.Errorf("%s %s: the answer echoes: %s", m, tc.target, msg)
				}
			}
		}
	}
	// Oversize objects.
	huge := make([]byte, 16<<20+1)
	if err := putAs(up, c.inBucket, "huge.dcm", huge); minio.ToErrorResponse(err).Code != "EntityTooLarge" {
		t.Errorf("PUT over --max-object-size: %v", err)
	}
	_, err = up.PutObject(ctx, c.inBucket, "huge-multipart.dcm", bytes.NewReader(append(huge, huge[:5<<20]...)), -1, minio.PutObjectOptions{PartSize: 5 << 20})
	if minio.ToErrorResponse(err).Code != "EntityTooLarge" {
		t.Errorf("multipart upload over --max-object-size: %v", err)
	}

	// Nothing stored, changed or lost; nothing announced.
	awaitDrained(t, js, time.Minute)
	if after := allObjects(t, op, c.inBucket, c.outBucket, c.quarantine); !equalMaps(before, after) {
		t.Errorf("the attacks changed the buckets:\nbefore %v\nafter  %v", keysOf(before), keysOf(after))
	}
	if got, _ := op.ListBuckets(ctx); len(got) != len(buckets) {
		t.Errorf("buckets %d, were %d", len(got), len(buckets))
	}
	if n := notified(t, js); n != sent {
		t.Errorf("%d notifications from refused requests", n-sent)
	}
	if after := tree(t, filepath.Join(c.data, "s3", "buckets")); !equalMaps(dataTree, after) {
		t.Errorf("the store's files changed: %v -> %v", sortedKeys(dataTree), sortedKeys(after))
	}
	if entries, _ := os.ReadDir(filepath.Join(c.data, "s3", "uploads")); len(entries) != 0 {
		t.Errorf("%d multipart uploads left on disk by refused requests", len(entries))
	}

	// Legitimate traffic works: an aws-cli-like signed PUT, a minio-go
	// multipart upload (as the uploader), an identical resend, and the
	// reader's presigned GET of an output.
	req, _ = http.NewRequest(http.MethodPut, "http://"+addr+"/"+c.inBucket+"/Kowalska Zofia/IM0003.dcm", bytes.NewReader(body))
	handSign(req, "/"+c.inBucket+"/Kowalska Zofia/IM0003.dcm", upC, hexSHA256(body))
	if code, msg := send(t, req); code != 200 {
		t.Fatalf("aws-cli-like PUT: %d %s", code, msg)
	}
	big := append(bytes.Clone(series[1].Data), make([]byte, 11<<20)...) // a slice with trailing padding, > 2 parts
	rand.Read(big[len(series[1].Data):])
	if _, err := up.PutObject(ctx, c.inBucket, "Kowalska Zofia/IM0002.dcm", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatalf("minio-go multipart upload: %v", err)
	}
	if err := putAs(up, c.inBucket, inKey, series[0].Data); err != nil {
		t.Errorf("an identical resend (a retry after a lost answer): %v", err)
	}
	if n := notified(t, js); n < sent+2 {
		t.Errorf("%d notifications of the legitimate uploads, want 2 or more", n-sent)
	}
	// (The multipart input, a slice with megabytes of trailing bytes, is
	// the engine's to judge; here it must arrive whole and be announced.)
	outs := awaitObjects(t, op, c.outBucket, 2)
	awaitDrained(t, js, time.Minute)
	if o, err := op.GetObject(ctx, c.inBucket, "Kowalska Zofia/IM0002.dcm", minio.GetObjectOptions{}); err != nil {
		t.Error(err)
	} else if b, _ := io.ReadAll(o); !bytes.Equal(b, big) {
		t.Error("the multipart upload was not stored byte for byte")
	}
	pu, err := rd.PresignedGetObject(ctx, c.outBucket, outs[0], time.Minute, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(pu.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got) == 0 || bytes.Contains(got, []byte("Kowalska")) {
		t.Errorf("reader's presigned GET of an output: %d, %d bytes", resp.StatusCode, len(got))
	}
	if err := list(rd, c.outBucket); err != nil {
		t.Errorf("reader LIST of the outputs: %v", err)
	}
}

// shaHasher is a SHA-256 as minio-go's streaming signer takes it.
type shaHasher struct{ hash.Hash }

func (shaHasher) Close() {}

func equalMaps[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keysOf[V any](m map[string]V) []string { return sortedKeys(m) }

// TestServeBoundsConnections: `deid serve`'s S3 and HTTP listeners do not
// let idle or slow clients hold connections: 200 idle connections and 30
// slow-body PUTs are closed, the connection limits hold, and a normal
// request is served meanwhile.
func TestServeBoundsConnections(t *testing.T) {
	c := serveConfigForTest(t)
	c.s3Limits = embed.Limits{MaxConns: 64, ReadHeaderTimeout: time.Second, IdleTimeout: time.Second, SlowGrace: 2 * time.Second, MinRate: 4 << 10}
	srv := startForTest(t, c, io.Discard)
	upC := roleCreds(t, c.data, embed.RoleUploader)
	dialAll := func(addr string, n int) []net.Conn {
		var cs []net.Conn
		for i := 0; i < n; i++ {
			cn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cn.Close() })
			cs = append(cs, cn)
		}
		return cs
	}
	// closedWithin counts the connections the server has closed (read
	// ends) within d.
	closedWithin := func(cs []net.Conn, d time.Duration) int {
		done := make(chan bool, len(cs))
		for _, cn := range cs {
			go func(cn net.Conn) {
				cn.SetReadDeadline(time.Now().Add(d))
				_, err := io.Copy(io.Discard, cn)
				done <- err == nil
			}(cn)
		}
		n := 0
		for range cs {
			if <-done {
				n++
			}
		}
		return n
	}
	// S3: 200 idle connections, 30 slow-body PUTs.
	idle := dialAll(srv.s3Addr, 200)
	body := make([]byte, 1<<20)
	slow := dialAll(srv.s3Addr, 30)
	for _, cn := range slow {
		r, _ := http.NewRequest(http.MethodPut, "http://"+srv.s3Addr+"/"+c.inBucket+"/slow.dcm", nil)
		handSign(r, "/"+c.inBucket+"/slow.dcm", upC, hexSHA256(body))
		fmt.Fprintf(cn, "PUT /%s/slow.dcm HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", c.inBucket, srv.s3Addr, len(body))
		r.Header.Write(cn)
		io.WriteString(cn, "\r\n")
		cn.Write(body[:100])
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			for _, cn := range slow[:15] {
				cn.Write(body[:1]) // a byte now and then
			}
		}
	}()
	// Meanwhile a normal upload (retried past the limit, as clients do).
	up := roleClient(t, srv.s3Addr, upC)
	var err error
	for i := 0; i < 30; i++ {
		if _, err = up.PutObject(context.Background(), c.inBucket, "normal.dcm", strings.NewReader("DICM"), 4, minio.PutObjectOptions{}); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("a normal upload beside idle and slow ones: %v", err)
	}
	if n := closedWithin(append(idle, slow...), 60*time.Second); n != 230 {
		t.Errorf("%d of 230 idle and slow S3 connections closed", n)
	}
	// HTTP: past 32 connections one is closed as it arrives; idle ones
	// are closed by the header timeout.
	hidle := dialAll(srv.httpAddr, 32)
	time.Sleep(200 * time.Millisecond) // let the server accept them
	extra := dialAll(srv.httpAddr, 10)
	if n := closedWithin(extra, 3*time.Second); n != 10 {
		t.Errorf("%d of 10 HTTP connections past the limit closed at once", n)
	}
	if n := closedWithin(hidle, 30*time.Second); n != 32 {
		t.Errorf("%d of 32 idle HTTP connections closed", n)
	}
	resp, err := http.Get("http://" + srv.httpAddr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz after the flood: %v %v", resp, err)
	}
	resp.Body.Close()
}

// A data directory of an earlier version, with one S3 credential that
// could do everything: its key keeps uploading and can do nothing else;
// the start says so and where the new roles' files are.
func TestServeMigratesTheSingleS3Credential(t *testing.T) {
	c := serveConfigForTest(t)
	old := embed.Credentials{AccessKey: "deid0123456789abcdef", SecretKey: "0123456789abcdef0123456789abcdef01234567"}
	if err := os.WriteFile(filepath.Join(c.data, "s3-credentials.json"),
		[]byte(`{"access_key":"`+old.AccessKey+`","secret_key":"`+old.SecretKey+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	srv, err := startService(context.Background(), c, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	if !strings.Contains(stdout.String(), "now the uploader's") || !strings.Contains(stdout.String(), embed.CredentialsFile(c.data, embed.RoleReader)) {
		t.Errorf("the start does not tell of the migration:\n%s", stdout.String())
	}
	if got := roleCreds(t, c.data, embed.RoleUploader); got != old {
		t.Errorf("uploader credentials %+v, want the old ones", got)
	}
	ctx := context.Background()
	mc := roleClient(t, srv.s3Addr, old)
	if _, err := mc.PutObject(ctx, c.inBucket, "after-upgrade.dcm", strings.NewReader("DICM"), 4, minio.PutObjectOptions{}); err != nil {
		t.Errorf("the old key no longer uploads: %v", err)
	}
	for _, b := range []string{c.quarantine, c.outBucket, c.inBucket} {
		for o := range mc.ListObjects(ctx, b, minio.ListObjectsOptions{}) {
			if minio.ToErrorResponse(o.Err).Code != "AccessDenied" {
				t.Errorf("the old key lists %s: %v", b, o.Err)
			}
		}
	}
	if err := mc.RemoveObject(ctx, c.inBucket, "after-upgrade.dcm", minio.RemoveObjectOptions{}); minio.ToErrorResponse(err).Code != "AccessDenied" {
		t.Errorf("the old key deletes: %v", err)
	}
	// A second start: nothing new, nothing printed of credentials.
	srv.Stop()
	stdout.Reset()
	srv2, err := startService(context.Background(), c, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Stop()
	if strings.Contains(stdout.String(), "credentials") {
		t.Errorf("a second start speaks of credentials again:\n%s", stdout.String())
	}
	if got := roleCreds(t, c.data, embed.RoleUploader); got != old {
		t.Errorf("uploader credentials changed on the second start")
	}
}
