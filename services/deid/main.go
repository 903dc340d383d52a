// Command deid de-identifies DICOM files: `deid run` over a directory tree,
// `deid keygen` for project keys, `deid profiles` to list, show and check
// profiles. Run `deid help` for usage.
package main

import (
	"fmt"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"io"
	"os"
)

// Exit codes shared by the subcommands.
const (
	exitOK       = 0
	exitRejected = 1 // some inputs were rejected (or a check failed)
	exitUsage    = 2
)

func main() {
	// A child started to decode one hostile-prone frame (HTJ2K) serves it
	// and exits here; see pipeline/codec/isolate.go.
	codec.ServeWorkerIfAsked()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `deid de-identifies DICOM files (PS3.15 2024c Basic Profile and options).

Usage:
  deid run --in DIR --out DIR --profile NAME|FILE --key-file FILE [--report FILE] [--workers N] [--dry-run]
  deid demo [--instances N] [--profile NAME]       (the whole pipeline on a synthetic study)
  deid serve [--data DIR] [--nats-url URL] [--s3-endpoint HOST:PORT] [flags]   (deid serve -h)
  deid submit --bucket B --prefix P [--nats-url URL] [--nats-creds FILE] [--wait]
  deid nats-creds generate --out DIR | deid nats-creds config   (NATS roles: credentials, server configuration)
  deid project create NAME [--lookup FILE] | deid project list
  deid dataset request --project P (--studies FILE | --prefix P ...) | deid dataset status ID | deid dataset list
  deid pseudonym (--project P | --key-file FILE) --patient-id ID [--uid UID]   (honest broker)
  deid verify --orig DIR --anon DIR [--json FILE] [--profile NAME|FILE]
  deid keygen --out FILE
  deid profiles list
  deid profiles show NAME|FILE
  deid profiles check FILE
  deid version

The project key comes from --key-file or the DEID_KEY environment variable
(hex); without a key nothing is written.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "demo":
		return demoCmd(args[1:], stdout, stderr)
	case "serve":
		return serveCmd(args[1:], stdout, stderr)
	case "submit":
		return submitCmd(args[1:], stdout, stderr)
	case "nats-creds":
		return natsCredsCmd(args[1:], stdout, stderr)
	case "project":
		return projectCmd(args[1:], stdout, stderr)
	case "dataset":
		return datasetCmd(args[1:], stdout, stderr)
	case "pseudonym":
		return pseudonymCmd(args[1:], stdout, stderr)
	case "verify":
		return verifyCmd(args[1:], stdout, stderr)
	case "keygen":
		return keygenCmd(args[1:], stdout, stderr)
	case "profiles":
		return profilesCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version())
		set := codec.Default()
		fmt.Fprintf(stdout, "pixel codecs: %s%s\n", set.Summary(), codecNote())
		for _, l := range set.Describe() {
			fmt.Fprintln(stdout, "  "+l)
		}
		text := openTextOCR(1, false)
		fmt.Fprintf(stdout, "burned-in text OCR: %s\n", text.Describe())
		text.Close()
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "deid: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "0.1.0-dev"

func version() string { return "dicomdeid " + Version }

// codecNote tells, in a build without the C codecs, what that means.
func codecNote() string {
	if codec.CGO {
		return ""
	}
	return " (no JPEG, JPEG-LS, JPEG 2000 or HTJ2K: an image in those that needs masking is held back; " +
		"build with CGO_ENABLED=1 -tags cgocodecs for them, see docs/codecs.md)"
}
