package embed

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
)

// action is what an S3 request does, decided from its method, path and
// query before anything else looks at it: the role check, the limits and
// the handler all work from the same reading of the request.
type action int

const (
	actUnknown action = iota
	actListBuckets
	actHeadBucket
	actBucketLocation
	actListObjects
	actListVersions
	actGetVersioning
	actPutVersioning
	actCreateBucket
	actDeleteBucket
	actDeleteObjects
	actGetObject
	actHeadObject
	actPutObject
	actCopyObject
	actDeleteObject
	actCreateUpload
	actUploadPart
	actCompleteUpload
	actAbortUpload
	actListParts
	actListUploads
)

// s3Request is a request read by route.
type s3Request struct {
	act               action
	bucket, key       string
	srcBucket, srcKey string // of a copy
	uploadID          string
	partNumber        int
}

// creates tells whether a successful request creates an object, and so
// is announced when in a notify bucket (and its S3 event name).
func (q s3Request) creates() (event string, ok bool) {
	switch q.act {
	case actPutObject:
		return "s3:ObjectCreated:Put", true
	case actCopyObject:
		return "s3:ObjectCreated:Copy", true
	case actCompleteUpload:
		return "s3:ObjectCreated:CompleteMultipartUpload", true
	}
	return "", false
}

// dataBody tells whether the request's body is object data (streamed to
// disk, up to the object size limit) rather than a small XML document.
func (q s3Request) dataBody() bool { return q.act == actPutObject || q.act == actUploadPart }

// Refusals of route: fixed messages, naming nothing the request held.
var (
	errBucketName   = &s3Err{http.StatusBadRequest, "InvalidBucketName", "bucket names follow the S3 rules: 3 to 63 lower-case letters, digits, '.' and '-'"}
	errKeySegment   = &s3Err{http.StatusBadRequest, "KeyTooLongError", "this endpoint stores each '/'-separated part of a key as a file name: at most 255 bytes each"}
	errKeyName      = &s3Err{http.StatusBadRequest, "InvalidArgument", "object keys are at most 1024 bytes of UTF-8, without control characters or backslashes, not starting with '/', with no '.' or '..' segment"}
	errNotSupported = &s3Err{http.StatusNotImplemented, "NotImplemented", "this request is not supported by the embedded endpoint"}
	errMethod       = &s3Err{http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed here"}
	errPartNumber   = &s3Err{http.StatusBadRequest, "InvalidArgument", "partNumber must be 1 to 10000"}
	errUploadID     = &s3Err{http.StatusNotFound, "NoSuchUpload", "no such upload"}
	errCopySource   = &s3Err{http.StatusBadRequest, "InvalidArgument", "X-Amz-Copy-Source must be bucket/key"}
)

// Query parameters route accepts besides an action's own: presigned URL
// fields and the SDKs' operation hint.
var alwaysAllowed = map[string]bool{
	"X-Amz-Algorithm": true, "X-Amz-Credential": true, "X-Amz-Date": true, "X-Amz-Expires": true,
	"X-Amz-SignedHeaders": true, "X-Amz-Signature": true, "x-id": true,
}

var (
	listParams = map[string]bool{"list-type": true, "prefix": true, "delimiter": true, "marker": true, "max-keys": true,
		"continuation-token": true, "start-after": true, "encoding-type": true, "fetch-owner": true, "allow-unordered": true, "metadata": true}
	getObjectParams = map[string]bool{"response-content-type": true, "response-content-language": true, "response-expires": true,
		"response-cache-control": true, "response-content-disposition": true, "response-content-encoding": true}
	uploadParams  = map[string]bool{"uploadId": true, "partNumber": true, "max-parts": true, "part-number-marker": true, "encoding-type": true}
	uploadsParams = map[string]bool{"uploads": true, "prefix": true, "delimiter": true, "key-marker": true, "upload-id-marker": true,
		"max-uploads": true, "encoding-type": true}
)

// route reads r into an s3Request, refusing bucket names S3 would refuse
// (".", "..", upper case, empty: path tricks such as "/./bucket/key",
// "//bucket/key" or "/%2e%2e/..." all end here), keys with "." or ".."
// segments, and any query parameter it does not know: gofakes3 would
// read an unknown subresource (?acl, ?policy, ?tagging) as a plain object
// or bucket request, and PUT /b/k?acl would overwrite the object with the
// ACL document.
func route(r *http.Request) (s3Request, *s3Err) {
	var q s3Request
	path := r.URL.Path
	if !strings.HasPrefix(path, "/") {
		return q, errBucketName
	}
	query := r.URL.Query()
	if path == "/" {
		if r.Method != http.MethodGet {
			return q, errMethod
		}
		if err := onlyParams(query, nil); err != nil {
			return q, err
		}
		q.act = actListBuckets
		return q, nil
	}
	bucket, key, _ := strings.Cut(path[1:], "/")
	if !s3name.ValidBucket(bucket) {
		return q, errBucketName
	}
	q.bucket, q.key = bucket, key
	if key != "" && !s3name.ValidKey(key) {
		return q, errKeyName
	}
	if key != "" && !storableKey(key) {
		return q, errKeySegment
	}
	switch {
	case query.Has("uploadId"):
		if key == "" {
			return q, errKeyName
		}
		if err := onlyParams(query, uploadParams); err != nil {
			return q, err
		}
		q.uploadID = query.Get("uploadId")
		if !validUploadID(q.uploadID) {
			return q, errUploadID
		}
		switch r.Method {
		case http.MethodPut:
			n, err := strconv.Atoi(query.Get("partNumber"))
			if err != nil || n < 1 || n > maxParts {
				return q, errPartNumber
			}
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return q, errNotSupported // UploadPartCopy
			}
			q.act, q.partNumber = actUploadPart, n
		case http.MethodPost:
			q.act = actCompleteUpload
		case http.MethodDelete:
			q.act = actAbortUpload
		case http.MethodGet:
			q.act = actListParts
		default:
			return q, errMethod
		}
		if query.Has("partNumber") && q.act != actUploadPart {
			return q, errNotSupported
		}
		return q, nil
	case query.Has("uploads"):
		if err := onlyParams(query, uploadsParams); err != nil {
			return q, err
		}
		switch {
		case r.Method == http.MethodPost && key != "":
			q.act = actCreateUpload
		case r.Method == http.MethodGet && key == "":
			q.act = actListUploads
		default:
			return q, errMethod
		}
		return q, nil
	}
	if key == "" {
		return routeBucket(r, query, q)
	}
	if err := onlyParams(query, getObjectParams); err != nil {
		return q, err
	}
	switch r.Method {
	case http.MethodGet:
		q.act = actGetObject
	case http.MethodHead:
		q.act = actHeadObject
	case http.MethodPut:
		q.act = actPutObject
		if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
			sb, sk, err := parseCopySource(src)
			if err != nil {
				return q, err
			}
			q.act, q.srcBucket, q.srcKey = actCopyObject, sb, sk
			// Said once, unambiguously, for gofakes3 to read as we did.
			r.Header.Set("X-Amz-Copy-Source", sb+"/"+url.QueryEscape(sk))
		}
	case http.MethodDelete:
		q.act = actDeleteObject
	default:
		return q, errMethod
	}
	if q.act != actGetObject && len(query) > countAlways(query) {
		return q, errNotSupported // response-* overrides are for GET
	}
	return q, nil
}

