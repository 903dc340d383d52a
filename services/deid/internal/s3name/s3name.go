// Package s3name says which bucket names and object keys the service
// accepts. The embedded S3 endpoint checks them before anything touches
// its files, and the workers check them again on every job, whatever sent
// it: one definition, so that an upload the workers would refuse is
// refused when it is made, not accepted and then dropped.
package s3name

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is S3's limit on an object key, in bytes.
const MaxKeyLen = 1024

// ValidBucket reports whether name follows S3's rules for general purpose
// buckets: 3 to 63 characters, lower-case letters, digits, '.' and '-',
// starting and ending with a letter or digit, no "..", no dot next to a
// hyphen, not an IPv4 address, none of the reserved prefixes and
// suffixes. Names that are not valid ("." and ".." first) never reach a
// file system.
func ValidBucket(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	alnum := func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
	if !alnum(name[0]) || !alnum(name[len(name)-1]) || strings.Contains(name, "..") ||
		strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return false
	}
	if ip := strings.Split(name, "."); len(ip) == 4 {
		digits := true
		for _, p := range ip {
			if _, err := strconv.Atoi(p); err != nil {
				digits = false
			}
		}
		if digits {
			return false
		}
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// ValidKey reports whether k can name an object here: 1 to 1024 bytes of
// UTF-8, no control character, no backslash, not starting with "/", no
// "." or ".." segment. S3 allows them; a key that reads as a relative
// path (on any operating system) is refused so that nothing downstream
// can take it for one. Export tools do not name files so.
func ValidKey(k string) bool {
	return k != "" && keyish(k)
}

// ValidPrefix is ValidKey for a listing prefix, which may be empty (the
// whole bucket) and may end with "/".
func ValidPrefix(p string) bool {
	return p == "" || keyish(strings.TrimSuffix(p, "/"))
}

func keyish(k string) bool {
	if len(k) > MaxKeyLen || !utf8.ValidString(k) || strings.HasPrefix(k, "/") || strings.Contains(k, "\\") {
		return false
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
