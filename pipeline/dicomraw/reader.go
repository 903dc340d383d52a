package dicomraw

import "io"

// reader is a forward reader over an io.ReaderAt with its own buffer, so
// that offsets are exact and skipping a large value costs nothing.
type reader struct {
	src      io.ReaderAt
	pos, end int64
	buf      []byte
	bufStart int64
	bufLen   int
}

// readerBuf is enough for most headers in one read, small enough that
// allocating it for every parse (two per file) costs little.
const readerBuf = 16 << 10

func newReader(src io.ReaderAt, pos, end int64) *reader {
	n := int64(readerBuf)
	if left := end - pos; left < n {
		n = max(left, 16) // a small file needs no 64 KiB buffer
	}
	return &reader{src: src, pos: pos, end: end, buf: make([]byte, n)}
}

// ensure makes n bytes at pos available in buf (n may exceed the buffer
// size; the buffer then grows, bounded by the callers' limits).
func (r *reader) ensure(n int) error {
	if r.pos+int64(n) > r.end {
		return io.ErrUnexpectedEOF
	}
	if r.pos >= r.bufStart && r.pos+int64(n) <= r.bufStart+int64(r.bufLen) {
		return nil
	}
	if n > len(r.buf) {
		r.buf = make([]byte, n)
	}
	want := len(r.buf)
	if left := r.end - r.pos; int64(want) > left {
		want = int(left)
	}
	got, err := r.src.ReadAt(r.buf[:want], r.pos)
	if got < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	r.bufStart, r.bufLen = r.pos, got
	return nil
}

// read returns the next n bytes; the slice is valid until the next call.
func (r *reader) read(n int) ([]byte, error) {
	if err := r.ensure(n); err != nil {
		return nil, err
	}
	off := int(r.pos - r.bufStart)
	r.pos += int64(n)
	return r.buf[off : off+n], nil
}

func (r *reader) peek(n int) ([]byte, error) {
	if err := r.ensure(n); err != nil {
		return nil, err
	}
	off := int(r.pos - r.bufStart)
	return r.buf[off : off+n], nil
}

func (r *reader) skip(n int64) error {
	if r.pos+n > r.end {
		return io.ErrUnexpectedEOF
	}
	r.pos += n
	return nil
}
