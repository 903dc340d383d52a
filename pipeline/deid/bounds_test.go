package deid

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/bombs"
	"github.com/dicomdeid/dicomdeid/pipeline/budget"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// The engine under a memory budget: every bomb is refused (kind limit,
// nothing of the file in the reason) within what one file may hold, and
// an ordinary file is written byte for byte as without the budget.

// memSpool is an in-memory output spool.
type memSpool struct{ bytes.Buffer }

func (m *memSpool) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.Bytes()).ReadAt(p, off)
}

// scratchCount counts the scratch files an engine creates and closes.
type scratchCount struct{ made, closed int }

type countedScratch struct {
	dicomraw.Scratch
	c *scratchCount
}

func (s countedScratch) Close() error { s.c.closed++; return s.Scratch.Close() }

func budgetedEngine(t *testing.T, pool *budget.Pool, lim dicomraw.Limits, c *scratchCount) *Engine {
	t.Helper()
	dir := t.TempDir()
	lim.Scratch = func() (dicomraw.Scratch, error) {
		sc, err := dicomraw.TempScratch(dir)
		if err != nil {
			return nil, err
		}
		c.made++
		return countedScratch{sc, c}, nil
	}
	e, err := New(Config{Profile: basicProfile(), Key: testKey(t, 7), Limits: lim, Memory: pool, OCR: blindReader{}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// process plans and writes one input as the services do, and returns the
// refusal.
func process(e *Engine, in []byte) (out []byte, err error) {
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		return nil, err
	}
	defer j.Close()
	var sp memSpool
	if _, _, err := j.WriteVerified(&sp); err != nil {
		return nil, err
	}
	return sp.Bytes(), nil
}

func TestBombsAreRefusedWithinTheMemoryBudget(t *testing.T) {
	pool := budget.New(budget.Config{Total: 64 << 20, Workers: 2, MaxWait: 10 * time.Millisecond})
	var sc scratchCount
	e := budgetedEngine(t, pool, dicomraw.Limits{}, &sc)
	// Without the ratio limit, what stops the element bombs is the budget.
	noRatio := budgetedEngine(t, pool, dicomraw.Limits{MaxInflateRatio: -1}, &sc)
	for _, c := range []struct {
		name string
		e    *Engine
		in   []byte
		why  string
		// garbage: how many times what one file may hold the work
		// allocates and drops on the way (growing lists, the walk's
		// strings, a keyed hash of every value planned).
		garbage uint64
	}{
		{"deflate 4.2 MB to 4 GiB", e, bombs.Deflate("2.25.11", 4<<30), "times its deflated size", 2},
		{"deflate 1 MB to 1000 MiB", e, bombs.Deflate("2.25.12", 1000<<20), "times its deflated size", 2},
		{"5 million elements", e, bombs.Elements("2.25.13", 5_000_000), "times its deflated size", 2},
		{"5 million elements, no ratio limit", noRatio, bombs.Elements("2.25.13", 5_000_000), "memory one file may hold", 2},
		{"5 million items, no ratio limit", noRatio, bombs.Items("2.25.14", 5_000_000), "memory one file may hold", 2},
		// Its tree fits; the identifying values the verifier looks for
		// (three per item) do not. Planning them first hashes each.
		{"30,000 items of distinct identifying values", e, bombs.Values("2.25.15", 30_000), "memory one file may hold", 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			alloc := allocated(func() { _, err = process(c.e, c.in) })
			var rj *Rejection
			if !errors.As(err, &rj) || rj.Kind != "limit" || !strings.Contains(rj.Reason, c.why) {
				t.Fatalf("got %v, want a limit rejection saying %q", err, c.why)
			}
			for _, v := range []string{"BOMB", "DOCTOR", "INSTITUTION", "ID-", "2.25.1"} {
				if strings.Contains(rj.Reason, v) {
					t.Fatalf("reason %q carries a value of the file", rj.Reason)
				}
			}
			// Allocated (an upper bound of what was held at any time): what
			// one file may hold, times the garbage of the way, and the
			// buffers.
			if limit := c.garbage*uint64(pool.PerFile()) + 16<<20; alloc > limit {
				t.Fatalf("%d MiB allocated, want at most %d MiB", alloc>>20, limit>>20)
			}
		})
	}
	if sc.made != sc.closed {
		t.Fatalf("%d scratch files made, %d closed", sc.made, sc.closed)
	}
	// Every refused file gave its budget back: the shared part is free.
	a := pool.Account()
	defer a.Close()
	if err := a.Charge(pool.PerFile()); err != nil {
		t.Fatalf("the budget was not given back: %v", err)
	}
}

// allocated is the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// The values bomb under the old accounting (the tree only) would have
// passed: its needles are what the budget must see.
func TestIdentifyingValuesAreCharged(t *testing.T) {
	pool := budget.New(budget.Config{Total: 1 << 40, Workers: 1})
	var sc scratchCount
	e := budgetedEngine(t, pool, dicomraw.Limits{}, &sc)
	in := bombs.Values("2.25.16", 10_000)
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	tree := j.acct.Used()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var sp memSpool
	if _, _, err := j.WriteVerified(&sp); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc) // the needles and their patterns
	if charged := j.acct.Used() - tree; charged < held {
		t.Fatalf("verification holds %d bytes, charged %d", held, charged)
	}
}

