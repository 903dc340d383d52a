package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/safefile"
)

const natsCredsUsage = `deid nats-creds generate --out DIR
deid nats-creds config

generate writes the NATS credentials of a deployment into DIR (mode 0700):
one NKey seed file per role (<role>.nk, mode 0600: worker, admin,
submitter, events, auditor, notifier), and nats-server.env, the public
keys the servers' configuration reads (DEID_NKEY_<ROLE>=..., for
docker compose --env-file or kubectl create secret generic --from-env-file).
Existing files are kept: run it again to add a missing role.

config prints the accounts, users and permissions of every role: the file
shipped as deploy/compose/nats-auth.conf and in deploy/k8s/nats/nats.yaml,
which nats-server includes.
`

func natsCredsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, natsCredsUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("nats-creds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, natsCredsUsage) }
	out := fs.String("out", "", "directory of the credentials (generate)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, natsCredsUsage)
		return exitUsage
	}
	switch args[0] {
	case "config":
		fmt.Fprint(stdout, natsauth.AuthConfig(natsauth.Keys{}))
		return exitOK
	case "generate":
		if *out == "" {
			fmt.Fprint(stderr, natsCredsUsage)
			return exitUsage
		}
		cr, created, err := natsauth.Ensure(*out)
		if err != nil {
			fmt.Fprintln(stderr, "deid nats-creds:", err)
			return exitRejected
		}
		env := filepath.Join(*out, "nats-server.env")
		// Rewritten on every run (the keys may be new), never through a
		// link nor over a seed or password file.
		protect := []safefile.Protected{{Path: natsauth.PasswordFile(*out), What: "notifier's password"},
			{Path: natsauth.RoutePasswordFile(*out), What: "routes' password"}}
		for _, f := range natsauth.Files(*out) {
			protect = append(protect, safefile.Protected{Path: f, What: "seed file " + filepath.Base(f)})
		}
		if err := safefile.WriteBytes(env, safefile.Options{Replace: true, Protect: protect}, []byte(cr.ServerEnv())); err != nil {
			fmt.Fprintln(stderr, "deid nats-creds:", err)
			return exitRejected
		}
		isNew := map[natsauth.Role]bool{}
		for _, r := range created {
			isNew[r] = true
		}
		for _, r := range natsauth.Roles() {
			state := "kept"
			if isNew[r] {
				state = "new"
			}
			fmt.Fprintf(stdout, "%-9s %-4s %s (account %s)\n", r, state, natsauth.File(*out, r), r.Account())
		}
		fmt.Fprintf(stdout, "servers   %s (public keys only: DEID_NKEY_<ROLE>)\n", env)
		return exitOK
	}
	fmt.Fprint(stderr, natsCredsUsage)
	return exitUsage
}
