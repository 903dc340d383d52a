package embed

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"strconv"
	"strings"
)

// chunkChain is what the signatures of an aws-chunked body chain from:
// the request's signing key and scope, and the previous signature (the
// request's own, then each chunk's in turn).
type chunkChain struct {
	key         []byte
	date, scope string
	prev        string
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// next is the signature of the chunk whose data hashes to sum; it becomes
// the previous signature of the chunk after it.
func (c *chunkChain) next(sum []byte) string {
	sig := hex.EncodeToString(hmacSHA256(c.key, "AWS4-HMAC-SHA256-PAYLOAD\n"+c.date+"\n"+c.scope+"\n"+c.prev+"\n"+emptySHA256+"\n"+hex.EncodeToString(sum)))
	c.prev = sig
	return sig
}

// trailer is the signature of the trailing headers, canonically
// "name:value\n" each.
func (c *chunkChain) trailer(canon []byte) string {
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(hmacSHA256(c.key, "AWS4-HMAC-SHA256-TRAILER\n"+c.date+"\n"+c.scope+"\n"+c.prev+"\n"+hex.EncodeToString(sum[:])))
}

// Limits of the framing: a chunk header line, the trailer.
const (
	maxChunkLine    = 4 << 10
	maxTrailerBytes = 4 << 10
)

// signedChunks decodes an aws-chunked body (STREAMING-AWS4-HMAC-SHA256-
// PAYLOAD, with or without a signed trailer) and checks each chunk's
// signature as its data ends. Data is handed on before its chunk is
// checked (a chunk may be large: it is never held whole), but io.EOF
// comes only once every chunk, the final empty one and the trailer have
// been checked and the data is exactly the declared decoded length: a
// reader that stores what it read until EOF, and discards it on any
// error, stores only a body the client signed.
type signedChunks struct {
	br      *bufio.Reader
	chain   chunkChain
	trailer bool
	want    int64 // x-amz-decoded-content-length
	got     int64
	left    int64  // data left in the current chunk
	claimed string // the current chunk's signature, as sent
	inChunk bool
	h       hash.Hash
	done    bool
	err     error
}

func newSignedChunks(r io.Reader, chain chunkChain, trailer bool, decoded int64) *signedChunks {
	return &signedChunks{br: bufio.NewReaderSize(r, maxChunkLine), chain: chain, trailer: trailer, want: decoded, h: sha256.New()}
}

func (c *signedChunks) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	for c.left == 0 {
		if c.inChunk {
			if err := c.endChunk(); err != nil {
				return 0, c.fail(err)
			}
		}
		if err := c.startChunk(); err != nil {
			return 0, c.fail(err)
		}
		if c.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.h.Write(p[:n])
	c.left -= int64(n)
	c.got += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the framing is not finished
	}
	if err != nil {
		return n, c.fail(err)
	}
	return n, nil
}

func (c *signedChunks) fail(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	c.err = err
	return err
}

// endChunk reads the CRLF after a chunk's data and checks its signature.
func (c *signedChunks) endChunk() error {
	line, err := c.line()
	if err != nil {
		return err
	}
	if line != "" {
		return errChunkFraming
	}
	if want := c.chain.next(c.h.Sum(nil)); !hmac.Equal([]byte(want), []byte(c.claimed)) {
		return errChunkSignature
	}
	c.inChunk = false
	return nil
}

// startChunk reads a chunk header: hex-size;chunk-signature=sig. The
// final, empty chunk is checked at once, with the trailer after it.
func (c *signedChunks) startChunk() error {
	line, err := c.line()
	if err != nil {
		return err
	}
	sizeHex, ext, _ := strings.Cut(line, ";")
	size, err := strconv.ParseInt(sizeHex, 16, 64)
	if err != nil || size < 0 || len(sizeHex) > 16 {
		return errChunkFraming
	}
	sig, ok := strings.CutPrefix(ext, "chunk-signature=")
	if !ok || len(sig) != 64 {
		return errChunkSignature
	}
	if size > c.want-c.got {
		return errDecodedLength
	}
	c.h.Reset()
	c.claimed = sig
	if size > 0 {
		c.left, c.inChunk = size, true
		return nil
	}
	if want := c.chain.next(c.h.Sum(nil)); !hmac.Equal([]byte(want), []byte(sig)) {
		return errChunkSignature
	}
	if c.got != c.want {
		return errDecodedLength
	}
	if c.trailer {
		if err := c.checkTrailer(); err != nil {
			return err
		}
	} else if line, err := c.line(); err != nil && err != io.EOF || line != "" {
		return errChunkFraming
	}
	c.done = true
	return nil
}

// checkTrailer reads the trailing headers and their signature
// (x-amz-trailer-signature), which chains from the final chunk's. Their
// values (checksums) are not kept: the chunk signatures already bind the
// data.
func (c *signedChunks) checkTrailer() error {
	var canon bytes.Buffer
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		if line == "" {
			continue // minio-go ends each trailer with "\n" and then CRLF
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return errChunkFraming
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "x-amz-trailer-signature" {
			if want := c.chain.trailer(canon.Bytes()); !hmac.Equal([]byte(want), []byte(strings.TrimSpace(value))) {
				return errChunkSignature
			}
			break
		}
		canon.WriteString(name + ":" + strings.TrimSpace(value) + "\n")
		if canon.Len() > maxTrailerBytes {
			return errChunkFraming
		}
	}
	if line, err := c.line(); err != nil && err != io.EOF || line != "" {
		return errChunkFraming
	}
	return nil
}

// line reads one framing line without its CRLF (or LF); an overlong line
// is an error, not a buffer that grows.
func (c *signedChunks) line() (string, error) {
	b, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return "", errChunkFraming
	}
	if err != nil {
		if err == io.EOF && len(b) == 0 {
			return "", io.EOF
		}
		return "", io.ErrUnexpectedEOF
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}