func TestBudgetedEngineWritesTheSameBytes(t *testing.T) {
	dir := corpusDir(t)
	pool := budget.New(budget.Config{Workers: 2})
	var sc scratchCount
	budgeted := budgetedEngine(t, pool, dicomraw.Limits{}, &sc)
	plain := newEngine(t, basicProfile(), 7)
	for _, name := range []string{"sc_deflated.dcm", "deflated_with_sq.dcm", "seg_deflated_image_frame.dcm",
		"ct_small_explicit_le.dcm", "rtstruct_referencing_ct.dcm", "sr_comprehensive_nested.dcm"} {
		in, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := process(plain, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := process(budgeted, in)
		if err != nil {
			t.Fatalf("%s under the budget: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the budgeted engine wrote other bytes", name)
		}
	}
	// sc_deflated and deflated_with_sq: an input and an output scratch each.
	if sc.made != 4 || sc.closed != 4 {
		t.Fatalf("%d scratch files made and %d closed, want 4 and 4", sc.made, sc.closed)
	}
}

// A frame to mask is held in memory while it is masked (three times over
// for RLE): it is charged when the masking is planned, and a frame larger
// than a file may hold refuses the file before anything is written.
func TestFrameToMaskIsCharged(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"big.yaml":   "name: big-frame\nextends: research\nclean_pixel_data:\n  rules: [./rules.yaml]\n",
		"rules.yaml": "rules:\n  - name: big\n    match: {sop_class_uid: 1.2.840.10008.5.1.4.1.1.7, rows: 2048, columns: 2048}\n    mask:\n      - [0, 0, 10, 10]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prof := builtinProfile(t, filepath.Join(dir, "big.yaml"))
	us := func(tag uint32, v uint16) el { return s(tag, "US", string([]byte{byte(v), byte(v >> 8)})) }
	in := buildFile(t, false, []el{
		s(tagSOPClassUID, "UI", "1.2.840.10008.5.1.4.1.1.7"), s(tagSOPInstanceUID, "UI", "1.2.826.0.1.999.7.1"),
		s(0x00080060, "CS", "OT"), s(tagStudyInstanceUID, "UI", "1.2.826.0.1.999.7"), s(tagSeriesInstanceUID, "UI", "1.2.826.0.1.999.7.2"),
		us(0x00280002, 3), s(0x00280004, "CS", "RGB"), us(0x00280006, 0), us(0x00280010, 2048), us(0x00280011, 2048),
		us(0x00280100, 8), us(0x00280101, 8), us(0x00280102, 7), us(0x00280103, 0),
		s(uint32(dicomraw.TagPixelData), "OB", string(make([]byte, 2048*2048*3))),
	})
	for _, c := range []struct {
		total int64
		want  string // "" : written
	}{{32 << 20, "memory one file may hold"}, {256 << 20, ""}} {
		pool := budget.New(budget.Config{Total: c.total, Workers: 2})
		e, err := New(Config{Profile: prof, Key: testKey(t, 8), Memory: pool, OCR: blindReader{}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = process(e, in)
		var rj *Rejection
		switch {
		case c.want == "" && err != nil:
			t.Fatalf("with %d MiB: %v", c.total>>20, err)
		case c.want != "" && (!errors.As(err, &rj) || rj.Kind != "limit" || !strings.Contains(rj.Reason, c.want)):
			t.Fatalf("with %d MiB: %v, want a limit rejection", c.total>>20, err)
		}
	}
}

// Refusals that are not the file's doing are plain errors, which the
// services retry, not Rejections, which quarantine: no scratch file, or a
// wait for the shared part of the budget that took too long.
func TestRefusalsOfTheLoadAreNotRejections(t *testing.T) {
	pool := budget.New(budget.Config{Total: 32 << 20, Workers: 2, MaxWait: time.Millisecond})
	holder := pool.Account()
	if err := holder.Charge(pool.Own() + 1); err != nil { // takes the shared part
		t.Fatal(err)
	}
	defer holder.Close()
	e, err := New(Config{Profile: basicProfile(), Key: testKey(t, 7), Memory: pool,
		Limits: dicomraw.Limits{MaxInflateRatio: -1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = process(e, bombs.Items("2.25.31", 200_000)) // more than its own 8 MiB
	var rj *Rejection
	var ex *budget.ExceededError
	if err == nil || errors.As(err, &rj) || !errors.As(err, &ex) || !ex.Wait {
		t.Fatalf("got %v, want a wait refusal that is not a Rejection", err)
	}
	noScratch, err := New(Config{Profile: basicProfile(), Key: testKey(t, 7),
		Limits: dicomraw.Limits{Scratch: func() (dicomraw.Scratch, error) { return nil, os.ErrPermission }}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.ReadFile(filepath.Join(corpusDir(t), "sc_deflated.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err = process(noScratch, in); err == nil || errors.As(err, &rj) {
		t.Fatalf("without a scratch file: %v, want an error that is not a Rejection", err)
	}
}
