package embed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// s3Err is an S3 error answer: status, code and a fixed message that
// names nothing the client sent (keys can name patients).
type s3Err struct {
	status    int
	code, msg string
}

func (e *s3Err) Error() string { return e.code + ": " + e.msg }

// Refusals of a body.
var (
	errChunkFraming    = &s3Err{http.StatusBadRequest, "IncompleteBody", "malformed aws-chunked body"}
	errChunkSignature  = &s3Err{http.StatusForbidden, "SignatureDoesNotMatch", "a chunk signature does not match"}
	errDecodedLength   = &s3Err{http.StatusBadRequest, "IncompleteBody", "the body is not X-Amz-Decoded-Content-Length bytes"}
	errContentSHA256   = &s3Err{http.StatusBadRequest, "XAmzContentSHA256Mismatch", "the body does not match X-Amz-Content-Sha256"}
	errUnsignedBody    = &s3Err{http.StatusForbidden, "AccessDenied", "a body must be signed: send its SHA-256 in X-Amz-Content-Sha256, or use STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}
	errEntityTooLarge  = &s3Err{http.StatusBadRequest, "EntityTooLarge", "the object is larger than this endpoint accepts (--max-object-size)"}
	errPartTooLarge    = &s3Err{http.StatusBadRequest, "EntityTooLarge", "the part is larger than this endpoint accepts"}
	errControlTooLarge = &s3Err{http.StatusBadRequest, "MaxMessageLengthExceeded", "request body too large"}
	errDecodedHeader   = &s3Err{http.StatusBadRequest, "MissingContentLength", "X-Amz-Decoded-Content-Length is required with a streaming payload"}
	errLengthRequired  = &s3Err{http.StatusLengthRequired, "MissingContentLength", "Content-Length is required"}
	errSlowBody        = &s3Err{http.StatusRequestTimeout, "RequestTimeout", "the body arrived too slowly"}
	errIncomplete      = &s3Err{http.StatusBadRequest, "IncompleteBody", "the body ended early"}
)

// maxControlBody bounds the XML documents requests carry (a multipart
// completion of 10,000 parts is about 1 MiB); they are read whole, and
// checked, before the request is acted on.
const maxControlBody = 2 << 20

// bodyState is what became of a request body as it was read: the first
// error, for the handler to answer with once gofakes3 (which only says
// "internal error") has given up on the request.
type bodyState struct{ err error }

func (s *bodyState) failure() *s3Err {
	var e *s3Err
	switch {
	case s.err == nil:
		return nil
	case errors.As(s.err, &e):
		return e
	case errors.Is(s.err, io.ErrUnexpectedEOF):
		return errIncomplete
	case errors.Is(s.err, os.ErrDeadlineExceeded):
		return errSlowBody
	}
	return errIncomplete
}

// recording notes the first error of the reader under it.
type recording struct {
	r  io.Reader
	st *bodyState
}

func (b recording) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.st.err == nil {
		b.st.err = err
	}
	return n, err
}

// sha256Body checks the body against its declared digest: at its end the
// digest must match, or the reader fails instead of reporting io.EOF, so
// that nothing is stored.
type sha256Body struct {
	r    io.Reader
	h    hash.Hash
	want []byte
}

func (b *sha256Body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && !bytes.Equal(b.h.Sum(nil), b.want) {
		return n, errContentSHA256
	}
	return n, err
}

// capped fails once more than max bytes were read (a body of unknown
// length).
type capped struct {
	r   io.Reader
	max int64
	err *s3Err
}

