package embed

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// What the service's workers write in process is what S3 clients read:
// same bytes, ETag (the MD5, computed when first asked for), metadata,
// content type and listing; a key is written once when asked to.
func TestLocalObjectsAreS3Objects(t *testing.T) {
	s, mc := startTestS3(t, &recorder{})
	ctx := context.Background()
	l := s.Local()
	body := bytes.Repeat([]byte("dicom "), 5000)
	meta := map[string]string{"deid-sha256": "abc123", "deid-profile": "basic"}
	if err := l.Put("other", "2.25.1/2.25.2/2.25.3.dcm", bytes.NewReader(body), int64(len(body)), meta, true); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	st, err := mc.StatObject(ctx, "other", "2.25.1/2.25.2/2.25.3.dcm", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ETag != hex.EncodeToString(sum[:]) || st.Size != int64(len(body)) || st.ContentType != "application/dicom" ||
		st.UserMetadata["Deid-Sha256"] != "abc123" || st.LastModified.IsZero() {
		t.Fatalf("over S3: etag %s size %d type %s meta %v modified %v", st.ETag, st.Size, st.ContentType, st.UserMetadata, st.LastModified)
	}
	if got := get(t, mc, "other", "2.25.1/2.25.2/2.25.3.dcm"); !bytes.Equal(got, body) {
		t.Fatal("bytes differ over S3")
	}
	listed := 0
	for o := range mc.ListObjects(ctx, "other", minio.ListObjectsOptions{Prefix: "2.25.1/", Recursive: true}) {
		if o.Err != nil || o.ETag != hex.EncodeToString(sum[:]) {
			t.Fatalf("listed %+v", o)
		}
		listed++
	}
	if listed != 1 {
		t.Fatalf("listed %d objects", listed)
	}
	if m, err := l.Metadata("other", "2.25.1/2.25.2/2.25.3.dcm"); err != nil || m["deid-sha256"] != "abc123" || m["deid-profile"] != "basic" {
		t.Fatalf("metadata: %v %v", m, err)
	}
	// Written once.
	if err := l.Put("other", "2.25.1/2.25.2/2.25.3.dcm", strings.NewReader("x"), 1, nil, true); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if etag, n, err := l.Get("other", "2.25.1/2.25.2/2.25.3.dcm", &bytes.Buffer{}); err != nil || n != int64(len(body)) || etag != hex.EncodeToString(sum[:]) {
		t.Fatalf("get after a refused create: %s %d %v", etag, n, err)
	}
	// A copy keeps the metadata.
	if err := l.Copy("other", "2.25.1/2.25.2/2.25.3.dcm", "incoming", "q/copy.dcm"); err != nil {
		t.Fatal(err)
	}
	if m, _ := l.Metadata("incoming", "q/copy.dcm"); m["deid-sha256"] != "abc123" {
		t.Errorf("copied metadata: %v", m)
	}
	if objs, err := l.List("other", "2.25.1/"); err != nil || len(objs) != 1 || objs[0].ETag != hex.EncodeToString(sum[:]) {
		t.Errorf("list: %+v %v", objs, err)
	}
}

// Local reports by kind and names no key: keys can hold patient names.
func TestLocalErrors(t *testing.T) {
	s, _ := startTestS3(t, &recorder{})
	l := s.Local()
	if _, _, err := l.Get("other", "Doe^John/1.dcm", &bytes.Buffer{}); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("missing key: %v", err)
	}
	if _, _, err := l.Get("nobucket", "Doe^John/1.dcm", &bytes.Buffer{}); !errors.Is(err, ErrNoSuchBucket) {
		t.Errorf("missing bucket: %v", err)
	}
	if err := l.Put("other", "Doe^John", strings.NewReader("x"), 1, nil, false); err != nil {
		t.Fatal(err)
	}
	err := l.Put("other", "Doe^John/1.dcm", strings.NewReader("x"), 1, nil, false)
	if err == nil || strings.Contains(err.Error(), "Doe") {
		t.Errorf("key under an object: %v", err)
	}
	if err := l.Put("other", "short", strings.NewReader("x"), 5, nil, false); err == nil {
		t.Error("a body shorter than its size was stored")
	}
	if err := l.Put("other", "Doe^John", strings.NewReader("y"), 1, nil, true); !errors.Is(err, ErrExists) {
		t.Errorf("create over an object: %v", err)
	}
	// Refused writes leave no temporary file behind.
	if left, _ := filepath.Glob(filepath.Join(s.cfg.Dir, "spool", "*", "*")); len(left) != 0 {
		t.Errorf("the spool holds %d files after refused writes", len(left))
	}
}

// An object opened in place stays what it was when a PUT replaces it.
func TestLocalOpenIsStable(t *testing.T) {
	s, _ := startTestS3(t, &recorder{})
	l := s.Local()
	first := bytes.Repeat([]byte{1}, 1000)
	if err := l.Put("incoming", "in/1.dcm", bytes.NewReader(first), 1000, nil, false); err != nil {
		t.Fatal(err)
	}
	f, etag, n, err := l.Open("incoming", "in/1.dcm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum := md5.Sum(first)
	if n != 1000 || etag != hex.EncodeToString(sum[:]) {
		t.Fatalf("open: size %d etag %s", n, etag)
	}
	if err := l.Put("incoming", "in/1.dcm", bytes.NewReader(bytes.Repeat([]byte{2}, 500)), 500, nil, false); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1000)
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("the open object changed under its reader: %v", err)
	}
	if _, _, _, err := l.Open("incoming", "in/none.dcm"); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("missing: %v", err)
	}
}
