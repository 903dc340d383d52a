package natsauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// The configurations shipped for nats-server (compose and Kubernetes)
// are the roles as this package defines them, byte for byte: the
// embedded server and the deployments enforce the same permissions.
func TestShippedConfigs(t *testing.T) {
	want := AuthConfig(Keys{})
	compose, err := os.ReadFile("../../../../deploy/compose/nats-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	if string(compose) != want {
		t.Error("deploy/compose/nats-auth.conf differs from natsauth.AuthConfig: run go generate ./services/deid/internal/natsauth")
	}
	y, err := os.ReadFile("../../../../deploy/k8s/nats/nats.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k8s, err := ConfigMapKey(string(y), "auth.conf")
	if err != nil || k8s != want {
		t.Errorf("deploy/k8s/nats/nats.yaml's auth.conf differs from natsauth.AuthConfig (%v): run go generate ./services/deid/internal/natsauth", err)
	}
	main, err := ConfigMapKey(string(y), "nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	// Both servers' configurations load with the roles' keys in the
	// environment, require authentication on the client port and on the
	// routes, and let no one in without credentials.
	dir := t.TempDir()
	cr, _, err := Ensure(filepath.Join(dir, "creds"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range cr.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("POD_NAME", "nats-0")
	composeMain, err := os.ReadFile("../../../../deploy/compose/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	for name, conf := range map[string]string{"compose": string(composeMain), "k8s": main} {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, "nats.conf"), []byte(conf), 0o600)
		os.WriteFile(filepath.Join(d, "nats-auth.conf"), compose, 0o600)
		os.WriteFile(filepath.Join(d, "auth.conf"), compose, 0o600)
		o, err := server.ProcessConfigFile(filepath.Join(d, "nats.conf"))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if o.NoAuthUser != "" || len(o.Nkeys) != len(Roles()) || o.Cluster.Username == "" || o.Cluster.Password != cr.RoutePassword {
			t.Errorf("%s: no_auth_user %q, %d NKey users, route user %q: want no anonymous user, every role, an authenticated cluster",
				name, o.NoAuthUser, len(o.Nkeys), o.Cluster.Username)
		}
		for _, u := range o.Nkeys {
			found := false
			for _, r := range Roles() {
				if u.Nkey == cr.Public[r] {
					found = true
					if u.Account == nil || u.Account.Name != r.Account() {
						t.Errorf("%s: role %s not in account %s", name, r, r.Account())
					}
				}
			}
			if !found {
				t.Errorf("%s: an NKey user of no role: %s", name, u.Nkey)
			}
		}
	}
}

// Only the administrator may call the JetStream API that deletes or
// purges; the worker's permissions hold no delete or purge of a stream or
// of the work queue's consumer, and no role outside the service's account
// imports any of it.
func TestNoDeleteOrPurgeBeyondAdmin(t *testing.T) {
	for _, r := range Roles() {
		a := permissions(r)
		if r == Admin {
			if a != nil {
				t.Error("admin is restricted")
			}
			continue
		}
		for _, s := range a.pub {
			bad := strings.Contains(s, "STREAM.PURGE") || strings.Contains(s, "STREAM.DELETE") ||
				strings.Contains(s, "CONSUMER.DELETE.DEID_") || s == ">" || s == "$JS.API.>" || strings.HasSuffix(s, "$JS.API.STREAM.>")
			if bad {
				t.Errorf("%s may publish %s", r, s)
			}
		}
	}
	for _, e := range exportsOfService() {
		if strings.Contains(e.subject, "DELETE") || strings.Contains(e.subject, "PURGE") || strings.Contains(e.subject, "UPDATE") {
			t.Errorf("the service's account exports %s", e.subject)
		}
	}
}

func TestCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	cr, created, err := Ensure(dir)
	if err != nil || len(created) != len(Roles()) {
		t.Fatalf("first Ensure: %v, created %v", err, created)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", st.Mode().Perm())
	}
	for _, r := range Roles() {
		st, err := os.Stat(File(dir, r))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", r, err, st)
		}
		c, err := ClientFor(Submitter, File(dir, r), "")
		if err != nil || c.Role != r || len(c.Opts) != 1 {
			t.Errorf("%s's file read as role %s (%v)", r, c.Role, err)
		}
	}
	again, created, err := Ensure(dir)
	if err != nil || len(created) != 0 || again.Public[Worker] != cr.Public[Worker] || again.RoutePassword != cr.RoutePassword {
		t.Errorf("second Ensure generated %v (%v): credentials must be kept", created, err)
	}
	// A role's file put in place of another's is refused, not used.
	b, _ := os.ReadFile(File(dir, Admin))
	os.Remove(File(dir, Worker))
	os.WriteFile(File(dir, Worker), b, 0o600)
	if _, _, err := Ensure(dir); err == nil || !strings.Contains(err.Error(), "of role admin") {
		t.Errorf("admin's seed as worker.nk: %v", err)
	}

	// Where a client finds its credentials: --nats-creds, then
	// $DEID_NATS_SEED, then the data directory; none is not an error (the
	// server refuses the connection, and the hint says what to pass).
	data := t.TempDir()
	c, err := ClientFor(Submitter, "", data)
	if err != nil || c.Source != "" || len(c.Opts) != 0 || !strings.Contains(c.Hint(), "--nats-creds") {
		t.Errorf("no credentials: %+v %v", c, err)
	}
	if _, _, err := Ensure(filepath.Join(data, DirName)); err != nil {
		t.Fatal(err)
	}
	if c, err := ClientFor(Submitter, "", data); err != nil || c.Source != File(filepath.Join(data, DirName), Submitter) {
		t.Errorf("from the data directory: %+v %v", c, err)
	}
	seed, _ := os.ReadFile(File(dir, Events))
	t.Setenv(SeedEnv, string(seed))
	if c, err := ClientFor(Submitter, "", data); err != nil || c.Source != "$"+SeedEnv || c.Role != Events {
		t.Errorf("from %s: %+v %v", SeedEnv, c, err)
	}
	if c, err := ClientFor(Submitter, File(dir, Auditor), data); err != nil || c.Role != Auditor {
		t.Errorf("--nats-creds wins: %+v %v", c, err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not a seed\n"), 0o600)
	if _, err := ClientFor(Submitter, bad, ""); err == nil || strings.Contains(err.Error(), "not a seed") {
		t.Errorf("a file that is no seed: %v (the error must not quote it)", err)
	}
}
