//go:build !linux

package embed

import (
	"errors"
	"os"
)

// Without Linux's attribute calls, metadata goes to a sidecar file.
func setXattr(*os.File, []byte) error     { return errors.ErrUnsupported }
func getXattr(*os.File) ([]byte, error)   { return nil, errors.ErrUnsupported }
func getXattrPath(string) ([]byte, error) { return nil, errors.ErrUnsupported }

func renameNoReplace(src, dst string) error { return linkNoReplace(src, dst) }
