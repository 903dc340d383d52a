package embed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sigV4 checks AWS Signature Version 4 on requests to the embedded S3
// endpoint (gofakes3 itself accepts anyone) and says whose credential
// signed it. It recomputes the signature over exactly the headers the
// client says it signed, as S3 does, for header-signed requests and
// presigned URLs, and refuses a signature that leaves Host or any x-amz-*
// header out (a request could otherwise be replayed against another host,
// or with other metadata or another decoded length). The payload is bound
// by what the client declares in X-Amz-Content-Sha256, which the
// signature covers; the body is checked against it as it is read
// (payload.go).
type sigV4 struct {
	keys []sigKey
	// skew bounds the difference between the request's date and now.
	skew time.Duration
	now  func() time.Time
}

// sigKey is one accepted credential and the role it carries.
type sigKey struct {
	access, secret string
	role           Role
}

func newSigV4(creds RoleCredentials, skew time.Duration) *sigV4 {
	s := &sigV4{skew: skew}
	for _, r := range Roles {
		if c, ok := creds[r]; ok && c.AccessKey != "" {
			s.keys = append(s.keys, sigKey{c.AccessKey, c.SecretKey, r})
		}
	}
	return s
}

const (
	sigAlgorithm  = "AWS4-HMAC-SHA256"
	amzDateLayout = "20060102T150405Z"

	// Values of X-Amz-Content-Sha256 besides a hex digest.
	payloadUnsigned        = "UNSIGNED-PAYLOAD"
	payloadStreaming       = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	payloadStreamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
)