func (c *capped) Read(p []byte) (int, error) {
	if c.max < 0 {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.max -= int64(n)
	if c.max < 0 {
		return n, c.err
	}
	return n, err
}

// bodyLimits are the sizes a request body may have.
type bodyLimits struct {
	object, part int64
}

// prepareBody puts the checks of the payload in front of r's body: a body
// whose SHA-256 was declared is hashed as it is read; a streaming body's
// chunks are checked as they come; a body without either is refused
// (UNSIGNED-PAYLOAD binds nothing to the signature: anyone on the path
// could swap the bytes; it is accepted for requests without a body, and
// presigned URLs are for GET). Object data is passed on as it arrives,
// up to the size limits; an XML body is read whole and checked before
// the request goes on. The headers that described the payload are
// removed, so that gofakes3 reads plain bytes and does not keep them as
// metadata.
func prepareBody(r *http.Request, a authResult, q s3Request, lim bodyLimits, ctl chan struct{}) (*bodyState, *s3Err) {
	st := &bodyState{}
	hasBody := r.ContentLength != 0
	size := r.ContentLength
	var body io.Reader = r.Body
	switch a.payload {
	case payloadUnsigned:
		if hasBody {
			return nil, errUnsignedBody
		}
	case payloadStreaming, payloadStreamingSigned:
		n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || n < 0 {
			return nil, errDecodedHeader
		}
		body = newSignedChunks(r.Body, a.chain, a.payload == payloadStreamingSigned, n)
		size = n
		r.ContentLength = n
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
		r.Header.Del("X-Amz-Decoded-Content-Length")
		r.Header.Del("X-Amz-Trailer")
		var enc []string
		for _, e := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
			if e = strings.TrimSpace(e); e != "" && e != "aws-chunked" {
				enc = append(enc, e)
			}
		}
		if len(enc) > 0 {
			r.Header.Set("Content-Encoding", strings.Join(enc, ","))
		} else {
			r.Header.Del("Content-Encoding")
		}
	default:
		want, _ := hex.DecodeString(a.payload)
		body = &sha256Body{r: r.Body, h: sha256.New(), want: want}
	}
	r.Header.Del("X-Amz-Content-Sha256")

	if q.dataBody() {
		max, tooLarge := lim.object, errEntityTooLarge
		if q.act == actUploadPart {
			max, tooLarge = min(lim.part, lim.object), errPartTooLarge
		}
		if q.act == actUploadPart && size < 0 {
			return nil, errLengthRequired
		}
		if size > max {
			return nil, tooLarge
		}
		if size < 0 {
			body = &capped{r: body, max: max, err: tooLarge}
		}
		r.Body = io.NopCloser(recording{body, st})
		return st, nil
	}
	if !hasBody {
		return st, nil
	}
	if size > maxControlBody {
		return nil, errControlTooLarge
	}
	// Few at once: each holds up to maxControlBody in memory.
	select {
	case ctl <- struct{}{}:
		defer func() { <-ctl }()
	case <-r.Context().Done():
		return nil, errSlowBody
	}
	b, err := io.ReadAll(recording{&capped{r: body, max: maxControlBody, err: errControlTooLarge}, st})
	if err != nil {
		return nil, st.failure()
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return st, nil
}

// pace bounds how long a client may hold a request open without doing
// its part: each read of the body, and each write of the answer, must
// progress within idle, and after grace the body (or the answer) must
// average minRate bytes a second. A client that sends one byte now and
// then (or reads the answer that way) is cut off instead of holding a
// connection for ever.
type pace struct {
	rc            *http.ResponseController
	idle, grace   time.Duration
	minRate       float64
	start, wstart time.Time
	read, written int64
	eof           bool
}

func newPace(w http.ResponseWriter, idle, grace time.Duration, minRate float64) *pace {
	p := &pace{rc: http.NewResponseController(w), idle: idle, grace: grace, minRate: minRate, start: time.Now()}
	// The last answer on this connection left its write deadline set.
	p.rc.SetWriteDeadline(time.Time{})
	return p
}

type pacedBody struct {
	r io.ReadCloser
	p *pace
}

func (b pacedBody) Read(buf []byte) (int, error) {
	b.p.rc.SetReadDeadline(time.Now().Add(b.p.idle))
	n, err := b.r.Read(buf)
	b.p.read += int64(n)
	switch {
	case err == io.EOF:
		// Read whole: the deadline would otherwise go on to cut the
		// server's own watch of the connection.
		b.p.eof = true
		b.p.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errSlowBody
	case err == nil && b.p.slow(b.p.start, b.p.read):
		err = errSlowBody
	}
	return n, err
}

func (b pacedBody) Close() error { return b.r.Close() }

func (p *pace) slow(since time.Time, n int64) bool {
	el := time.Since(since)
	return el > p.grace && float64(n) < p.minRate*el.Seconds()
}

type pacedWriter struct {
	http.ResponseWriter
	p *pace
}

func (w pacedWriter) Write(b []byte) (int, error) {
	if w.p.wstart.IsZero() {
		w.p.wstart = time.Now()
	}
	w.p.rc.SetWriteDeadline(time.Now().Add(w.p.idle))
	n, err := w.ResponseWriter.Write(b)
	w.p.written += int64(n)
	if err == nil && w.p.slow(w.p.wstart, w.p.written) {
		err = errSlowBody
	}
	return n, err
}

// end: what is left of a body not read to its end (a refused request) is
// not waited for longer than idle.
func (p *pace) end(hasBody bool) {
	if hasBody && !p.eof {
		p.rc.SetReadDeadline(time.Now().Add(p.idle))
	}
}
