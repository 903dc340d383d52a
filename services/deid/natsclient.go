package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

// natsClient is a command's connection to the service's NATS, as one of
// the roles: credentials from --nats-creds, $DEID_NATS_SEED, or the role's
// file under --data (where deid serve generates them).
type natsClient struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// connectNATS connects cmd (for messages) as role, or says why not on
// stderr.
func connectNATS(cmd string, role natsauth.Role, url, creds, data string, timeout time.Duration, stderr io.Writer) (*natsClient, bool) {
	cl, err := natsauth.ClientFor(role, creds, data)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return nil, false
	}
	// Refusals are reported with the failure they cause (explain), not
	// printed as they arrive.
	opts := append(cl.Opts, nats.Name(cmd), nats.Timeout(timeout), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		hint := ""
		if isAuthError(err) {
			hint = " (" + cl.Hint() + ")"
		}
		fmt.Fprintf(stderr, "%s: cannot reach NATS at %s: %v%s\n", cmd, redactURL(url), err, hint)
		return nil, false
	}
	// The other roles' accounts reach the service's JetStream API under
	// an imported prefix.
	js, err := jetstream.NewWithAPIPrefix(nc, cl.APIPrefix())
	if err != nil {
		nc.Close()
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return nil, false
	}
	return &natsClient{nc: nc, js: js}, true
}

// natsFlagsHelp is the usage text of the connection flags.
const natsFlagsHelp = `--nats-url URL (default nats://127.0.0.1:4222), --nats-creds FILE (default
$DEID_NATS_SEED, then <--data>/nats-credentials/<role>.nk), --data DIR (default ./data)`

// explain says why a request failed: what the server refused, if it did
// (a request whose publish was refused is never answered, and only times
// out), else err and a hint.
func (c *natsClient) explain(err error) string {
	if le := c.nc.LastError(); le != nil && errors.Is(le, nats.ErrPermissionViolation) {
		return fmt.Sprintf("NATS refused it (%v): these credentials are not of the role that may do this", le)
	}
	return err.Error() + " (is deid serve running?)"
}
