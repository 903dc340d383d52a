package main

import "testing"

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"8GiB": 8 << 30, "512MiB": 512 << 20, "1KiB": 1024, "1048576": 1 << 20,
		"5GB": 5e9, "3 MiB": 3 << 20, "2TiB": 2 << 40, "7B": 7} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("%q: %d %v, want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "GiB", "1.5GiB", "8 gigs", "99999999999TiB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
	for b, want := range map[byteSize]string{8 << 30: "8GiB", 512 << 20: "512MiB", 1000: "1000", 3 << 40: "3TiB"} {
		if got := b.String(); got != want {
			t.Errorf("%d prints %q, want %q", b, got, want)
		}
	}
}
