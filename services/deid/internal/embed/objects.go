package embed

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
	"github.com/johannesboyne/gofakes3"
)

// objectStore is the embedded endpoint's storage: every object a plain
// file under Dir/buckets/<bucket>/<key>, its ETag (MD5) and metadata in an
// extended attribute of that file. It replaces gofakes3's s3afero backend,
// which serialised every request on one mutex and spent three file
// creations per PUT (its data file, a metadata file, and our spool for
// atomicity); creating a file is the dearest thing a small PUT does.
//
// A PUT writes a temporary file in Dir/spool (emptied at start: what a
// killed process left there was never acknowledged), sets the attribute
// on it and renames it into place, so an object appears whole, with its
// metadata, or not at all. Requests on different keys run in parallel.
type objectStore struct {
	buckets, spool, legacyMeta string
	locks                      [64]sync.Mutex // conditional writes, striped by key
	// PUTs take turns among spool folders: creating files in one folder
	// from many requests at once contends on that folder (measured here:
	// half the rate of 16 folders with 4 writers).
	next atomic.Uint32
}

const spoolShards = 16

var _ gofakes3.Backend = (*objectStore)(nil)

// objectMeta is what the attribute holds. The layout is that of s3afero's
// metadata files, which older data directories have (read as a fallback).
type objectMeta struct {
	Hash []byte
	Meta map[string]string
}

// xattrName holds an object's objectMeta as JSON.
const xattrName = "user.dicomdeid.s3"

func newObjectStore(dir string) (*objectStore, error) {
	s := &objectStore{buckets: filepath.Join(dir, "buckets"), spool: filepath.Join(dir, "spool"),
		legacyMeta: filepath.Join(dir, "metadata")}
	if err := os.MkdirAll(s.buckets, 0o700); err != nil {
		return nil, err
	}
	// Uploads in progress: what a killed process left there was never
	// acknowledged to its client.
	if err := os.RemoveAll(s.spool); err != nil {
		return nil, err
	}
	for i := 0; i < spoolShards; i++ {
		if err := os.MkdirAll(filepath.Join(s.spool, strconv.Itoa(i)), 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// objectPath maps a key to its file, segment by segment. S3 keys may
// have segments a file tree cannot hold as names ("", "." and "..", as in
// "a//b", "a/./b", "a/../b"): those are stored hex-escaped behind a '%'
// (as is any segment starting with '%', so that the mapping is one to
// one), never cleaned into another key, never outside the bucket.
func (s *objectStore) objectPath(bucket, key string) (string, error) {
	if key == "" || len(key) > gofakes3.KeySizeLimit {
		return "", gofakes3.ErrKeyTooLong
	}
	if !s3name.ValidBucket(bucket) {
		return "", gofakes3.BucketNotFound(bucket)
	}
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = escapeSegment(seg)
	}
	return filepath.Join(append([]string{s.buckets, bucket}, segs...)...), nil
}

func escapeSegment(seg string) string {
	if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, "%") || strings.ContainsRune(seg, 0) {
		return "%" + hex.EncodeToString([]byte(seg))
	}
	return seg
}

// keyOf is objectPath's inverse for a path relative to its bucket.
func keyOf(rel string) (string, bool) {
	segs := strings.Split(filepath.ToSlash(rel), "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "%") {
			b, err := hex.DecodeString(seg[1:])
			if err != nil {
				return "", false // not ours
			}
			segs[i] = string(b)
		}
	}
	return strings.Join(segs, "/"), true
}

// bucketDir is a bucket's folder. A name S3 would refuse ("." and ".."
// first, which would name the store's own folders) is no bucket, whoever
// asks: the HTTP front end refuses it earlier, and the workers' jobs
// name buckets too.
func (s *objectStore) bucketDir(bucket string) (string, error) {
	if !s3name.ValidBucket(bucket) {
		return "", gofakes3.BucketNotFound(bucket)
	}
	d := filepath.Join(s.buckets, bucket)
	st, err := os.Stat(d)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !st.IsDir() {
		return "", gofakes3.BucketNotFound(bucket)
	}
	return d, err
}

