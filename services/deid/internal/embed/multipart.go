package embed

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"go.uber.org/zap"
)

// uploads are the multipart uploads in progress, on disk: one folder per
// upload under Dir/uploads, named by its random id, holding upload.json
// (bucket, key, metadata, start time) and one file per part, named
// <part number>.<size>.<MD5> so that listing a folder is the upload's
// state (no index to keep consistent with the files). gofakes3 keeps
// parts in memory, without limit or expiry, and its multipart interface
// knows neither the role of the request nor its conditions: this
// replaces it.
//
// A part is written to a temporary file in its upload's folder and
// renamed into place once whole (and checked, signature and size); the
// completion concatenates the parts into the object store's spool and
// renames the object into place as a PUT does. Uploads older than the
// expiry are removed, parts and all.
type uploads struct {
	dir            string
	st             *objectStore
	maxObject      int64
	maxPart        int64
	maxUploads     int
	expiry         time.Duration
	locks          [64]sync.Mutex // per upload, striped
	now            func() time.Time
	log            *zap.Logger
	stop, finished chan struct{}
}

// S3's limits: part numbers 1 to 10,000, parts up to 5 GiB.
const (
	maxParts    = 10000
	s3MaxPart   = 5 << 30
	uploadIDLen = 32
)

type uploadInfo struct {
	Bucket  string            `json:"bucket"`
	Key     string            `json:"key"`
	Meta    map[string]string `json:"meta"`
	Created time.Time         `json:"created"`
}

type partFile struct {
	number int
	size   int64
	etag   string // hex MD5
	name   string
}

var (
	errTooManyUploads = &s3Err{http.StatusServiceUnavailable, "SlowDown", "too many multipart uploads in progress; complete or abort some"}
	errInvalidPart    = &s3Err{http.StatusBadRequest, "InvalidPart", "a listed part was not uploaded, or its ETag differs"}
	errPartOrder      = &s3Err{http.StatusBadRequest, "InvalidPartOrder", "parts must be listed in ascending order, each once"}
	errMalformedXML   = &s3Err{http.StatusBadRequest, "MalformedXML", "malformed XML"}
	errInternal       = &s3Err{http.StatusInternalServerError, "InternalError", "internal error"}
)

func newUploads(dir string, st *objectStore, maxObject int64, maxUploads int, expiry time.Duration, log *zap.Logger) (*uploads, error) {
	u := &uploads{dir: dir, st: st, maxObject: maxObject, maxPart: min(int64(s3MaxPart), maxObject), maxUploads: maxUploads,
		expiry: expiry, now: time.Now, log: log, stop: make(chan struct{}), finished: make(chan struct{})}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Parts being written when a process was killed were never
	// acknowledged; the uploads themselves (acknowledged parts) stay,
	// until they expire.
	tmps, _ := filepath.Glob(filepath.Join(dir, "*", "tmp-*"))
	for _, t := range tmps {
		os.Remove(t)
	}
	u.expire()
	go u.sweep()
	return u, nil
}

// close stops the sweeper.
func (u *uploads) close() {
	close(u.stop)
	<-u.finished
}

// sweep removes expired uploads now and then: every tenth of the expiry,
// at least every minute... at most every hour.
func (u *uploads) sweep() {
	defer close(u.finished)
	every := min(max(u.expiry/10, 10*time.Millisecond), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
			u.expire()
		}
	}
}

// expire removes every upload started longer ago than the expiry.
func (u *uploads) expire() {
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		return
	}
	n := 0
	for _, e := range entries {
		id := e.Name()
		if !validUploadID(id) {
			continue
		}
		info, err := u.info(id)
		if err == nil && u.now().Sub(info.Created) <= u.expiry {
			continue
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			// A folder without upload.json: created and never finished
			// (a crash between the two), or being removed. Judged by its
			// own age.
			if fi, e2 := e.Info(); e2 != nil || u.now().Sub(fi.ModTime()) <= u.expiry {
				continue
			}
		}
		l := u.lock(id)
		l.Lock()
		if os.RemoveAll(filepath.Join(u.dir, id)) == nil {
			n++
		}
		l.Unlock()
	}
	if n > 0 {
		u.log.Info("removed expired multipart uploads", zap.Int("uploads", n), zap.Duration("expiry", u.expiry))
	}
}

