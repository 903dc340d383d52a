package natsauth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// Credentials are NKeys, one per role, rather than passwords: the server
// configuration holds public keys only (a leaked nats.conf or ConfigMap
// lets no one in), the client proves it holds the seed by signing the
// server's nonce (no secret crosses the connection, even without TLS),
// and the seed files are what nats.go, the nats CLI and MinIO read. The
// one password user is the notifier's, for object stores that take only
// a URL (versitygw); the server keeps its bcrypt hash.

// DirName is the directory under the data directory that `deid serve`
// keeps the embedded server's credentials in.
const DirName = "nats-credentials"

// SeedEnv is the environment variable a client may take its seed from
// instead of a file (containers: from a Secret).
const SeedEnv = "DEID_NATS_SEED"

// File is the seed file of role r in dir.
func File(dir string, r Role) string { return filepath.Join(dir, string(r)+".nk") }

// PasswordFile holds the notifier's password in dir.
func PasswordFile(dir string) string { return filepath.Join(dir, "notifier.password") }

// RoutePasswordFile holds the password of a cluster's routes in dir.
func RoutePasswordFile(dir string) string { return filepath.Join(dir, "route.password") }

// RouteEnv is the environment variable of the routes' password in the
// shipped server configurations.
const RouteEnv = "DEID_ROUTE_PASSWORD"

// Credentials is a deployment's set of credentials, as kept in a directory.
type Credentials struct {
	Dir string
	// Public is each role's public NKey.
	Public map[Role]string
	// NotifierPassword is the notifier's password (for a URL).
	NotifierPassword string
	// RoutePassword authenticates the servers of a cluster to each other.
	RoutePassword string
}

// Ensure loads the credentials kept in dir and generates those missing:
// a seed file per role (mode 0600, in a 0700 directory) and the
// notifier's password. It returns the roles generated now.
func Ensure(dir string) (*Credentials, []Role, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, nil, err
	}
	c := &Credentials{Dir: dir, Public: map[Role]string{}}
	// A link among the credentials would have a seed or a password read
	// from (and the routes' password printed into nats-server.env out
	// of) whatever file it names.
	for _, p := range append(Files(dir), PasswordFile(dir), RoutePasswordFile(dir)) {
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("NATS credentials %s: not a regular file (a link?)", p)
		}
	}
	var created []Role
	for _, r := range Roles() {
		p := File(dir, r)
		kp, role, err := readSeed(p)
		if errors.Is(err, os.ErrNotExist) {
			if kp, err = nkeys.CreateUser(); err != nil {
				return nil, nil, err
			}
			if err = writeSeed(p, r, kp); err != nil {
				return nil, nil, fmt.Errorf("write %s: %w", p, err)
			}
			created, role = append(created, r), r
		}
		if err != nil {
			return nil, nil, fmt.Errorf("NATS credentials %s: %w", p, err)
		}
		if role != "" && role != r {
			return nil, nil, fmt.Errorf("NATS credentials %s are of role %s, not %s", p, role, r)
		}
		if c.Public[r], err = kp.PublicKey(); err != nil {
			return nil, nil, err
		}
		kp.Wipe()
	}
	var err error
	if c.NotifierPassword, err = ensurePassword(PasswordFile(dir)); err != nil {
		return nil, nil, fmt.Errorf("notifier password: %w", err)
	}
	if c.RoutePassword, err = ensurePassword(RoutePasswordFile(dir)); err != nil {
		return nil, nil, fmt.Errorf("route password: %w", err)
	}
	return c, created, nil
}

// Files are the roles' seed files in dir.
func Files(dir string) []string {
	var out []string
	for _, r := range Roles() {
		out = append(out, File(dir, r))
	}
	return out
}

// ensurePassword reads a password file, or writes a new random password.
func ensurePassword(path string) (string, error) {
	pw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		pw = []byte(hex.EncodeToString(b))
		err = writePrivate(path, append(pw, '\n'))
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(pw)), nil
}

// Keys are the credentials as a server configuration names them, with
// the notifier's password user when withPassword.
func (c *Credentials) Keys(withPassword bool) (Keys, error) {
	k := Keys{NKeys: c.Public}
	if withPassword {
		// The cost is paid once per connection of the notifier.
		h, err := bcrypt.GenerateFromPassword([]byte(c.NotifierPassword), 11)
		if err != nil {
			return Keys{}, err
		}
		k.NotifierPassword = string(h)
	}
	return k, nil
}

