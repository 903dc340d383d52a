package embed

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// testChain is the chain of a request signed with signer.StreamingSignV4
// at t by the operator of testRoles: the seed is the request's own
// signature.
func testChain(t testing.TB, data []byte, trailer bool) (chunkChain, []byte) {
	t.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/b/k", bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	if trailer {
		req.Trailer = http.Header{"X-Amz-Checksum-Crc32c": {"AAAAAA=="}}
	}
	cred := testRoles[RoleOperator]
	req = signer.StreamingSignV4(req, cred.AccessKey, cred.SecretKey, "", "us-east-1", int64(len(data)), at, shaHasher{sha256.New()})
	enc, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	auth := req.Header.Get("Authorization")
	seed := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
	s := newSigV4(RoleCredentials{RoleOperator: cred}, time.Hour)
	p := sigParams{date: "20260102", region: "us-east-1", service: "s3"}
	return chunkChain{key: s.signingKey(cred.SecretKey, p), date: at.Format(amzDateLayout),
		scope: "20260102/us-east-1/s3/aws4_request", prev: seed}, enc
}

func TestSignedChunksDecodeWhatMinioGoSigns(t *testing.T) {
	for _, n := range []int{0, 1, 64 << 10, 64<<10 + 1, 200 << 10} {
		for _, trailer := range []bool{false, true} {
			data := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
			chain, enc := testChain(t, data, trailer)
			got, err := io.ReadAll(newSignedChunks(bytes.NewReader(enc), chain, trailer, int64(n)))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%d bytes, trailer %v: %d bytes back, %v", n, trailer, len(got), err)
			}
			// One byte changed anywhere: an error before io.EOF.
			for _, i := range []int{0, len(enc) / 3, len(enc) / 2, len(enc) - 5} {
				bad := bytes.Clone(enc)
				bad[i] ^= 0x01
				if _, err := io.ReadAll(newSignedChunks(bytes.NewReader(bad), chain, trailer, int64(n))); err == nil {
					t.Errorf("%d bytes, trailer %v: byte %d changed, read without error", n, trailer, i)
				}
			}
		}
	}
}

// FuzzSignedChunks: whatever the body, the decoder ends (no unbounded
// line, no negative or oversize chunk), and a body that reads to io.EOF
// is exactly the signed data.
func FuzzSignedChunks(f *testing.F) {
	data := []byte("DICM fuzz seed data, two chunks")
	chain, enc := testChain(f, data, false)
	f.Add(enc, false)
	tchain, tenc := testChain(f, data, true)
	f.Add(tenc, true)
	f.Add([]byte("ffffffffffffffff;chunk-signature="+strings.Repeat("0", 64)+"\r\n"), false)
	f.Add([]byte("-1;chunk-signature=x\r\n"), false)
	f.Add([]byte(strings.Repeat("a", 10000)), false)
	f.Fuzz(func(t *testing.T, body []byte, trailer bool) {
		c := chain
		if trailer {
			c = tchain
		}
		got, err := io.ReadAll(newSignedChunks(bytes.NewReader(body), c, trailer, int64(len(data))))
		if err == nil && !bytes.Equal(got, data) {
			t.Fatalf("read %q without error; the signed data is %q", got, data)
		}
	})
}

// FuzzRoute: whatever the path and query, a request route accepts names
// a valid bucket and a key with no "." or ".." segment.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/b/k", "/./x", "/../b/k", "//b/k", "/bucket/a/../b", "/bucket?uploads", "/bucket/k?uploadId=00&partNumber=1",
		"/bucket/k?acl", "/%2e%2e/x", "/bucket/", "/"} {
		f.Add("PUT", s)
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		req, err := http.NewRequest(method, "http://127.0.0.1"+target, nil)
		if err != nil || req.URL.Host != "127.0.0.1" {
			return
		}
		q, rerr := route(req)
		if rerr != nil {
			return
		}
		if q.act != actListBuckets && !s3name.ValidBucket(q.bucket) {
			t.Fatalf("%s %q: bucket %q accepted", method, target, q.bucket)
		}
		for _, seg := range strings.Split(q.key, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%s %q: key %q accepted", method, target, q.key)
			}
		}
		if q.uploadID != "" && !validUploadID(q.uploadID) {
			t.Fatalf("upload id %q accepted", q.uploadID)
		}
	})
}
