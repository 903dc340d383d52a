package codec

import (
	"os"
	"testing"
)

// The test binary is also the isolated decoder's child process.
func TestMain(m *testing.M) {
	ServeWorkerIfAsked()
	os.Exit(m.Run())
}