// ServerEnv is the environment of a nats-server running the shipped
// configuration: DEID_NKEY_<ROLE>=<public key>, one a line, and the
// routes' password (an env file for docker compose --env-file or kubectl
// create secret generic --from-env-file).
func (c *Credentials) ServerEnv() string {
	var b strings.Builder
	for _, r := range Roles() {
		fmt.Fprintf(&b, "%s=%s\n", r.EnvVar(), c.Public[r])
	}
	fmt.Fprintf(&b, "%s=%s\n", RouteEnv, c.RoutePassword)
	return b.String()
}

// Env is ServerEnv as a process environment.
func (c *Credentials) Env() []string {
	return strings.Split(strings.TrimSpace(c.ServerEnv()), "\n")
}

func writeSeed(path string, r Role, kp nkeys.KeyPair) error {
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# dicomdeid NATS credentials\n# role: %s (NATS account %s)\n# public key: %s\n", r, r.Account(), pub)
	b.WriteString("# Keep this file private. deid reads it with --nats-creds FILE, the nats CLI with --nkey FILE,\n")
	b.WriteString("# MinIO with MINIO_NOTIFY_NATS_NKEY_SEED_<ID>=FILE.\n")
	b.Write(seed)
	b.WriteByte('\n')
	return writePrivate(path, b.Bytes())
}

// writePrivate writes a new file with mode 0600; it never replaces one.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil { // whatever the umask
		f.Close()
		return err
	}
	return f.Close()
}

// readSeed reads a seed file and the role its header names ("" when it
// names none, as a seed made by `nk -gen user`).
func readSeed(path string) (nkeys.KeyPair, Role, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	defer wipe(data)
	return parseSeed(data)
}

func parseSeed(data []byte) (nkeys.KeyPair, Role, error) {
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return nil, "", errors.New("no NKey user seed in it")
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, "", errors.New("the seed is not a user NKey")
	}
	var role Role
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "# role: "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if r, err := ParseRole(f[0]); err == nil {
					role = r
				}
			}
		}
	}
	return kp, role, nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 'x'
	}
}

// Client is how a client connects: its role, its connect options and the
// JetStream API prefix of its account.
type Client struct {
	Role Role
	// Source says where the credentials came from, for messages ("" none).
	Source string
	Opts   []nats.Option
}

// APIPrefix is the JetStream API prefix of the client's account.
func (c *Client) APIPrefix() string { return c.Role.APIPrefix() }

// ClientFor finds the credentials of a client whose commands act as role:
// file (--nats-creds) when given, else the seed in $DEID_NATS_SEED, else
// <dataDir>/nats-credentials/<role>.nk when it exists, else none (the
// server will refuse the connection). A seed file whose header names
// another role connects as that role. A JWT .creds file (servers in
// operator mode) is used as it is.
func ClientFor(role Role, file, dataDir string) (*Client, error) {
	c := &Client{Role: role}
	switch {
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("NATS credentials: %w", err)
		}
		defer wipe(data)
		if bytes.Contains(data, []byte("BEGIN NATS USER JWT")) {
			c.Source, c.Opts = file, []nats.Option{nats.UserCredentials(file)}
			return c, nil
		}
		if err := c.useSeed(data); err != nil {
			return nil, fmt.Errorf("NATS credentials %s: %w", file, err)
		}
		c.Source = file
	case os.Getenv(SeedEnv) != "":
		if err := c.useSeed([]byte(os.Getenv(SeedEnv))); err != nil {
			return nil, fmt.Errorf("%s: %w", SeedEnv, err)
		}
		c.Source = "$" + SeedEnv
	case dataDir != "":
		p := File(filepath.Join(dataDir, DirName), role)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return c, nil
		}
		if err != nil {
			return nil, fmt.Errorf("NATS credentials: %w", err)
		}
		defer wipe(data)
		if err := c.useSeed(data); err != nil {
			return nil, fmt.Errorf("NATS credentials %s: %w", p, err)
		}
		c.Source = p
	}
	return c, nil
}

// useSeed signs the server's nonce with the seed, kept in memory.
func (c *Client) useSeed(data []byte) error {
	kp, role, err := parseSeed(data)
	if err != nil {
		return err
	}
	if role != "" {
		c.Role = role
	}
	pub, _ := kp.PublicKey()
	c.Opts = append(c.Opts, nats.Nkey(pub, kp.Sign))
	return nil
}

// Hint is what to tell a user whose connection NATS refused.
func (c *Client) Hint() string {
	if c.Source == "" {
		return fmt.Sprintf("NATS requires credentials: pass --nats-creds FILE (the %s role's seed; deid serve writes them to <data>/%s/, deid nats-creds generate for your servers)", c.Role, DirName)
	}
	return fmt.Sprintf("NATS refused the credentials from %s (role %s)", c.Source, c.Role)
}