var (
	errNoAuth        = errors.New("request is not signed")
	errSigV2         = errors.New("AWS Signature Version 2 is not accepted; sign with Signature Version 4")
	errBadAuth       = errors.New("malformed AWS Signature Version 4")
	errAccessKey     = errors.New("unknown access key")
	errSignature     = errors.New("signature does not match")
	errRequestTime   = errors.New("request time too skewed")
	errPresignLapse  = errors.New("presigned URL expired")
	errHostUnsigned  = errors.New("the Host header must be signed")
	errAmzUnsigned   = errors.New("every x-amz-* header must be signed")
	errScope         = errors.New("credential scope does not match the request date or service")
	errPayloadScheme = errors.New("X-Amz-Content-Sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD (no body), STREAMING-AWS4-HMAC-SHA256-PAYLOAD or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
)

// sigParams are the parts of a signature, from the Authorization header
// or a presigned URL's query.
type sigParams struct {
	access, date, region, service string
	signed                        []string
	signature                     string
	amzDate                       time.Time
	payload                       string
	presigned                     bool
}

// authResult is a verified request: who signed it, what it declares of
// its payload, and what a streaming body's chunk signatures chain from.
type authResult struct {
	role      Role
	payload   string
	presigned bool
	chain     chunkChain
}

// verify checks r's signature and returns whose it is.
func (s *sigV4) verify(r *http.Request) (authResult, error) {
	p, err := s.params(r)
	if err != nil {
		return authResult{}, err
	}
	var key *sigKey
	for i := range s.keys {
		// Every key is compared, so the time taken does not tell which
		// matched.
		if !subtleDiffer(p.access, s.keys[i].access) {
			key = &s.keys[i]
		}
	}
	if key == nil {
		return authResult{}, errAccessKey
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	if d := now().Sub(p.amzDate); !p.presigned && (d > s.skew || d < -s.skew) {
		return authResult{}, errRequestTime
	}
	if p.date != p.amzDate.UTC().Format("20060102") || p.service != "s3" || p.region == "" {
		return authResult{}, errScope
	}
	if !slices.Contains(p.signed, "host") {
		return authResult{}, errHostUnsigned
	}
	for name := range r.Header {
		if l := strings.ToLower(name); strings.HasPrefix(l, "x-amz-") && !slices.Contains(p.signed, l) {
			return authResult{}, errAmzUnsigned
		}
	}
	if !p.presigned && r.Header.Get("X-Amz-Date") == "" && !slices.Contains(p.signed, "date") {
		return authResult{}, errBadAuth // the date signed must be a signed header
	}
	if !validPayload(p.payload) {
		return authResult{}, errPayloadScheme
	}
	signingKey := s.signingKey(key.secret, p)
	want := s.signature(r, p, signingKey)
	if !hmac.Equal([]byte(want), []byte(p.signature)) {
		return authResult{}, errSignature
	}
	return authResult{role: key.role, payload: p.payload, presigned: p.presigned, chain: chunkChain{
		key: signingKey, date: p.amzDate.UTC().Format(amzDateLayout),
		scope: p.date + "/" + p.region + "/" + p.service + "/aws4_request", prev: want}}, nil
}

// validPayload: a lower-case hex SHA-256, or a scheme whose body is
// checked chunk by chunk, or UNSIGNED-PAYLOAD (accepted only without a
// body, payload.go). STREAMING-UNSIGNED-PAYLOAD-TRAILER binds the body to
// nothing but an unsigned CRC and is refused.
func validPayload(v string) bool {
	switch v {
	case payloadUnsigned, payloadStreaming, payloadStreamingSigned:
		return true
	}
	if len(v) != 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func subtleDiffer(a, b string) bool { return !hmac.Equal([]byte(a), []byte(b)) }

func (s *sigV4) params(r *http.Request) (sigParams, error) {
	var p sigParams
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != "" {
		if q.Get("X-Amz-Algorithm") != sigAlgorithm {
			return p, errBadAuth
		}
		p.presigned = true
		if err := p.credential(q.Get("X-Amz-Credential")); err != nil {
			return p, err
		}
		p.signed = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
		p.signature = q.Get("X-Amz-Signature")
		t, err := time.Parse(amzDateLayout, q.Get("X-Amz-Date"))
		if err != nil {
			return p, errBadAuth
		}
		p.amzDate = t
		exp, err := time.ParseDuration(q.Get("X-Amz-Expires") + "s")
		if err != nil || exp <= 0 || exp > 7*24*time.Hour {
			return p, errBadAuth
		}
		now := time.Now
		if s.now != nil {
			now = s.now
		}
		if now().After(t.Add(exp)) || now().Before(t.Add(-s.skew)) {
			return p, errPresignLapse
		}
		p.payload = payloadUnsigned
		return p, nil
	}
	h := r.Header.Get("Authorization")
	if strings.HasPrefix(h, "AWS ") || q.Get("AWSAccessKeyId") != "" {
		return p, errSigV2
	}
	if h == "" {
		return p, errNoAuth
	}
	alg, rest, ok := strings.Cut(h, " ")
	if !ok || alg != sigAlgorithm {
		return p, errBadAuth
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, errBadAuth
		}
		switch k {
		case "Credential":
			if err := p.credential(v); err != nil {
				return p, err
			}
		case "SignedHeaders":
			p.signed = strings.Split(v, ";")
		case "Signature":
			p.signature = v
		}
	}
	if p.access == "" || len(p.signed) == 0 || p.signature == "" {
		return p, errBadAuth
	}
	t, err := time.Parse(amzDateLayout, r.Header.Get("X-Amz-Date"))
	if err != nil {
		if t, err = http.ParseTime(r.Header.Get("Date")); err != nil {
			return p, errBadAuth
		}
	}
	p.amzDate = t
	p.payload = r.Header.Get("X-Amz-Content-Sha256")
	if p.payload == "" {
		return p, errBadAuth // S3 requires it with Signature Version 4
	}
	return p, nil
}

// credential parses AKID/yyyymmdd/region/service/aws4_request.
func (p *sigParams) credential(v string) error {
	c := strings.Split(v, "/")
	if len(c) != 5 || c[4] != "aws4_request" || c[0] == "" {
		return errBadAuth
	}
	p.access, p.date, p.region, p.service = c[0], c[1], c[2], c[3]
	return nil
}

// signingKey derives the key of the request's scope.
func (s *sigV4) signingKey(secret string, p sigParams) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), p.date)
	k = hmacSHA256(k, p.region)
	k = hmacSHA256(k, p.service)
	return hmacSHA256(k, "aws4_request")
}

// signature computes the expected signature of r.
func (s *sigV4) signature(r *http.Request, p sigParams, key []byte) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(awsEscape(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query(), p.presigned))
	b.WriteByte('\n')
	for _, name := range p.signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(p.signed, ";"))
	b.WriteByte('\n')
	b.WriteString(p.payload)

	scope := p.date + "/" + p.region + "/" + p.service + "/aws4_request"
	sum := sha256.Sum256([]byte(b.String()))
	toSign := sigAlgorithm + "\n" + p.amzDate.UTC().Format(amzDateLayout) + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// headerValue is a signed header's canonical value: Go keeps Host and
// Content-Length outside the header map; values are trimmed, inner runs
// of spaces folded, several values joined by commas.
func headerValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			vals = []string{v}
		} else if r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		vals = r.TransferEncoding
	default:
		vals = r.Header.Values(name)
	}
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

// canonicalQuery sorts and escapes the query; a presigned URL's own
// signature is not part of what it signs.
func canonicalQuery(q url.Values, presigned bool) string {
	var pairs [][2]string
	for k, vs := range q {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, [2]string{awsEscape(k, true), awsEscape(v, true)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p[0] + "=" + p[1]
	}
	return strings.Join(out, "&")
}

// awsEscape is URI encoding as Signature Version 4 defines it: every
// byte but A-Z a-z 0-9 - _ . ~ is %XX (upper case); '/' too in query
// parts, not in the path.
func awsEscape(s string, slash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !slash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
