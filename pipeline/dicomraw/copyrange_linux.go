package dicomraw

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyFileRange copies n bytes at off of src to the current position of
// dst inside the kernel (copy_file_range(2)): Pixel Data of a file going
// to a file never passes through this process. handled is false when the
// kernel or the file systems cannot (the caller then copies itself).
func copyFileRange(dst *os.File, src io.ReaderAt, off, n int64) (handled bool, err error) {
	sf, ok := src.(*os.File)
	if !ok {
		return false, nil
	}
	for n > 0 {
		k, err := unix.CopyFileRange(int(sf.Fd()), &off, int(dst.Fd()), nil, int(min(n, 1<<30)), 0)
		if err != nil {
			if k == 0 && (err == unix.EXDEV || err == unix.ENOSYS || err == unix.EINVAL || err == unix.EOPNOTSUPP) {
				return false, nil
			}
			return true, err
		}
		if k == 0 {
			return true, io.ErrUnexpectedEOF
		}
		n -= int64(k)
	}
	return true, nil
}
