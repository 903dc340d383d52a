// Package safefile writes the files the deid commands produce (reports,
// crosswalks, pseudonym tables, verification results, credentials'
// environment files) so that a mistyped or hostile path cannot destroy
// what the command reads or what keeps the deployment secret.
//
// A target is refused when it is a symbolic link (dangling or not: writing
// through one lands wherever its owner pointed it), when it is not a
// regular file, when it is the same file as one the command reads (the
// project key, an input, a credentials file; os.SameFile, so a hard link
// is caught too), or when it already holds a secret of the deployment
// (a project key, an NKey seed, S3 credentials) whatever the command was
// told. An existing file is replaced only when the caller allows it
// (--force). The file is written with mode 0600 in a temporary file in
// the target's directory and then linked (no replace: it fails if the
// name exists) or renamed (replace) into place: a reader never sees a
// partial file, and a file that appears meanwhile is not overwritten.
package safefile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// Options say what a target must not be.
type Options struct {
	// Replace lets an existing regular file be replaced (never one of
	// Protect, never one holding a secret).
	Replace bool
	// Protect are the files the command reads, each with what to call
	// it in an error ("the project key file (--key-file)").
	Protect []Protected
}

// Protected is a file a target must not be.
type Protected struct {
	Path, What string
}

// ErrExists: the target exists and Options.Replace is not set.
var ErrExists = errors.New("exists (give --force to replace it)")

// Check tells whether path may be written under o, without writing.
func Check(path string, o Options) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return errors.New("is a symbolic link: give the real path")
	case !fi.Mode().IsRegular():
		return errors.New("is not a regular file")
	}
	real, err := realPath(path)
	if err != nil {
		return fmt.Errorf("its directory: %w", err)
	}
	for _, p := range o.Protect {
		if p.Path == "" {
			continue
		}
		if r, err := realPath(p.Path); err == nil && r == real || SameFile(p.Path, path) {
			return fmt.Errorf("is the %s", p.What)
		}
	}
	if fi == nil {
		return nil
	}
	if what := secret(path); what != "" {
		return fmt.Errorf("holds %s: never replaced", what)
	}
	if !o.Replace {
		return ErrExists
	}
	return nil
}

// Write writes path with write's output under o (see the package doc).
func Write(path string, o Options, write func(io.Writer) error) error {
	if err := Check(path, o); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".deid-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a link or rename: the temporary name only
	err = tmp.Chmod(0o600)
	if err == nil {
		bw := bufio.NewWriter(tmp)
		if err = write(bw); err == nil {
			err = bw.Flush()
		}
		if err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Checked again where it is written: the target may have changed
	// while the file was made.
	if err := Check(path, o); err != nil {
		return err
	}
	if !o.Replace {
		// A link never replaces a name: a file (or a link) that
		// appeared since the check makes it fail.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return ErrExists
			}
			return err
		}
		return nil
	}
	return os.Rename(tmp.Name(), path)
}

// WriteBytes writes b to path under o.
func WriteBytes(path string, o Options, b []byte) error {
	return Write(path, o, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// realPath is p absolute with every link resolved; a file that does not
// exist (yet) is named in its directory's real path.
func realPath(p string) (string, error) {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return filepath.Abs(r)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// SameFile reports whether both paths name one existing file (a hard
// link is another name for it).
func SameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

var (
	projectKey = regexp.MustCompile(`^[0-9a-fA-F]{32,128}\s*$`)
	nkeySeed   = regexp.MustCompile(`(?m)^S[UAON][A-Z2-7]{56}\s*$`)
)

// secret names the secret an existing file holds: a project key (hex, as
// deid keygen writes it), an NKey seed (deid nats-creds, a .creds file)
// or S3 credentials. Only the start of the file is read.
func secret(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	switch {
	case projectKey.Match(b):
		return "a project key"
	case nkeySeed.Match(b), bytes.Contains(b, []byte("NKEY SEED-----")):
		return "NATS credentials"
	case bytes.Contains(b, []byte("aws_secret_access_key")):
		return "S3 credentials"
	}
	return ""
}
