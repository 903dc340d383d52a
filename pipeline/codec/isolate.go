package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// Some C decoders abort the process on hostile input: Debian's OpenJPEG
// 2.5.0 (and OpenJPH 0.9.0) assert in the HTJ2K block decoder, found by
// FuzzJ2K (testdata/fuzz/FuzzJ2K/ab9e11bcb1987241). An abort cannot be
// caught in process, so frames that reach such a decoder are decoded in
// a child process: this executable again, started with WorkerEnv set,
// which serves one frame and exits. A crash, a hang (IsolationTimeout)
// or anything but a well-formed answer is that frame's ErrCorrupt; the
// service goes on.
//
// The program must call ServeWorkerIfAsked first thing in main (and a
// test binary in TestMain); one that does not refuses such frames
// (ErrUnsupported: held back).

// WorkerEnv is set in the environment of a decoding child process.
const WorkerEnv = "DICOMDEID_CODEC_WORKER"

// IsolationTimeout bounds one isolated frame.
const IsolationTimeout = 2 * time.Minute

var workerMagic = [4]byte{'D', 'D', 'C', 'W'}

// ServeWorkerIfAsked serves one isolated frame and exits when this
// process was started as a decoding child; otherwise it returns at once.
func ServeWorkerIfAsked() {
	if os.Getenv(WorkerEnv) != "1" {
		return
	}
	os.Exit(serveWorker(os.Stdin, os.Stdout, Default()))
}

func putString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func serveWorker(r io.Reader, w io.Writer, set *Set) int {
	fail := func(msg string) int {
		w.Write(workerMagic[:])
		w.Write([]byte{1})
		w.Write([]byte(msg))
		return 0
	}
	var hdr [4 + 7*4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || [4]byte(hdr[:4]) != workerMagic {
		return fail("bad request")
	}
	u := func(i int) int { return int(binary.LittleEndian.Uint32(hdr[4+4*i:])) }
	im := Image{Rows: u(0), Columns: u(1), Frames: 1, SamplesPerPixel: u(2), BitsAllocated: u(3), BitsStored: u(4),
		PixelRepresentation: u(5), PlanarConfiguration: u(6)}
	str := func(max int) (string, error) {
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return "", err
		}
		l := int(binary.LittleEndian.Uint32(n[:]))
		if l > max {
			return "", errors.New("too long")
		}
		b := make([]byte, l)
		_, err := io.ReadFull(r, b)
		return string(b), err
	}
	var err error
	if im.Syntax, err = str(64); err != nil {
		return fail("bad request")
	}
	if im.Photometric, err = str(64); err != nil {
		return fail("bad request")
	}
	if err := im.Check(); err != nil {
		return fail(err.Error())
	}
	src, err := str(1 << 30)
	if err != nil {
		return fail("bad request")
	}
	c, ok := set.Lookup(im.Syntax)
	if !ok {
		return fail("no decoder")
	}
	dst := make([]byte, Output(im).FrameBytes())
	dec := c.Dec
	if d, ok := dec.(isolating); ok {
		dec = d.inProcess // the child decodes itself
	}
	if err := dec.Decode(dst, []byte(src), im); err != nil {
		return fail(err.Error())
	}
	w.Write(workerMagic[:])
	w.Write([]byte{0})
	w.Write(dst)
	return 0
}

// isolating decodes in a child process the frames risky says need it.
type isolating struct {
	inProcess Decoder
	risky     func(src []byte) bool
}

func (d isolating) Decode(dst, src []byte, in Image) error {
	if !d.risky(src) {
		return d.inProcess.Decode(dst, src, in)
	}
	return decodeIsolated(dst, src, in)
}

func decodeIsolated(dst, src []byte, in Image) error {
	if os.Getenv(WorkerEnv) != "" {
		// A child that did not serve (no ServeWorkerIfAsked): never
		// start grandchildren.
		return fmt.Errorf("%w: isolated decoding not available in this program", ErrUnsupported)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("%w: isolated decoding: no executable", ErrUnsupported)
	}
	req := append([]byte(nil), workerMagic[:]...)
	for _, v := range []int{in.Rows, in.Columns, in.SamplesPerPixel, in.BitsAllocated, in.BitsStored, in.PixelRepresentation, in.PlanarConfiguration} {
		req = binary.LittleEndian.AppendUint32(req, uint32(v))
	}
	req = putString(req, in.Syntax)
	req = putString(req, in.Photometric)
	req = putString(req, string(src))
	ctx, cancel := context.WithTimeout(context.Background(), IsolationTimeout)
	defer cancel()
	// "-test.run=^$": a test binary without the worker hook runs nothing.
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), WorkerEnv+"=1", "GOMAXPROCS=1")
	cmd.Stdin = bytes.NewReader(req)
	out := &limitedBuffer{max: 5 + len(dst) + 1024}
	cmd.Stdout = out
	runErr := cmd.Run()
	b := out.Bytes()
	switch {
	case len(b) < 5 || [4]byte(b[:4]) != workerMagic:
		if runErr != nil {
			return fmt.Errorf("%w: the decoder crashed on this frame (isolated process: %v)", ErrCorrupt, runErr)
		}
		return fmt.Errorf("%w: isolated decoding not available in this program", ErrUnsupported)
	case b[4] != 0:
		return fmt.Errorf("%w: %s", ErrCorrupt, b[5:])
	case len(b) != 5+len(dst) || runErr != nil:
		return fmt.Errorf("%w: isolated decoder's answer malformed", ErrCorrupt)
	}
	copy(dst, b[5:])
	return nil
}

// limitedBuffer keeps at most max bytes (a child cannot make the parent
// hold more than one frame).
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > l.max {
		return 0, errors.New("too much output")
	}
	return l.Buffer.Write(p)
}
