package s3name

import (
	"strings"
	"testing"
)

func TestValidBucket(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"deid-incoming", true}, {"a.b.c", true}, {"abc", true}, {"my-bucket-2026", true},
		{strings.Repeat("a", 63), true},
		{".", false}, {"..", false}, {"ab", false}, {"", false}, {strings.Repeat("a", 64), false},
		{"Deid-Incoming", false}, {"deid_incoming", false}, {"deid/incoming", false}, {"./deid-incoming", false},
		{"deid-incoming/", false}, {"-deid", false}, {"deid-", false}, {".deid", false}, {"deid.", false},
		{"deid..incoming", false}, {"deid.-incoming", false}, {"deid-.incoming", false}, {"192.168.1.1", false},
		{"deid%2eincoming", false}, {"deid incoming", false}, {"deid\x00in", false},
	} {
		if got := ValidBucket(c.name); got != c.ok {
			t.Errorf("ValidBucket(%q) = %v, want %v", c.name, got, c.ok)
		}
	}
}

func TestValidKey(t *testing.T) {
	for _, c := range []struct {
		key string
		ok  bool
	}{
		{"a.dcm", true}, {"DOE^JANE/IM0001", true}, {"study 1/série/x.dcm", true}, {"a/b/c/..dcm", true},
		{"x..y/z", true}, {strings.Repeat("k", 1024), true},
		{"", false}, {"/etc/passwd", false}, {"../deid-quarantine/x.dcm", false}, {"a/../../b", false},
		{"a/./b", false}, {".", false}, {"a/..", false}, {"a\\..\\b", false}, {"a\x00b", false}, {"a\nb", false},
		{"\xff\xfe", false}, {strings.Repeat("k", 1025), false},
	} {
		if got := ValidKey(c.key); got != c.ok {
			t.Errorf("ValidKey(%q) = %v, want %v", c.key, got, c.ok)
		}
	}
	if !ValidPrefix("") || !ValidPrefix("batch/") || ValidPrefix("../") || ValidPrefix("a/../") {
		t.Error("ValidPrefix: the whole bucket and a folder are prefixes; a .. segment is not")
	}
}

func TestValidBucketReserved(t *testing.T) {
	for name, want := range map[string]bool{
		"deid-incoming": true, "a.b.c": true, "abc": true, "123": true, strings.Repeat("a", 63): true,
		".": false, "..": false, "": false, "ab": false, strings.Repeat("a", 64): false, "Deid": false, "a..b": false,
		".abc": false, "abc.": false, "-abc": false, "abc-": false, "a_b": false, "a/b": false, "192.168.1.1": false,
		"xn--abc": false, "abc-s3alias": false, "a b": false, "a%2eb": false, "a.-b": false,
	} {
		if got := ValidBucket(name); got != want {
			t.Errorf("ValidBucket(%q) = %v, want %v", name, got, want)
		}
	}
}
