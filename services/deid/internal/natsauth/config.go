package natsauth

import (
	"fmt"
	"strings"
)

// Keys are the credentials a server configuration names.
type Keys struct {
	// NKeys is each role's public NKey. A role without one is named by
	// its environment variable (Role.EnvVar), which nats-server reads at
	// start: the shipped configuration holds no key at all.
	NKeys map[Role]string
	// NotifierPassword, when set, is the bcrypt hash of a password user
	// of the notifier's account, for object stores that can only be given
	// a URL (versitygw: nats://notifier:PASSWORD@host:4222).
	NotifierPassword string
}

// NotifierUser is the user name of the notifier's password user.
const NotifierUser = "notifier"

// AuthConfig renders the accounts block of a nats-server configuration:
// every role's users with their permissions, the service account's
// exports and the other accounts' imports. The server needs JetStream
// enabled besides (jetstream {...}); every client must authenticate, as a
// configuration with accounts and no no_auth_user requires.
func AuthConfig(k Keys) string {
	var b strings.Builder
	b.WriteString(`# The NATS accounts, users and permissions of dicomdeid, rendered by
# "deid nats-creds config" from services/deid/internal/natsauth (do not
# edit: a test compares the shipped copies with it). Include it from the
# server's configuration; the public NKeys come from the environment
# (DEID_NKEY_<ROLE>, written by "deid nats-creds generate").
#
# DEID holds the streams, the work queue and the key-value buckets, the
# workers and the administrators. Every other role has an account of its
# own that imports only what it may use: a request from there has its
# reply subject mapped back into its own account, so it cannot make the
# server publish an answer onto the service's subjects.
accounts {
`)
	for _, acct := range accountOrder() {
		fmt.Fprintf(&b, "  %s {\n", acct)
		if acct == ServiceAccount {
			b.WriteString("    jetstream: enabled\n")
		}
		b.WriteString("    users: [\n")
		for _, r := range Roles() {
			if r.Account() != acct {
				continue
			}
			key := "$" + r.EnvVar()
			if k.NKeys[r] != "" {
				key = k.NKeys[r]
			}
			fmt.Fprintf(&b, "      # %s\n", r)
			writeUser(&b, "nkey: "+key, permissions(r))
			if r == Notifier && k.NotifierPassword != "" {
				writeUser(&b, fmt.Sprintf("user: %s, password: %q", NotifierUser, k.NotifierPassword), permissions(r))
			}
		}
		b.WriteString("    ]\n")
		if acct == ServiceAccount {
			b.WriteString("    exports: [\n")
			for _, e := range exportsOfService() {
				kind := "service"
				if e.stream {
					kind = "stream"
				}
				fmt.Fprintf(&b, "      {%s: %q", kind, e.subject)
				if e.multi {
					b.WriteString(", response_type: stream")
				}
				fmt.Fprintf(&b, ", accounts: [%s]}\n", strings.Join(e.accounts, ", "))
			}
			b.WriteString("    ]\n")
		} else {
			b.WriteString("    imports: [\n")
			for _, r := range Roles() {
				if r.Account() != acct {
					continue
				}
				for _, g := range grants(r) {
					kind := "service"
					if g.stream {
						kind = "stream"
					}
					fmt.Fprintf(&b, "      {%s: {account: %s, subject: %q}", kind, ServiceAccount, g.subject)
					if g.local != g.subject {
						fmt.Fprintf(&b, ", to: %q", g.local)
					}
					b.WriteString("}\n")
				}
			}
			b.WriteString("    ]\n")
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// accountOrder is the service account, then the others in role order.
func accountOrder() []string {
	var out []string
	for _, r := range Roles() {
		a := r.Account()
		if len(out) == 0 || out[len(out)-1] != a {
			out = append(out, a)
		}
	}
	return out
}

func writeUser(b *strings.Builder, who string, a *access) {
	if a == nil {
		fmt.Fprintf(b, "      {%s}\n", who)
		return
	}
	fmt.Fprintf(b, "      {%s, permissions: {\n", who)
	writeList(b, "publish", a.pub)
	writeList(b, "subscribe", a.sub)
	if a.responses {
		b.WriteString("        allow_responses: true\n")
	}
	b.WriteString("      }}\n")
}

func writeList(b *strings.Builder, name string, subjects []string) {
	fmt.Fprintf(b, "        %s: {allow: [", name)
	for i, s := range subjects {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(b, "\n          %q", s)
	}
	b.WriteString("\n        ]}\n")
}