func (s *objectStore) lock(bucket, key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(bucket + "/" + key))
	return &s.locks[h.Sum32()%uint32(len(s.locks))]
}

func (s *objectStore) ListBuckets() ([]gofakes3.BucketInfo, error) {
	entries, err := os.ReadDir(s.buckets)
	if err != nil {
		return nil, err
	}
	var out []gofakes3.BucketInfo
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, gofakes3.BucketInfo{Name: e.Name(), CreationDate: gofakes3.NewContentTime(info.ModTime())})
	}
	return out, nil
}

func (s *objectStore) CreateBucket(name string) error {
	if !s3name.ValidBucket(name) {
		return gofakes3.ResourceError(gofakes3.ErrInvalidBucketName, name)
	}
	err := os.Mkdir(filepath.Join(s.buckets, name), 0o700)
	if errors.Is(err, fs.ErrExist) {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	return err
}

func (s *objectStore) BucketExists(name string) (bool, error) {
	_, err := s.bucketDir(name)
	if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchBucket) {
		return false, nil
	}
	return err == nil, err
}

func (s *objectStore) DeleteBucket(name string) error {
	d, err := s.bucketDir(name)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(d)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	return os.Remove(d)
}

func (s *objectStore) ForceDeleteBucket(name string) error {
	d, err := s.bucketDir(name)
	if err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(s.legacyMeta, name))
	return os.RemoveAll(d)
}

// ListBucket lists the keys under the directory the prefix names, in
// S3's order (bytewise), a page at a time.
func (s *objectStore) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	d, err := s.bucketDir(bucket)
	if err != nil {
		return nil, err
	}
	root := d
	if i := strings.LastIndex(prefix.Prefix, "/"); prefix.HasPrefix && i > 0 {
		if p, err := s.objectPath(bucket, prefix.Prefix[:i]); err == nil {
			root = p
		}
	}
	type entry struct {
		key  string
		info fs.FileInfo
	}
	var entries []entry
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // the prefix names no directory, or an object went away
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d, p)
		if err != nil {
			return err
		}
		key, ok := keyOf(rel)
		if !ok {
			return nil
		}
		if page.HasMarker && key <= page.Marker || !prefix.Match(key, nil) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		entries = append(entries, entry{key, info})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	list := gofakes3.NewObjectList()
	var match gofakes3.PrefixMatch
	var n int64
	lastPrefix := ""
	for _, e := range entries {
		prefix.Match(e.key, &match)
		if match.CommonPrefix && match.MatchedPart == lastPrefix {
			list.NextMarker = e.key // the page's last prefix covers this key too
			continue
		}
		if page.MaxKeys > 0 && n >= page.MaxKeys {
			list.IsTruncated = true
			break
		}
		if match.CommonPrefix {
			list.AddPrefix(match.MatchedPart)
			lastPrefix = match.MatchedPart
		} else {
			fp, _ := s.objectPath(bucket, e.key)
			om, err := s.readMeta(fp, bucket, e.key)
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since the walk
			}
			if err != nil {
				return nil, err
			}
			list.Add(&gofakes3.Content{Key: e.key, LastModified: gofakes3.NewContentTime(e.info.ModTime()),
				ETag: gofakes3.FormatETag(om.Hash), Size: e.info.Size()})
		}
		n++
		list.NextMarker = e.key
	}
	if !list.IsTruncated {
		list.NextMarker = ""
	}
	return list, nil
}

func (s *objectStore) open(bucket, key string) (*os.File, fs.FileInfo, error) {
	if _, err := s.bucketDir(bucket); err != nil {
		return nil, nil, err
	}
	fp, err := s.objectPath(bucket, key)
	if err != nil {
		return nil, nil, gofakes3.KeyNotFound(key)
	}
	f, err := os.Open(fp)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil, gofakes3.KeyNotFound(key)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		f.Close()
		if err == nil {
			err = gofakes3.KeyNotFound(key)
		}
		return nil, nil, err
	}
	return f, st, nil
}

func (s *objectStore) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	f, st, err := s.open(bucket, key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	om, err := s.metaOf(f, bucket, key)
	if err != nil {
		return nil, err
	}
	return &gofakes3.Object{Name: key, Hash: om.Hash, Metadata: om.Meta, Size: st.Size(),
		Contents: io.NopCloser(strings.NewReader(""))}, nil
}

