package main

import (
	"os"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
)

// The test binary is also the codecs' isolated decoding process
// (codec.ServeWorkerIfAsked): HTJ2K frames are decoded in a child.
func TestMain(m *testing.M) {
	codec.ServeWorkerIfAsked()
	os.Exit(m.Run())
}