func validUploadID(id string) bool {
	if len(id) != uploadIDLen {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

func (u *uploads) lock(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &u.locks[h.Sum32()%uint32(len(u.locks))]
}

func (u *uploads) info(id string) (uploadInfo, error) {
	var info uploadInfo
	b, err := os.ReadFile(filepath.Join(u.dir, id, "upload.json"))
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, err
	}
	return info, nil
}

// get returns the upload id of bucket/key, if it is in progress and not
// expired.
func (u *uploads) get(id, bucket, key string) (uploadInfo, *s3Err) {
	if !validUploadID(id) {
		return uploadInfo{}, errUploadID
	}
	info, err := u.info(id)
	if err != nil || info.Bucket != bucket || info.Key != key || u.now().Sub(info.Created) > u.expiry {
		return uploadInfo{}, errUploadID
	}
	return info, nil
}

// parts lists an upload's parts by number (one file per number; a part
// sent again replaced the earlier one).
func (u *uploads) parts(id string) (map[int]partFile, error) {
	entries, err := os.ReadDir(filepath.Join(u.dir, id))
	if err != nil {
		return nil, err
	}
	out := map[int]partFile{}
	for _, e := range entries {
		f := strings.Split(e.Name(), ".")
		if len(f) != 3 {
			continue
		}
		n, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || len(f[2]) != 2*md5.Size {
			continue
		}
		out[n] = partFile{number: n, size: size, etag: f[2], name: e.Name()}
	}
	return out, nil
}

func partName(n int, size int64, etag string) string { return fmt.Sprintf("%05d.%d.%s", n, size, etag) }

// userMeta is what an upload keeps of its initiating request's headers,
// as gofakes3 keeps of a PUT's (content headers and x-amz-meta-*).
func userMeta(h http.Header, now time.Time) map[string]string {
	meta := map[string]string{}
	for k, v := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if strings.HasPrefix(ck, "X-Amz-Meta-") || ck == "Content-Type" || ck == "Content-Disposition" ||
			ck == "Content-Encoding" || ck == "Content-Language" || ck == "Cache-Control" || ck == "Expires" {
			meta[ck] = v[0]
		}
	}
	meta["Last-Modified"] = now.UTC().Format(http.TimeFormat)
	return meta
}

func metaSize(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

func (u *uploads) create(bucket, key string, meta map[string]string) (string, *s3Err) {
	if _, err := u.st.bucketDir(bucket); err != nil {
		return "", errNoSuchBucket
	}
	if metaSize(meta) > gofakes3.DefaultMetadataSizeLimit {
		return "", &s3Err{http.StatusBadRequest, "MetadataTooLarge", "metadata headers exceed the limit"}
	}
	if entries, err := os.ReadDir(u.dir); err != nil || len(entries) >= u.maxUploads {
		return "", errTooManyUploads
	}
	id := randomHex(uploadIDLen / 2)
	d := filepath.Join(u.dir, id)
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", errInternal
	}
	b, _ := json.Marshal(uploadInfo{Bucket: bucket, Key: key, Meta: meta, Created: u.now().UTC()})
	f, err := os.CreateTemp(d, "tmp-*")
	if err == nil {
		_, err = f.Write(b)
		if e := f.Close(); err == nil {
			err = e
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(d, "upload.json"))
		}
	}
	if err != nil {
		os.RemoveAll(d)
		return "", errInternal
	}
	return id, nil
}

// putPart stores one part, whole or not at all, within the part and
// upload limits.
func (u *uploads) putPart(id, bucket, key string, n int, body io.Reader, size int64) (string, *s3Err) {
	if _, e := u.get(id, bucket, key); e != nil {
		return "", e
	}
	d := filepath.Join(u.dir, id)
	if e := u.fits(id, n, size); e != nil {
		return "", e
	}
	f, err := os.CreateTemp(d, "tmp-*")
	if err != nil {
		return "", errUploadID // aborted, completed or expired meanwhile
	}
	tmp := f.Name()
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmp)
		}
	}()
	h := md5.New()
	got, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, u.maxPart+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", bodyErr(err)
	}
	if got > u.maxPart {
		return "", errPartTooLarge
	}
	if size >= 0 && got != size {
		return "", errIncomplete
	}
	etag := hex.EncodeToString(h.Sum(nil))
	l := u.lock(id)
	l.Lock()
	defer l.Unlock()
	if _, e := u.get(id, bucket, key); e != nil {
		return "", e
	}
	if e := u.fits(id, n, got); e != nil {
		return "", e
	}
	old, _ := u.parts(id)
	if err := os.Rename(tmp, filepath.Join(d, partName(n, got, etag))); err != nil {
		return "", errUploadID
	}
	placed = true
	if p, ok := old[n]; ok && p.name != partName(n, got, etag) {
		os.Remove(filepath.Join(d, p.name))
	}
	return etag, nil
}

