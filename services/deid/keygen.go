package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
)

func keygenCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the new project key to (created with mode 0600, missing directories with 0700; never overwritten)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "deid keygen: --out FILE is required")
		return exitUsage
	}
	k, err := pseudonym.GenerateKey()
	if err != nil {
		fmt.Fprintln(stderr, "deid keygen:", err)
		return exitRejected
	}
	// Missing parent directories are created private: they hold a secret.
	if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
		fmt.Fprintln(stderr, "deid keygen:", err)
		return exitRejected
	}
	if err := pseudonym.WriteKeyFile(*out, k); err != nil {
		fmt.Fprintln(stderr, "deid keygen:", err)
		return exitRejected
	}
	fmt.Fprintf(stdout, "wrote a new 256-bit project key to %s (mode 0600); keep it secret and backed up: without it pseudonyms cannot be reproduced\n", *out)
	return exitOK
}
