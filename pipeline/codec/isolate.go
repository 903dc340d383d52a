package codec

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// The C decoders run in child processes. Fuzzing found that on hostile
// input Debian's OpenJPEG 2.5.0 aborts the process (an assertion in its
// HTJ2K block decoder; OpenJPH 0.9.0 aborts on the same stream:
// testdata/fuzz/FuzzJ2K/ab9e11bcb1987241) and CharLS 2.4.1 spends half a
// minute of CPU on 60 bytes before refusing them
// (testdata/fuzz/FuzzJPEGLS/18d29e1a40ff4207). Neither can be stopped in
// process. So each frame for a C decoder goes over a pipe to a worker:
// this executable again, started with WorkerEnv set, serving frames
// until its input closes. A worker that crashes, overruns the frame's
// time limit (killed) or answers anything malformed makes that frame an
// ErrCorrupt; the next frame gets a fresh worker. Workers are kept for
// reuse (one per decoding goroutine at most) and leave after a minute
// unused.
//
// The program must call ServeWorkerIfAsked first thing in main (and a
// test binary in TestMain); one that does not gets ErrUnsupported for
// such frames, which its caller holds back.

// WorkerEnv is set in the environment of a decoding child process.
const WorkerEnv = "DICOMDEID_CODEC_WORKER"

// workerIdle is how long an unused worker waits for a frame.
const workerIdle = time.Minute

var workerMagic = [4]byte{'D', 'D', 'C', 'W'}

// frameTimeout bounds the decoding of one frame: generous for the
// largest legitimate frames on a slow, shared core, far below what a
// stuck decoder would take.
func frameTimeout(frameBytes int) time.Duration {
	return 20*time.Second + time.Duration(frameBytes>>20)*2*time.Second
}

// ServeWorkerIfAsked serves frames and exits when this process was
// started as a decoding worker; otherwise it returns at once.
func ServeWorkerIfAsked() {
	if os.Getenv(WorkerEnv) != "1" {
		return
	}
	os.Exit(serveWorker(os.Stdin, os.Stdout, buildSet().inProcess))
}

// A request: magic, 7 geometry values, syntax, photometric, frame; an
// answer: magic, status (0 ok, 1 error), length, frame or message.
func writeRequest(w io.Writer, src []byte, in Image) error {
	req := append([]byte(nil), workerMagic[:]...)
	for _, v := range []int{in.Rows, in.Columns, in.SamplesPerPixel, in.BitsAllocated, in.BitsStored, in.PixelRepresentation, in.PlanarConfiguration} {
		req = binary.LittleEndian.AppendUint32(req, uint32(v))
	}
	for _, s := range []string{in.Syntax, in.Photometric} {
		req = binary.LittleEndian.AppendUint32(req, uint32(len(s)))
		req = append(req, s...)
	}
	req = binary.LittleEndian.AppendUint32(req, uint32(len(src)))
	if _, err := w.Write(req); err != nil {
		return err
	}
	_, err := w.Write(src)
	return err
}

func writeAnswer(w *bufio.Writer, status byte, payload []byte) error {
	w.Write(workerMagic[:])
	w.WriteByte(status)
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(payload)))
	w.Write(n[:])
	w.Write(payload)
	return w.Flush()
}

// serveWorker answers requests until its input ends (or stays idle).
func serveWorker(r io.Reader, w io.Writer, decs map[string]Decoder) int {
	in := bufio.NewReaderSize(r, 1<<20)
	out := bufio.NewWriterSize(w, 1<<20)
	idle := time.AfterFunc(workerIdle, func() { os.Exit(0) })
	for {
		var hdr [4 + 7*4]byte
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return 0 // the parent closed the pipe: done
		}
		idle.Stop()
		if [4]byte(hdr[:4]) != workerMagic {
			return 2
		}
		u := func(i int) int { return int(binary.LittleEndian.Uint32(hdr[4+4*i:])) }
		im := Image{Rows: u(0), Columns: u(1), Frames: 1, SamplesPerPixel: u(2), BitsAllocated: u(3), BitsStored: u(4),
			PixelRepresentation: u(5), PlanarConfiguration: u(6)}
		field := func(max int) ([]byte, error) {
			var n [4]byte
			if _, err := io.ReadFull(in, n[:]); err != nil {
				return nil, err
			}
			l := int(binary.LittleEndian.Uint32(n[:]))
			if l > max {
				return nil, errors.New("field too long")
			}
			b := make([]byte, l)
			_, err := io.ReadFull(in, b)
			return b, err
		}
		ts, err1 := field(64)
		pi, err2 := field(64)
		src, err3 := field(MaxFrameBytes)
		if err := errors.Join(err1, err2, err3); err != nil {
			return 2
		}
		im.Syntax, im.Photometric = string(ts), string(pi)
		var answer error
		dst := make([]byte, 0)
		if err := im.Check(); err != nil {
			answer = err
		} else if dec, ok := decs[im.Syntax]; !ok {
			answer = fmt.Errorf("%w: no decoder in the worker", ErrUnsupported)
		} else {
			dst = make([]byte, Output(im).FrameBytes())
			answer = dec.Decode(dst, src, im)
		}
		if answer != nil {
			err := writeAnswer(out, 1, []byte(answer.Error()))
			if err != nil {
				return 2
			}
		} else if err := writeAnswer(out, 0, dst); err != nil {
			return 2
		}
		idle.Reset(workerIdle)
	}
}

