// Package pseudonym derives deterministic keyed pseudonyms from a project
// key: DICOM UIDs, identifiers in a configurable format, and per-patient
// date shifts. The same key and input give the same output on any machine,
// so workers need no shared state; without the key the outputs cannot be
// linked back to the inputs or to another project's outputs.
package pseudonym

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
)

// MinKeyBytes is the shortest key accepted.
const MinKeyBytes = 32

// Key is a project key. Its bytes never appear in output, logs or errors.
type Key struct{ b []byte }

// GenerateKey returns a new random key of 32 bytes.
func GenerateKey() (Key, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	return Key{b: b}, nil
}

// ParseKey reads a key written by Key.Encode (hex), or base64 text, or at
// least MinKeyBytes raw bytes.
func ParseKey(data []byte) (Key, error) {
	s := strings.TrimSpace(string(data))
	if b, err := hex.DecodeString(s); err == nil && len(b) >= MinKeyBytes {
		return Key{b: b}, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) >= MinKeyBytes {
		return Key{b: b}, nil
	}
	if len(s) > 0 && len(data) >= MinKeyBytes && !isText(data) {
		return Key{b: append([]byte(nil), data...)}, nil
	}
	return Key{}, errors.New("key must be at least 32 bytes (hex or base64 text, or raw bytes)")
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x09 || c > 0x7E {
			return false
		}
	}
	return true
}

// LoadKeyFile reads a key file. It refuses files that other users can read,
// because the key is what keeps pseudonyms unlinkable.
func LoadKeyFile(path string) (Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Key{}, fmt.Errorf("key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("key file %s has mode %04o: it must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("key file: %w", err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k as hex text to a new file with mode 0600; it never
// overwrites an existing file.
func WriteKeyFile(path string, k Key) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := f.WriteString(k.Encode() + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	return f.Close()
}

// Encode returns the key as hex text.
func (k Key) Encode() string { return hex.EncodeToString(k.b) }

// Valid reports whether k holds a key.
func (k Key) Valid() bool { return len(k.b) >= MinKeyBytes }

// Pseudonymizer derives pseudonyms from one key. Separate sub-keys per
// purpose keep a UID pseudonym from ever equalling an ID pseudonym.
type Pseudonymizer struct {
	uidKey, idKey, shiftKey []byte
}

// New returns a Pseudonymizer for k.
func New(k Key) (*Pseudonymizer, error) {
	if !k.Valid() {
		return nil, errors.New("no valid project key: pseudonyms need a key of at least 32 bytes")
	}
	sub := func(label string) []byte {
		m := hmac.New(sha256.New, k.b)
		m.Write([]byte("dicomdeid/v1/" + label))
		return m.Sum(nil)
	}
	return &Pseudonymizer{uidKey: sub("uid"), idKey: sub("id"), shiftKey: sub("dateshift")}, nil
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// Indexer makes the keys of a lookup table kept on the trusted side (the
// service's index of ingested studies by Study Instance UID and Accession
// Number) from identifying values: a keyed hash, so that whoever reads
// the table cannot test a guessed value (accession "2") without the key.
type Indexer struct{ key []byte }

// NewIndexer returns the Indexer of k (a sub-key of its own: an index key
// never equals a pseudonym).
func NewIndexer(k Key) (*Indexer, error) {
	if !k.Valid() {
		return nil, errors.New("no valid project key: index keys need a key of at least 32 bytes")
	}
	m := hmac.New(sha256.New, k.b)
	m.Write([]byte("dicomdeid/v1/index"))
	return &Indexer{key: m.Sum(nil)}, nil
}

// Key is the index key of value in a domain ("study", "accession"...):
// 128 keyed bits, in hex.
func (x *Indexer) Key(domain, value string) string {
	return hex.EncodeToString(mac(x.key, domain, value)[:16])
}

// UID maps a UID to a "2.25." UID (PS3.5 B.2) built from 128 keyed bits
// shaped as a version 8 UUID; at most 44 characters.
func (p *Pseudonymizer) UID(uid string) string {
	h := mac(p.uidKey, uid)[:16]
	h[6] = h[6]&0x0F | 0x80 // UUID version 8 (custom)
	h[8] = h[8]&0x3F | 0x80 // RFC 9562 variant
	return "2.25." + new(big.Int).SetBytes(h).String()
}

// Format renders a pseudonym template for value in a domain (such as
// "patient" or a tag): {hash:N} is N base32 characters of the keyed hash,
// {digits:N} N decimal digits; other text is copied.
func (p *Pseudonymizer) Format(template, domain, value string) (string, error) {
	h := mac(p.idKey, domain, value)
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h)
	digits := new(big.Int).SetBytes(h).String()
	var out strings.Builder
	rest := template
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			out.WriteString(rest)
			return out.String(), nil
		}
		out.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("pseudonym template: unclosed '{'")
		}
		ph := rest[i+1 : i+j]
		rest = rest[i+j+1:]
		kind, num, ok := strings.Cut(ph, ":")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return "", fmt.Errorf("pseudonym template: bad placeholder {%s}", ph)
		}
		switch {
		case kind == "hash" && n >= 1 && n <= 26:
			out.WriteString(b32[:n])
		case kind == "digits" && n >= 1 && n <= 20:
			out.WriteString(digits[len(digits)-n:])
		default:
			return "", fmt.Errorf("pseudonym template: bad placeholder {%s}", ph)
		}
	}
}

// DayShift returns the keyed per-patient shift in days, in [-maxDays,
// -minDays]: dates move back, and every date of one patient moves by the
// same amount so intervals are kept.
func (p *Pseudonymizer) DayShift(patient string, minDays, maxDays int) int {
	if maxDays < minDays {
		minDays, maxDays = maxDays, minDays
	}
	span := uint64(maxDays-minDays) + 1
	h := mac(p.shiftKey, patient)
	return -(minDays + int(binary.BigEndian.Uint64(h[:8])%span))
}