// fits tells whether a part of size bytes as number n keeps the upload
// within the object size limit.
func (u *uploads) fits(id string, n int, size int64) *s3Err {
	if size > u.maxPart {
		return errPartTooLarge
	}
	parts, err := u.parts(id)
	if err != nil {
		return errUploadID
	}
	total := max(size, 0)
	for num, p := range parts {
		if num != n {
			total += p.size
		}
	}
	if total > u.maxObject {
		return errEntityTooLarge
	}
	return nil
}

// bodyErr is the answer to a body that could not be read whole.
func bodyErr(err error) *s3Err {
	st := bodyState{err: err}
	return st.failure()
}

// complete assembles the listed parts into the object, create-only when
// createOnly (an object that exists with other bytes is left as it is:
// PreconditionFailed); it returns the object's ETag.
func (u *uploads) complete(id, bucket, key string, req gofakes3.CompleteMultipartUploadRequest, createOnly bool) (string, *s3Err) {
	info, e := u.get(id, bucket, key)
	if e != nil {
		return "", e
	}
	l := u.lock(id)
	l.Lock()
	defer l.Unlock()
	if _, e := u.get(id, bucket, key); e != nil {
		return "", e
	}
	parts, err := u.parts(id)
	if err != nil {
		return "", errUploadID
	}
	if len(req.Parts) == 0 {
		return "", errMalformedXML
	}
	var files []partFile
	var total int64
	last := 0
	for _, p := range req.Parts {
		if p.PartNumber <= last {
			return "", errPartOrder
		}
		last = p.PartNumber
		f, ok := parts[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != f.etag {
			return "", errInvalidPart
		}
		files = append(files, f)
		total += f.size
	}
	if total > u.maxObject {
		return "", errEntityTooLarge
	}
	d := filepath.Join(u.dir, id)
	var readers []io.Reader
	for _, f := range files {
		fh, err := os.Open(filepath.Join(d, f.name))
		if err != nil {
			return "", errInvalidPart
		}
		defer fh.Close()
		readers = append(readers, fh)
	}
	var cond *gofakes3.PutConditions
	if createOnly {
		star := "*"
		cond = &gofakes3.PutConditions{IfNoneMatch: &star}
	}
	meta := maps(info.Meta)
	meta["Last-Modified"] = u.now().UTC().Format(http.TimeFormat)
	sum, err := u.st.putHashed(bucket, key, meta, io.MultiReader(readers...), total, cond)
	if err != nil {
		return "", storeErr(err)
	}
	os.RemoveAll(d)
	return hex.EncodeToString(sum), nil
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (u *uploads) abort(id, bucket, key string) *s3Err {
	if _, e := u.get(id, bucket, key); e != nil {
		return e
	}
	l := u.lock(id)
	l.Lock()
	defer l.Unlock()
	if err := os.RemoveAll(filepath.Join(u.dir, id)); err != nil {
		return errInternal
	}
	return nil
}

// storeErr is the answer to a store failure: gofakes3's S3 errors by
// their code, anything else internal (file errors name keys).
func storeErr(err error) *s3Err {
	var ge gofakes3.Error
	if errors.As(err, &ge) {
		code := ge.ErrorCode()
		status := code.Status()
		if status == 0 {
			status = http.StatusInternalServerError
		}
		msg := code.Message()
		if code == gofakes3.ErrPreconditionFailed {
			msg = "an object with this key exists"
		}
		if msg == "" {
			msg = string(code)
		}
		return &s3Err{status, string(code), msg}
	}
	var se *s3Err
	if errors.As(err, &se) {
		return se
	}
	if b := bodyErr(err); b != errIncomplete {
		return b
	}
	return errInternal
}

var errNoSuchBucket = &s3Err{http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist"}

// serveUpload answers the multipart requests (route has checked the
// names and the role has been allowed).
func (s *S3) serveUpload(w http.ResponseWriter, r *http.Request, q s3Request, role Role) *s3Err {
	u := s.uploads
	switch q.act {
	case actCreateUpload:
		id, e := u.create(q.bucket, q.key, userMeta(r.Header, u.now()))
		if e != nil {
			return e
		}
		return writeXML(w, gofakes3.InitiateMultipartUploadResult{Bucket: q.bucket, Key: q.key, UploadID: gofakes3.UploadID(id)})
	case actUploadPart:
		etag, e := u.putPart(q.uploadID, q.bucket, q.key, q.partNumber, r.Body, r.ContentLength)
		if e != nil {
			return e
		}
		w.Header().Set("ETag", `"`+etag+`"`)
		w.WriteHeader(http.StatusOK)
		return nil
	case actCompleteUpload:
		var req gofakes3.CompleteMultipartUploadRequest
		if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
			return errMalformedXML
		}
		createOnly := createOnly(role) || r.Header.Get("If-None-Match") == "*"
		if r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "" && r.Header.Get("If-None-Match") != "*" {
			return errNotSupported
		}
		etag, e := u.complete(q.uploadID, q.bucket, q.key, req, createOnly)
		if e != nil {
			return e
		}
		return writeXML(w, gofakes3.CompleteMultipartUploadResult{Location: "http://" + r.Host + "/" + q.bucket + "/" + q.key,
			Bucket: q.bucket, Key: q.key, ETag: `"` + etag + `"`})
	case actAbortUpload:
		if e := u.abort(q.uploadID, q.bucket, q.key); e != nil {
			return e
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case actListParts:
		return u.listParts(w, r, q)
	case actListUploads:
		return u.listUploads(w, r, q)
	}
	return errNotSupported
}

func (u *uploads) listParts(w http.ResponseWriter, r *http.Request, q s3Request) *s3Err {
	if _, e := u.get(q.uploadID, q.bucket, q.key); e != nil {
		return e
	}
	parts, err := u.parts(q.uploadID)
	if err != nil {
		return errUploadID
	}
	marker, _ := strconv.Atoi(r.URL.Query().Get("part-number-marker"))
	limit, err := strconv.Atoi(r.URL.Query().Get("max-parts"))
	if err != nil || limit <= 0 || limit > 1000 {
		limit = 1000
	}
	nums := make([]int, 0, len(parts))
	for n := range parts {
		if n > marker {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	out := gofakes3.ListMultipartUploadPartsResult{Bucket: q.bucket, Key: q.key, UploadID: gofakes3.UploadID(q.uploadID),
		PartNumberMarker: marker, MaxParts: int64(limit)}
	for i, n := range nums {
		if i == limit {
			out.IsTruncated = true
			break
		}
		p := parts[n]
		fi, err := os.Stat(filepath.Join(u.dir, q.uploadID, p.name))
		mod := u.now()
		if err == nil {
			mod = fi.ModTime()
		}
		out.Parts = append(out.Parts, gofakes3.ListMultipartUploadPartItem{PartNumber: n, ETag: `"` + p.etag + `"`,
			Size: p.size, LastModified: gofakes3.NewContentTime(mod)})
		out.NextPartNumberMarker = n
	}
	return writeXML(w, out)
}

func (u *uploads) listUploads(w http.ResponseWriter, r *http.Request, q s3Request) *s3Err {
	if _, err := u.st.bucketDir(q.bucket); err != nil {
		return errNoSuchBucket
	}
	prefix := r.URL.Query().Get("prefix")
	entries, _ := os.ReadDir(u.dir)
	out := gofakes3.ListMultipartUploadsResult{Bucket: q.bucket, Prefix: prefix, MaxUploads: gofakes3.MaxUploadsLimit}
	var items []gofakes3.ListMultipartUploadItem
	for _, e := range entries {
		if !validUploadID(e.Name()) {
			continue
		}
		info, err := u.info(e.Name())
		if err != nil || info.Bucket != q.bucket || !strings.HasPrefix(info.Key, prefix) || u.now().Sub(info.Created) > u.expiry {
			continue
		}
		items = append(items, gofakes3.ListMultipartUploadItem{Key: info.Key, UploadID: gofakes3.UploadID(e.Name()),
			Initiated: gofakes3.NewContentTime(info.Created)})
	}
	slices.SortFunc(items, func(a, b gofakes3.ListMultipartUploadItem) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(string(a.UploadID), string(b.UploadID))
	})
	out.Uploads = items
	return writeXML(w, out)
}

func writeXML(w http.ResponseWriter, v any) *s3Err {
	b, err := xml.Marshal(v)
	if err != nil {
		return errInternal
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	w.Write(b)
	return nil
}