func (s *objectStore) GetObject(bucket, key string, rangeRequest *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	f, st, err := s.open(bucket, key)
	if err != nil {
		return nil, err
	}
	om, err := s.metaOf(f, bucket, key)
	if err != nil {
		f.Close()
		return nil, err
	}
	rng, err := rangeRequest.Range(st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	var contents io.ReadCloser = f
	if rng != nil {
		contents = struct {
			io.Reader
			io.Closer
		}{io.NewSectionReader(f, rng.Start, rng.Length), f}
	}
	return &gofakes3.Object{Name: key, Hash: om.Hash, Metadata: om.Meta, Range: rng,
		Size: st.Size(), Contents: contents}, nil
}

func (s *objectStore) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	_, err := s.put(bucket, key, meta, input, size, cond, true)
	return gofakes3.PutObjectResult{}, err
}

// putHashed stores an object and returns its MD5.
func (s *objectStore) putHashed(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) ([]byte, error) {
	return s.put(bucket, key, meta, input, size, cond, true)
}

// put stores an object. Without hash its ETag is left to be computed
// when first asked for (metaOf): the worker writing its outputs in this
// process never asks, and a reader over S3 pays for it once.
//
// A create-only write (If-None-Match: *) of a hashed object whose key
// holds the very same bytes succeeds without writing: it is a retry of a
// write whose answer was lost (an uploader may not overwrite, and must
// not be told it failed when it did not).
func (s *objectStore) put(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions, hash bool) ([]byte, error) {
	d, err := s.bucketDir(bucket)
	if err != nil {
		return nil, err
	}
	fp, err := s.objectPath(bucket, key)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Join(s.spool, strconv.Itoa(int(s.next.Add(1)%spoolShards))), "put-*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	placed := false
	defer func() {
		// Only when it was not renamed into place: an unlink of a name
		// that is gone is still a system call per object.
		if !placed {
			os.Remove(tmp)
		}
	}()
	// gofakes3 hands over its MD5-hashing reader, whose sum is the ETag it
	// answers; computing our own would hash every byte twice.
	summer, hashed := input.(interface{ Sum([]byte) []byte })
	var w io.Writer = f
	mine := md5.New()
	if hash && !hashed {
		w = io.MultiWriter(f, mine)
	}
	n, err := io.Copy(w, input)
	if err == nil && n != size {
		err = gofakes3.ErrIncompleteBody
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	om := objectMeta{Meta: meta}
	switch {
	case hashed:
		om.Hash = summer.Sum(nil)
	case hash:
		om.Hash = mine.Sum(nil)
	}
	b, _ := json.Marshal(om)
	sidecar := setXattr(f, b) != nil // a filesystem without user attributes
	if err := f.Close(); err != nil {
		return nil, err
	}
	if dir := filepath.Dir(fp); dir != d {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, "a key cannot extend another object's key as a folder")
		}
	}
	switch {
	case cond == nil || cond.IfMatch == nil && cond.IfNoneMatch == nil:
		err = os.Rename(tmp, fp)
	case cond.IfMatch == nil && cond.IfNoneMatch != nil && *cond.IfNoneMatch == "*":
		err = renameNoReplace(tmp, fp)
		if errors.Is(err, fs.ErrExist) {
			if om.Hash != nil {
				if cur, e := s.readMeta(fp, bucket, key); e == nil && hmac.Equal(cur.Hash, om.Hash) {
					return om.Hash, nil // the same bytes: a retry
				}
			}
			return nil, gofakes3.ErrorMessage(gofakes3.ErrPreconditionFailed, "The object already exists")
		}
	default:
		l := s.lock(bucket, key)
		l.Lock()
		defer l.Unlock()
		info := &gofakes3.ConditionalObjectInfo{}
		if obj, err := s.HeadObject(bucket, key); err == nil {
			info.Exists, info.Hash = true, obj.Hash
		} else if !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
			return nil, err
		}
		if err := gofakes3.CheckPutConditions(cond, info); err != nil {
			return nil, err
		}
		err = os.Rename(tmp, fp)
	}
	placed = err == nil
	if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil, gofakes3.ErrorMessage(gofakes3.ErrInvalidArgument, "a key cannot be a folder of other objects' keys")
	}
	if err == nil && sidecar {
		// Only once the object is in place: a refused write must not
		// change the existing object's metadata. Until this is written
		// the object reads with its MD5 and no metadata.
		err = s.writeLegacyMeta(bucket, key, b)
	}
	if err != nil {
		return nil, err
	}
	return om.Hash, nil
}

