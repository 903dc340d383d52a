package deid

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// Benchmarks of the engine's hot paths on representative files: a 0.5 MB
// CT slice with GE private groups (what the bench workload's 200 slices
// are made of), an MR with a Siemens CSA header, and an SR. Run with
// go test -bench . -benchmem ./pipeline/deid
var benchFiles = []string{"ct_ge_private.dcm", "mr_siemens_csa.dcm", "sr_comprehensive_nested.dcm"}

// benchProfiles are the profiles the engine benchmarks run with: basic
// (what scripts/bench compares with gdcmanon) and a research profile with
// cleaning options (more text work per file).
func benchProfiles() []struct {
	name string
	p    *rules.Profile
} {
	return []struct {
		name string
		p    *rules.Profile
	}{{"basic", basicProfile()}, {"research", researchProfile()}}
}

func benchInputs(b *testing.B) map[string][]byte {
	b.Helper()
	out := map[string][]byte{}
	if p := os.Getenv("BENCH_FILE"); p != "" { // a file of your own workload
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		out[filepath.Base(p)] = data
		return out
	}
	for _, n := range benchFiles {
		data, err := os.ReadFile(filepath.Join(corpusDir(b), n))
		if err != nil {
			b.Skipf("%s: %v", n, err)
		}
		out[n] = data
	}
	return out
}

func BenchmarkParse(b *testing.B) {
	for name, in := range benchInputs(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := dicomraw.Parse(bytes.NewReader(in), int64(len(in)), dicomraw.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchEngine times an operation of the engine for every bench profile
// and input, as sub-benchmarks named profile/file: prepare does the
// untimed setup and returns the operation.
func benchEngine(b *testing.B, prepare func(b *testing.B, e *Engine, in []byte) func() error) {
	for _, bp := range benchProfiles() {
		e := newEngine(b, bp.p, 1)
		for name, in := range benchInputs(b) {
			b.Run(bp.name+"/"+name, func(b *testing.B) {
				op := prepare(b, e, in)
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := op(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// plan is the job of an input, for benchmarks of the later stages.
func plan(b *testing.B, e *Engine, in []byte) *Job {
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		b.Fatal(err)
	}
	return j
}

func BenchmarkPlan(b *testing.B) {
	benchEngine(b, func(b *testing.B, e *Engine, in []byte) func() error {
		return func() error {
			_, err := e.Plan(bytes.NewReader(in), int64(len(in)))
			return err
		}
	})
}

func BenchmarkWrite(b *testing.B) {
	benchEngine(b, func(b *testing.B, e *Engine, in []byte) func() error {
		j := plan(b, e, in)
		return func() error {
			_, err := j.WriteTo(io.Discard)
			return err
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	benchEngine(b, func(b *testing.B, e *Engine, in []byte) func() error {
		j := plan(b, e, in)
		var out bytes.Buffer
		if _, err := j.WriteTo(&out); err != nil {
			b.Fatal(err)
		}
		of, err := dicomraw.Parse(bytes.NewReader(out.Bytes()), int64(out.Len()), dicomraw.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		return func() error {
			_, err := j.Verify(of)
			return err
		}
	})
}

// BenchmarkEndToEnd is one file through everything deid run does but the
// file system: parse and plan, write, parse the output back, verify.
func BenchmarkEndToEnd(b *testing.B) {
	benchEngine(b, func(b *testing.B, e *Engine, in []byte) func() error {
		var sp spool
		return func() error {
			j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
			if err != nil {
				return err
			}
			defer j.Close() // as deid run does: the job's scratch serves the next file
			sp.Reset()
			_, _, err = j.WriteVerified(&sp)
			return err
		}
	})
}
