package embed

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

func setXattr(f *os.File, b []byte) error {
	return unix.Fsetxattr(int(f.Fd()), xattrName, b, 0)
}

func getXattr(f *os.File) ([]byte, error) {
	return readXattr(func(buf []byte) (int, error) { return unix.Fgetxattr(int(f.Fd()), xattrName, buf) })
}

// getXattrPath reads the attribute of the file at path without opening
// it: one system call where open, read and close are three (a listing
// reads one per object).
func getXattrPath(path string) ([]byte, error) {
	return readXattr(func(buf []byte) (int, error) { return unix.Getxattr(path, xattrName, buf) })
}

func readXattr(get func([]byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 1024)
	for {
		n, err := get(buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 1<<16 {
			buf = make([]byte, 4*len(buf))
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// renameNoReplace moves src to dst unless dst exists (fs.ErrExist), in
// one step; a filesystem without RENAME_NOREPLACE gets link and unlink,
// as atomic but one metadata operation dearer.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return fs.ErrExist
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		return linkNoReplace(src, dst)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}