func routeBucket(r *http.Request, query url.Values, q s3Request) (s3Request, *s3Err) {
	sub := func(name string) bool { return query.Has(name) }
	switch {
	case sub("location"):
		if r.Method != http.MethodGet {
			return q, errMethod
		}
		q.act = actBucketLocation
		return q, onlyParams(query, map[string]bool{"location": true})
	case sub("versioning"):
		switch r.Method {
		case http.MethodGet:
			q.act = actGetVersioning
		case http.MethodPut:
			q.act = actPutVersioning
		default:
			return q, errMethod
		}
		return q, onlyParams(query, map[string]bool{"versioning": true})
	case sub("versions"):
		if r.Method != http.MethodGet {
			return q, errMethod
		}
		q.act = actListVersions
		p := map[string]bool{"versions": true, "key-marker": true, "version-id-marker": true}
		for k := range listParams {
			p[k] = true
		}
		return q, onlyParams(query, p)
	case sub("delete"):
		if r.Method != http.MethodPost {
			return q, errMethod
		}
		q.act = actDeleteObjects
		return q, onlyParams(query, map[string]bool{"delete": true})
	}
	switch r.Method {
	case http.MethodGet:
		q.act = actListObjects
		return q, onlyParams(query, listParams)
	case http.MethodHead:
		q.act = actHeadBucket
	case http.MethodPut:
		q.act = actCreateBucket
	case http.MethodDelete:
		q.act = actDeleteBucket
	case http.MethodPost:
		return q, errNotSupported // browser form uploads: parsed into memory by gofakes3
	default:
		return q, errMethod
	}
	return q, onlyParams(query, nil)
}

func onlyParams(query url.Values, allowed map[string]bool) *s3Err {
	for k := range query {
		if !allowed[k] && !alwaysAllowed[k] {
			return errNotSupported
		}
	}
	return nil
}

func countAlways(query url.Values) int {
	n := 0
	for k := range query {
		if alwaysAllowed[k] {
			n++
		}
	}
	return n
}

// parseCopySource reads X-Amz-Copy-Source ("[/]bucket/key", the key
// URL-encoded, no version) as gofakes3 does.
func parseCopySource(src string) (bucket, key string, err *s3Err) {
	s := strings.TrimPrefix(src, "/")
	b, k, ok := strings.Cut(s, "/")
	if !ok {
		dec, e := url.QueryUnescape(src)
		if e != nil {
			return "", "", errCopySource
		}
		b, k, ok = strings.Cut(strings.TrimPrefix(dec, "/"), "/")
		if !ok {
			return "", "", errCopySource
		}
	} else {
		if strings.Contains(k, "?") {
			return "", "", errNotSupported // a version of the source
		}
		dec, e := url.QueryUnescape(k)
		if e != nil {
			return "", "", errCopySource
		}
		k = dec
	}
	if !s3name.ValidBucket(b) {
		return "", "", errBucketName
	}
	if k == "" || !s3name.ValidKey(k) {
		return "", "", errKeyName
	}
	return b, k, nil
}

// maxKeySegment is the longest file name the stores' file systems take:
// the endpoint keeps an object under its key's parts as directories and
// a file name. A longer part was a valid S3 key that failed inside the
// store, answered 500 after the body was received.
const maxKeySegment = 255

// storableKey reports whether every part of key fits a file name.
func storableKey(key string) bool {
	for _, seg := range strings.Split(key, "/") {
		if len(seg) > maxKeySegment {
			return false
		}
	}
	return true
}