func (s *objectStore) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(s, srcBucket, srcKey, dstBucket, dstKey, meta)
}

func (s *objectStore) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	var res gofakes3.ObjectDeleteResult
	d, err := s.bucketDir(bucket)
	if err != nil {
		return res, err
	}
	fp, err := s.objectPath(bucket, key)
	if err != nil {
		return res, nil // no such object can exist
	}
	if st, err := os.Stat(fp); err != nil || st.IsDir() {
		return res, nil // deleting what is not there is not an error in S3
	}
	if err := os.Remove(fp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	os.Remove(s.legacyMetaPath(bucket, key))
	// Folders left empty go too, so that listings and DeleteBucket see
	// the bucket as S3 would.
	for dir := filepath.Dir(fp); dir != d && strings.HasPrefix(dir, d); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return res, nil
}

func (s *objectStore) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	for _, k := range keys {
		if _, err := s.DeleteObject(bucket, k); err != nil {
			res.Error = append(res.Error, gofakes3.ErrorResultFromError(err))
			continue
		}
		res.Deleted = append(res.Deleted, gofakes3.ObjectID{Key: k})
	}
	return res, nil
}

// metaOf reads an open object's ETag and metadata: from its attribute,
// else from an s3afero metadata file (data directories of older
// versions, or a filesystem without user attributes), else the MD5 of its
// bytes and no metadata.
func (s *objectStore) metaOf(f *os.File, bucket, key string) (objectMeta, error) {
	var om objectMeta
	fromXattr := false
	if b, err := getXattr(f); err == nil && json.Unmarshal(b, &om) == nil {
		fromXattr = true
	} else if b, err := os.ReadFile(s.legacyMetaPath(bucket, key)); err != nil || json.Unmarshal(b, &om) != nil {
		om = objectMeta{}
	}
	if len(om.Hash) == md5.Size {
		return om, nil
	}
	// Written in this process without its ETag, or with no metadata at all.
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return om, err
	}
	om.Hash = h.Sum(nil)
	if fromXattr {
		// Kept for the next reader; an object is never changed in place
		// (a new PUT is a new file), so the sum stays true.
		if b, err := json.Marshal(om); err == nil {
			setXattr(f, b)
		}
	}
	return om, nil
}

func (s *objectStore) readMeta(fp, bucket, key string) (objectMeta, error) {
	// Most objects carry their ETag in their attribute: read by path.
	if b, err := getXattrPath(fp); err == nil {
		var om objectMeta
		if json.Unmarshal(b, &om) == nil && len(om.Hash) == md5.Size {
			return om, nil
		}
	}
	f, err := os.Open(fp)
	if err != nil {
		return objectMeta{}, err
	}
	defer f.Close()
	return s.metaOf(f, bucket, key)
}

// legacyMetaPath is where s3afero kept an object's metadata.
func (s *objectStore) legacyMetaPath(bucket, key string) string {
	h := fnv.New128a()
	h.Write([]byte(key))
	flat := strings.NewReplacer("/", "_", "\\", "_").Replace(key)
	return filepath.Join(s.legacyMeta, bucket, flat+"-"+hex.EncodeToString(h.Sum(nil)))
}

func (s *objectStore) writeLegacyMeta(bucket, key string, b []byte) error {
	mp := s.legacyMetaPath(bucket, key)
	if err := os.MkdirAll(filepath.Dir(mp), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.spool, "0"), "meta-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), mp)
}

// linkNoReplace is renameNoReplace by a hard link, which fails when dst
// exists, then removing src.
func linkNoReplace(src, dst string) error {
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return os.Remove(src)
}
