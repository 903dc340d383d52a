package embed

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
)

// Workers race to write the same output with If-None-Match: *: exactly
// one write wins, and the object is that writer's bytes, whole.
func TestObjectsConditionalCreateHasOneWinner(t *testing.T) {
	_, mc := startTestS3(t, &recorder{})
	ctx := context.Background()
	const writers = 16
	var wg sync.WaitGroup
	won := make(chan int, writers)
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := bytes.Repeat([]byte{byte('a' + i)}, 300<<10)
			opts := minio.PutObjectOptions{}
			opts.SetMatchETagExcept("*")
			if _, err := mc.PutObject(ctx, "other", "study/series/instance.dcm", bytes.NewReader(body), int64(len(body)), opts); err == nil {
				won <- i
			} else if minio.ToErrorResponse(err).Code != "PreconditionFailed" {
				t.Errorf("writer %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(won)
	var winners []int
	for i := range won {
		winners = append(winners, i)
	}
	if len(winners) != 1 {
		t.Fatalf("%d writers succeeded, want 1", len(winners))
	}
	got := get(t, mc, "other", "study/series/instance.dcm")
	if want := bytes.Repeat([]byte{byte('a' + winners[0])}, 300<<10); !bytes.Equal(got, want) {
		t.Fatal("the object is not the winner's bytes")
	}
}

// Metadata and ETag come back as put; a conditional write on the ETag
// succeeds only against the current object; a range reads its bytes.
func TestObjectsMetadataETagAndRange(t *testing.T) {
	_, mc := startTestS3(t, &recorder{})
	ctx := context.Background()
	body := []byte("0123456789abcdefghij")
	if _, err := mc.PutObject(ctx, "other", "a/b.dcm", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{UserMetadata: map[string]string{"deid-sha256": "f00d"}, ContentType: "application/dicom"}); err != nil {
		t.Fatal(err)
	}
	st, err := mc.StatObject(ctx, "other", "a/b.dcm", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	if st.ETag != hex.EncodeToString(sum[:]) || st.UserMetadata["Deid-Sha256"] != "f00d" || st.ContentType != "application/dicom" || st.Size != 20 {
		t.Fatalf("stat: etag %s meta %v type %s size %d", st.ETag, st.UserMetadata, st.ContentType, st.Size)
	}
	if st.LastModified.IsZero() {
		t.Error("no Last-Modified")
	}
	// A PUT replaces the metadata (S3 does not merge it).
	opts := minio.PutObjectOptions{UserMetadata: map[string]string{"other": "x"}}
	opts.SetMatchETag("0123")
	if _, err := mc.PutObject(ctx, "other", "a/b.dcm", bytes.NewReader(body), int64(len(body)), opts); minio.ToErrorResponse(err).Code != "PreconditionFailed" {
		t.Fatalf("If-Match on a stale ETag: %v", err)
	}
	opts.SetMatchETag(st.ETag)
	if _, err := mc.PutObject(ctx, "other", "a/b.dcm", bytes.NewReader(body), int64(len(body)), opts); err != nil {
		t.Fatalf("If-Match on the current ETag: %v", err)
	}
	if st, _ := mc.StatObject(ctx, "other", "a/b.dcm", minio.StatObjectOptions{}); st.UserMetadata["Deid-Sha256"] != "" || st.UserMetadata["Other"] != "x" {
		t.Errorf("metadata after a new PUT: %v", st.UserMetadata)
	}
	var gopts minio.GetObjectOptions
	gopts.SetRange(5, 9)
	o, err := mc.GetObject(ctx, "other", "a/b.dcm", gopts)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(o); string(got) != "56789" {
		t.Errorf("range 5-9: %q", got)
	}
}

// Listing follows S3: bytewise order (not the order of a directory walk),
// pages that join up, folders as common prefixes with a delimiter.
func TestObjectsListing(t *testing.T) {
	_, mc := startTestS3(t, &recorder{})
	ctx := context.Background()
	keys := []string{"p/a/1", "p/a/2", "p/a-b", "p/b/1", "p/b/c/2", "p/c", "q/1"}
	for i := 0; i < 25; i++ {
		keys = append(keys, fmt.Sprintf("p/many/%02d", i))
	}
	for _, k := range keys {
		if _, err := mc.PutObject(ctx, "other", k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(opts minio.ListObjectsOptions) []string {
		var got []string
		for o := range mc.ListObjects(ctx, "other", opts) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			got = append(got, o.Key)
		}
		return got
	}
	want := slices.Clone(keys[:6])
	for _, k := range keys[7:] {
		want = append(want, k)
	}
	slices.Sort(want)
	if got := list(minio.ListObjectsOptions{Prefix: "p/", Recursive: true, MaxKeys: 4}); !slices.Equal(got, want) {
		t.Errorf("recursive in pages of 4:\n got %v\nwant %v", got, want)
	}
	if got := list(minio.ListObjectsOptions{Prefix: "p/a", Recursive: true}); !slices.Equal(got, []string{"p/a-b", "p/a/1", "p/a/2"}) {
		t.Errorf("prefix p/a: %v", got)
	}
	// (minio-go gives each page's objects before its folders.)
	got := list(minio.ListObjectsOptions{Prefix: "p/", MaxKeys: 2})
	if slices.Sort(got); !slices.Equal(got, []string{"p/a-b", "p/a/", "p/b/", "p/c", "p/many/"}) {
		t.Errorf("one level in pages of 2: %v", got)
	}
}

// Keys with segments a file tree cannot hold as names are objects of
// their own, never cleaned into another key nor written elsewhere; keys
// that read as relative paths ("." and ".." segments) are refused; a key
// cannot be both an object and a folder of objects.
func TestObjectsKeysStayInTheirBucket(t *testing.T) {
	s, mc := startTestS3(t, &recorder{})
	ctx := context.Background()
	for _, k := range []string{"../incoming/x", "a/../../x", "a/./b", "..", "./x", "/lead", "a\\b", "a\x1b$Bb", "a\tb"} {
		_, err := mc.PutObject(ctx, "other", k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{})
		if code := minio.ToErrorResponse(err).Code; code != "InvalidArgument" {
			t.Errorf("key %q: %v (%s), want InvalidArgument", k, err, code)
		}
	}
	odd := []string{"a//b", "a/b", "%41/b", "A/b", "x/%", "c/", "a/.../b", "a/..b"}
	for _, k := range odd {
		if _, err := mc.PutObject(ctx, "other", k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
			t.Errorf("key %q: %v", k, err)
		}
	}
	for _, k := range odd {
		if got := get(t, mc, "other", k); string(got) != k {
			t.Errorf("key %q reads %q", k, got)
		}
	}
	var listed []string
	for o := range mc.ListObjects(ctx, "other", minio.ListObjectsOptions{Recursive: true}) {
		listed = append(listed, o.Key)
	}
	want := slices.Clone(odd)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("listed %q, want %q", listed, want)
	}
	for o := range mc.ListObjects(ctx, "incoming", minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("%q appeared in another bucket", o.Key)
	}
	for _, k := range odd {
		mc.RemoveObject(ctx, "other", k, minio.RemoveObjectOptions{})
	}
	if _, err := mc.PutObject(ctx, "other", "f/g", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "other", "f", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
		t.Error("key f accepted over the folder of f/g")
	}
	if _, err := mc.PutObject(ctx, "other", "f/g/h", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err == nil {
		t.Error("key f/g/h accepted under the object f/g")
	}
	if got := get(t, mc, "other", "f/g"); string(got) != "x" {
		t.Errorf("f/g: %q", got)
	}
	// Nothing outside the buckets' tree but the spool, emptied.
	root := filepath.Dir(s.be.buckets)
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "buckets" && e.Name() != "spool" && e.Name() != "uploads" {
			t.Errorf("%s written beside the buckets", e.Name())
		}
	}
	filepath.WalkDir(filepath.Join(root, "spool"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			t.Errorf("temporary file %s left in the spool", p)
		}
		return nil
	})
	// Deleting the last object of a folder removes the folder, so the
	// bucket can be deleted.
	if err := mc.RemoveObject(ctx, "other", "f/g", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := mc.RemoveBucket(ctx, "other"); err != nil {
		t.Errorf("remove the emptied bucket: %v", err)
	}
}

// A data directory written by an earlier version (s3afero: metadata in
// Dir/metadata) still serves its objects with their metadata and ETags.
func TestObjectsReadsOlderDataDirectories(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "buckets", "old", "x"), 0o700)
	body := []byte("older object")
	os.WriteFile(filepath.Join(dir, "buckets", "old", "x", "y.dcm"), body, 0o600)
	st, err := newObjectStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(body)
	meta := fmt.Sprintf(`{"File":"old/x/y.dcm","Size":12,"Hash":"%s","Meta":{"X-Amz-Meta-Deid-Sha256":"abc"}}`,
		base64.StdEncoding.EncodeToString(sum[:]))
	mp := st.legacyMetaPath("old", "x/y.dcm")
	os.MkdirAll(filepath.Dir(mp), 0o700)
	os.WriteFile(mp, []byte(meta), 0o600)
	obj, err := st.HeadObject("old", "x/y.dcm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj.Hash, sum[:]) || obj.Metadata["X-Amz-Meta-Deid-Sha256"] != "abc" || obj.Size != 12 {
		t.Fatalf("head: hash %x meta %v size %d", obj.Hash, obj.Metadata, obj.Size)
	}
	// Without any metadata the ETag is still the MD5 of the bytes.
	os.Remove(mp)
	if obj, err := st.HeadObject("old", "x/y.dcm"); err != nil || !bytes.Equal(obj.Hash, sum[:]) {
		t.Fatalf("head without metadata: %v %x", err, obj.Hash)
	}
}

func get(t *testing.T, mc *minio.Client, bucket, key string) []byte {
	t.Helper()
	o, err := mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