// workerPool keeps idle worker processes for reuse.
type workerPool struct {
	mu   sync.Mutex
	idle []*worker
	// limit replaces frameTimeout when set (tests, fuzzing).
	limit time.Duration
}

func (p *workerPool) timeout(frameBytes int) time.Duration {
	if p.limit > 0 {
		return p.limit
	}
	return frameTimeout(frameBytes)
}

type worker struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	last time.Time     // when it answered last
	used bool          // it answered before
	done chan struct{} // closed when the process has exited (and was reaped)
}

// errNotWorker: the first answer of a new worker did not start with the
// magic: the program does not serve workers (no ServeWorkerIfAsked).
var errNotWorker = errors.New("not a codec worker")

func (p *workerPool) get() (*worker, error) {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		w := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if time.Since(w.last) < workerIdle/2 {
			p.mu.Unlock()
			return w, nil
		}
		go w.kill() // about to leave on its own: reaped, not reused
	}
	p.mu.Unlock()
	if os.Getenv(WorkerEnv) != "" {
		// A child that did not serve (no ServeWorkerIfAsked): never
		// start grandchildren.
		return nil, fmt.Errorf("%w: isolated decoding not available in this program", ErrUnsupported)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%w: isolated decoding: no executable", ErrUnsupported)
	}
	// "-test.run=^$": a test binary without the worker hook runs nothing.
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), WorkerEnv+"=1", "GOMAXPROCS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: isolated decoding: %v", ErrUnsupported, err)
	}
	w := &worker{cmd: cmd, in: stdin, out: bufio.NewReaderSize(stdout, 1<<20), done: make(chan struct{})}
	// Reaped as soon as it exits (idle, crashed or killed), wherever the
	// pool holding it went: no zombie. A worker exits only after its last
	// answer was read, so nothing unread is lost when Wait closes the pipe.
	go func() {
		cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

func (p *workerPool) put(w *worker) {
	w.last = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, w)
}

func (w *worker) kill() {
	w.in.Close()
	w.cmd.Process.Kill()
	<-w.done
}

// decode sends one frame to a worker and reads the decoded frame into
// dst; the worker goes back to the pool only after a clean answer.
func (p *workerPool) decode(dst, src []byte, in Image) error {
	w, err := p.get()
	if err != nil {
		return err
	}
	limit := p.timeout(len(dst))
	timer := time.AfterFunc(limit, func() { w.cmd.Process.Kill() })
	err = w.exchange(dst, src, in)
	stopped := timer.Stop()
	var answered *workerAnswer
	switch {
	case errors.As(err, &answered):
		p.put(w) // the worker refused the frame and goes on
		return answered.err
	case errors.Is(err, errNotWorker):
		w.kill()
		return fmt.Errorf("%w: this program does not serve codec workers (codec.ServeWorkerIfAsked)", ErrUnsupported)
	case err != nil:
		w.kill()
		if !stopped {
			return fmt.Errorf("%w: decoding overran its time limit (%s): the decoder was stopped", ErrCorrupt, limit)
		}
		return fmt.Errorf("%w: the decoder crashed on this frame (isolated process: %v)", ErrCorrupt, err)
	}
	p.put(w)
	return nil
}

// workerAnswer is the worker's own refusal of a frame.
type workerAnswer struct{ err error }

func (a *workerAnswer) Error() string { return a.err.Error() }

func (w *worker) exchange(dst, src []byte, in Image) error {
	if err := writeRequest(w.in, src, in); err != nil {
		return err
	}
	var hdr [9]byte
	if _, err := io.ReadFull(w.out, hdr[:]); err != nil {
		return err
	}
	if [4]byte(hdr[:4]) != workerMagic {
		if !w.used {
			return errNotWorker
		}
		return errors.New("malformed answer")
	}
	w.used = true
	n := int(binary.LittleEndian.Uint32(hdr[5:]))
	switch hdr[4] {
	case 0:
		if n != len(dst) {
			return fmt.Errorf("answer of %d bytes for a frame of %d", n, len(dst))
		}
		_, err := io.ReadFull(w.out, dst)
		return err
	case 1:
		if n > 4096 {
			return errors.New("malformed answer")
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(w.out, msg); err != nil {
			return err
		}
		kind := ErrCorrupt
		if len(msg) >= len(ErrUnsupported.Error()) && string(msg[:len(ErrUnsupported.Error())]) == ErrUnsupported.Error() {
			kind = ErrUnsupported
		}
		return &workerAnswer{err: fmt.Errorf("%w: %s", kind, trimKind(string(msg)))}
	}
	return errors.New("malformed answer")
}

// trimKind drops the kind's own words from a worker's message, which
// the parent wraps again.
func trimKind(s string) string {
	for _, k := range []error{ErrCorrupt, ErrUnsupported, ErrGeometry} {
		if p := k.Error() + ": "; len(s) >= len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}

// isolated is a decoder that runs in the pool's workers, after check
// (the codestream header against the geometry, in Go) in this process:
// a frame refused there costs no round trip.
type isolated struct {
	pool  *workerPool
	check func(src []byte, in Image) error
}

func (d isolated) Decode(dst, src []byte, in Image) error {
	if d.check != nil {
		if err := d.check(src, in); err != nil {
			return err
		}
	}
	return d.pool.decode(dst, src, in)
}
