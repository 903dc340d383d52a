package ingest

import (
	"bytes"
	"io"
	"os"
)

// spool holds one job's input or output: in memory while it is small
// (most instances are well under a megabyte), in a temporary file once it
// grows past the limit, so memory stays bounded whatever the object size.
type spool struct {
	dir   string
	limit int
	buf   []byte
	f     *os.File
	n     int64
	free  func([]byte) // gives the memory back for reuse
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && len(s.buf)+len(p) <= s.limit {
		s.buf = append(s.buf, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "spool-*.dcm")
		if err != nil {
			return 0, err
		}
		if _, err := f.Write(s.buf); err != nil {
			f.Close()
			os.Remove(f.Name())
			return 0, err
		}
		s.f = f
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	return n, err
}

// Expect tells an empty spool about how many bytes it will hold, when
// that is known (n above 0): more than its memory limit and it is a file
// from the first byte (no buffer filled only to be spilled, so memory
// stays flat for large objects); fewer and its memory is sized for them
// at once (no copies as it grows), with slack for the attributes a profile
// adds to an output.
func (s *spool) Expect(n int64) {
	if n <= 0 || s.n > 0 || s.f != nil {
		return
	}
	if n > int64(s.limit) {
		s.limit = 0
		return
	}
	if want := min(n+64<<10, int64(s.limit)); int64(cap(s.buf)) < want {
		s.buf = make([]byte, 0, want)
	}
}

// ReadAt reads back what was written (io.ReaderAt).
func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	if off >= int64(len(s.buf)) {
		return 0, io.EOF
	}
	n := copy(p, s.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Reader reads what was written from the start. In memory it is a
// bytes.Reader: copied into a file in one write, not through a 32 KiB
// buffer in sixteen.
func (s *spool) Reader() io.Reader {
	if s.f != nil {
		return io.NewSectionReader(s.f, 0, s.n)
	}
	return bytes.NewReader(s.buf)
}

// Size is the number of bytes written.
func (s *spool) Size() int64 { return s.n }

// Reset empties the spool for a new attempt.
func (s *spool) Reset() error {
	s.buf, s.n = s.buf[:0], 0
	if s.f != nil {
		if _, err := s.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return s.f.Truncate(0)
	}
	return nil
}

// Close removes the temporary file, if any, and frees the memory.
func (s *spool) Close() error {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
		s.f = nil
	}
	if s.free != nil && s.buf != nil {
		s.free(s.buf[:0])
	}
	s.buf = nil
	return nil
}
