package embed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Role is what a credential of the embedded endpoint may do.
type Role int

// The roles, least to most privileged. RoleNone is no credential.
const (
	RoleNone Role = iota
	// RoleUploader may create objects in the input bucket (PUT, multipart
	// upload) and nothing else: it cannot read, list or overwrite
	// anything, inputs included, since object keys name patients and
	// every uploader of a site shares the one bucket.
	RoleUploader
	// RoleReader may read (GET, HEAD, LIST) the output bucket only.
	RoleReader
	// RoleOperator may do everything, quarantine and bucket
	// administration included.
	RoleOperator
)

// Roles lists the roles that have credentials, in the order they are
// shown.
var Roles = []Role{RoleUploader, RoleReader, RoleOperator}

func (r Role) String() string {
	switch r {
	case RoleUploader:
		return "uploader"
	case RoleReader:
		return "reader"
	case RoleOperator:
		return "operator"
	}
	return "none"
}

// Credentials are one S3 access key and its secret.
type Credentials struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// RoleCredentials are the embedded endpoint's credentials, one pair per
// role; a role with empty credentials has no access.
type RoleCredentials map[Role]Credentials

// CredentialsFile is where DIR keeps a role's credentials: an AWS shared
// credentials file (profile "default"), so that
// AWS_SHARED_CREDENTIALS_FILE=<file> makes aws-cli and the AWS SDKs use it.
func CredentialsFile(dir string, r Role) string {
	return filepath.Join(dir, "s3-"+r.String()+".credentials")
}

// legacyCredentials is the single credential of earlier versions, which
// could do everything.
const legacyCredentials = "s3-credentials.json"

// CredentialsSetup says what EnsureRoleCredentials did.
type CredentialsSetup struct {
	// Created lists the roles whose credentials were generated now.
	Created []Role
	// Migrated is set when an earlier version's single credential
	// (s3-credentials.json) became the uploader's and its file was
	// removed.
	Migrated bool
}

// EnsureRoleCredentials reads each role's credentials file in dir, or
// creates it (mode 0600) with new random keys. A data directory of an
// earlier version, with one credential for everything, keeps that
// credential as the uploader's: the key handed to every client that
// uploads keeps working for that, and loses everything else (reading
// quarantine, overwriting and deleting); reader and operator get new
// keys.
func EnsureRoleCredentials(dir string) (RoleCredentials, CredentialsSetup, error) {
	var setup CredentialsSetup
	out := RoleCredentials{}
	legacy := filepath.Join(dir, legacyCredentials)
	for _, r := range Roles {
		p := CredentialsFile(dir, r)
		c, err := ReadCredentialsFile(p)
		if err == nil {
			out[r] = c
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, setup, err
		}
		c = Credentials{AccessKey: "deid-" + r.String() + "-" + randomHex(6), SecretKey: randomHex(20)}
		if r == RoleUploader {
			if b, err := os.ReadFile(legacy); err == nil {
				var old Credentials
				if json.Unmarshal(b, &old) != nil || old.AccessKey == "" || old.SecretKey == "" {
					return nil, setup, fmt.Errorf("%s: not a credentials file", legacy)
				}
				c, setup.Migrated = old, true
			}
		}
		if err := writeCredentialsFile(p, r, c); err != nil {
			return nil, setup, err
		}
		out[r] = c
		if !setup.Migrated || r != RoleUploader {
			setup.Created = append(setup.Created, r)
		}
	}
	if setup.Migrated {
		// Its key is in the uploader's file now; left in place it would
		// read as the all-powerful credential it no longer is.
		if err := os.Remove(legacy); err != nil {
			return nil, setup, err
		}
	}
	if err := out.check(); err != nil {
		return nil, setup, err
	}
	return out, setup, nil
}

// check refuses two roles sharing an access key: the key would carry the
// wider role's rights.
func (rc RoleCredentials) check() error {
	seen := map[string]Role{}
	for _, r := range Roles {
		c, ok := rc[r]
		if !ok || c.AccessKey == "" {
			continue
		}
		if c.SecretKey == "" {
			return fmt.Errorf("S3 %s: access key without a secret key", r)
		}
		if o, dup := seen[c.AccessKey]; dup {
			return fmt.Errorf("S3 %s and %s share an access key", o, r)
		}
		seen[c.AccessKey] = r
	}
	return nil
}

// ReadCredentialsFile reads the profile "default" of an AWS shared
// credentials file.
func ReadCredentialsFile(path string) (Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, err
	}
	var c Credentials
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
		case section == "default":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "aws_access_key_id":
				c.AccessKey = strings.TrimSpace(v)
			case "aws_secret_access_key":
				c.SecretKey = strings.TrimSpace(v)
			}
		}
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return c, fmt.Errorf("%s: no aws_access_key_id and aws_secret_access_key in its [default] profile", path)
	}
	return c, nil
}

func writeCredentialsFile(path string, r Role, c Credentials) error {
	body := fmt.Sprintf(`# dicomdeid embedded S3 endpoint, role %s: %s.
# aws-cli: AWS_SHARED_CREDENTIALS_FILE=%s aws --endpoint-url http://HOST:PORT s3 ...
[default]
aws_access_key_id = %s
aws_secret_access_key = %s
`, r, r.Describe("the input bucket", "the output bucket"), path, c.AccessKey, c.SecretKey)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// Describe says in a few words what the role may do, naming the buckets.
func (r Role) Describe(in, out string) string {
	switch r {
	case RoleUploader:
		return "PUT and multipart upload into " + in + " (no read, list, overwrite or delete)"
	case RoleReader:
		return "GET, HEAD and LIST of " + out
	case RoleOperator:
		return "everything: quarantine, every bucket, bucket create and delete"
	}
	return "nothing"
}
