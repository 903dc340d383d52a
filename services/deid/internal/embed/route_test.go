package embed

import (
	"net/http"
	"strings"
	"testing"
)

// A key whose part is longer than a file name is a valid S3 key the
// store cannot hold: refused before the body is read (it was answered
// 500 after the upload), while the longest storable keys are accepted.
func TestRouteRefusesKeysTheStoreCannotHold(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want *s3Err
	}{
		{strings.Repeat("a", 255), nil},
		{strings.Repeat("a", 255) + "/" + strings.Repeat("b", 255), nil},
		{strings.Repeat("a", 256), errKeySegment},
		{"dir/" + strings.Repeat("Doe%5EJane", 40) + ".dcm", errKeySegment},
		{strings.Repeat("a", 1025), errKeyName},
	} {
		req, err := http.NewRequest("PUT", "http://127.0.0.1/deid-incoming/"+tc.key, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, rerr := route(req)
		if rerr != tc.want {
			t.Errorf("key of %d bytes: %v, want %v", len(tc.key), rerr, tc.want)
		}
	}
}
