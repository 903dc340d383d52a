//go:build bench

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

// TestServeThroughput is the service-path benchmark of scripts/bench:
// the files of BENCH_IN through `deid serve` S3 -> S3 (a submitted
// prefix, from submit to the job's completion), on the embedded S3
// endpoint and on versitygw, with 1, 2 and 4 workers, next to `deid run`
// on the same files with as many workers, in the same run. Medians of
// BENCH_RUNS (default 3). BENCH_MODES and BENCH_WORKERS narrow the run
// (BENCH_CPUPROFILE profiles one case). BENCH_MODES=natsapart runs the
// embedded S3 endpoint with NATS as a server of its own, on the CPUs
// BENCH_NATS_CPUS names (run the test binary under `taskset -c 0` with
// BENCH_NATS_CPUS=1 to give NATS a core the service and deid run do not
// use).
func TestServeThroughput(t *testing.T) {
	in := os.Getenv("BENCH_IN")
	if in == "" {
		t.Skip("BENCH_IN names the workload directory")
	}
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	var files []string
	filepath.Walk(in, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	dir := t.TempDir()
	keyFile := writeKey(t, dir, keyA)
	workers := []int{1, 2, 4}
	if v := os.Getenv("BENCH_WORKERS"); v != "" { // e.g. "4", for a profile
		workers = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(f); err == nil && n > 0 {
				workers = append(workers, n)
			}
		}
	}
	modes := []string{"embedded", "versitygw"}
	if v := os.Getenv("BENCH_MODES"); v != "" {
		modes = strings.Split(v, ",")
	}

	// deid run and the service take turns, run by run, so that a slower
	// stretch of the machine (its disk is shared) weighs on both alike; each
	// turn gives a ratio of its own.
	type result struct {
		mode        string
		workers     int
		rates       []float64 // instances/s, one per turn
		ratios      []float64 // service / deid run of the same turn
		cpu, runCPU []float64 // CPU ms per instance, per file
	}
	var results []*result
	runRates := map[int][]float64{}
	for _, w := range workers {
		byMode := map[string]*result{}
		for _, mode := range modes {
			byMode[mode] = &result{mode: mode, workers: w}
			results = append(results, byMode[mode])
		}
		for r := 0; r < runs; r++ {
			out := filepath.Join(dir, fmt.Sprintf("run-%d-%d", w, r))
			// Each timed run starts with the previous one's writes on disk:
			// their writeback would otherwise slow whichever run comes next.
			syscall.Sync()
			stopProfile := profileTo(t, fmt.Sprintf("run-%d", w))
			meter := newCPUMeter()
			start := time.Now()
			if code, _, errOut := runDeid(t, "run", "--in", in, "--out", out, "--profile", "basic", "--key-file", keyFile,
				"--workers", strconv.Itoa(w), "--no-progress"); code != 0 {
				t.Fatalf("deid run: %s", errOut)
			}
			// Outputs stay until the test ends: ext4 skips inodes freed in
			// the last 30 s when it allocates, so deleting them now would
			// slow whichever run comes next (see scripts/bench).
			runRate := float64(len(files)) / time.Since(start).Seconds()
			user, sys := meter.since()
			runCPU := float64((user + sys).Microseconds()) / 1000 / float64(len(files))
			stopProfile()
			runRates[w] = append(runRates[w], runRate)
			t.Logf("deid run, %d workers: %.1f files/s, %.2f ms CPU per file", w, runRate, runCPU)
			for _, mode := range modes {
				// A subtest each, so that its servers (nats-server and
				// versitygw processes, the embedded service) and files are
				// gone before the next run, not left idling beside it.
				var rate float64
				var cpu time.Duration
				data := filepath.Join(dir, fmt.Sprintf("%s-%d-%d", mode, w, r))
				t.Run(fmt.Sprintf("%s-%d-%d", mode, w, r), func(t *testing.T) { rate, cpu = serviceRate(t, mode, w, keyFile, files, in, data) })
				res := byMode[mode]
				res.rates = append(res.rates, rate)
				res.ratios = append(res.ratios, rate/runRate)
				res.cpu = append(res.cpu, float64(cpu.Microseconds())/1000)
				res.runCPU = append(res.runCPU, runCPU)
				t.Logf("%s, %d workers: %.1f instances/s, %.2f ms CPU per instance in this process", mode, w, rate, float64(cpu.Microseconds())/1000)
			}
		}
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].mode < results[j].mode })
	fmt.Printf("\nservice path, %d files (%s), profile basic, medians (and ranges) of %d runs; each run's ratio is to\n", len(files), in, runs)
	fmt.Printf("the deid run just before it; CPU is this process's, per instance (versitygw and nats-server not counted)\n")
	fmt.Printf("%-10s %7s %22s %13s %16s %20s %18s\n", "S3", "workers", "instances/s", "per worker/s", "deid run files/s",
		"service/run", "CPU ms service/run")
	for _, r := range results {
		lo, hi := slices.Min(r.ratios), slices.Max(r.ratios)
		rlo, rhi := slices.Min(r.rates), slices.Max(r.rates)
		fmt.Printf("%-10s %7d %8.1f (%5.0f-%5.0f) %13.1f %16.1f %7.0f%% (%3.0f-%3.0f%%) %8.2f / %.2f\n", r.mode, r.workers,
			median(r.rates), rlo, rhi, median(r.rates)/float64(r.workers), median(runRates[r.workers]),
			100*median(r.ratios), 100*lo, 100*hi, median(r.cpu), median(r.runCPU))
	}
}

// cpuMeter measures this process's CPU time (user and system) from its
// creation.
type cpuMeter struct{ u, s time.Duration }

func newCPUMeter() cpuMeter {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuMeter{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// since returns the user and system time spent since m was made.
func (m cpuMeter) since() (user, sys time.Duration) {
	now := newCPUMeter()
	return now.u - m.u, now.s - m.s
}

// profileTo starts a CPU profile of what follows, until the returned
// func is called, when BENCH_CPUPROFILE names a file prefix (the timed
// parts only: BENCH_CPUPROFILE.<what>-<time>).
func profileTo(t *testing.T, what string) (stop func()) {
	p := os.Getenv("BENCH_CPUPROFILE")
	if p == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%s-%d", p, what, time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func median(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	return v[len(v)/2]
}

// serviceRate uploads the files (untimed) and times one submitted job.
// data is the embedded service's data directory: under the test's own,
// so that it is deleted when the test ends, not when the run does.
func serviceRate(t *testing.T, mode string, workers int, keyFile string, files []string, root, data string) (rate float64, cpu time.Duration) {
	c := serveConfigForTest(t)
	c.data = data
	c.workers, c.keyFile, c.profile, c.logLevel = workers, keyFile, "basic", "error"
	natsURL := "nats://" + c.natsListen
	var srv *service
	switch mode {
	case "versitygw":
		// Their files under data too, kept until the test ends: deleted
		// now, they would slow the next runs (see deid run above).
		n := startNATSServerIn(t, filepath.Join(data, "nats"), "", false)
		natsURL = n.url
		vgw := startVersityGWIn(t, "", filepath.Join(data, "versitygw"))
		srv = externalService(t, n, vgw, func(x *serveConfig) {
			x.workers, x.keyFile, x.profile, x.logLevel = workers, keyFile, "basic", "error"
			x.data = filepath.Join(data, "service")
		})
	case "natsapart":
		// NATS as deployed, a server of its own (on the cores
		// BENCH_NATS_CPUS names, e.g. "1" with the test under
		// `taskset -c 0`), the embedded S3 endpoint in this process.
		n := startNATSServerIn(t, filepath.Join(data, "nats"), os.Getenv("BENCH_NATS_CPUS"), false)
		natsURL = n.url
		c.natsURL, c.natsCreds = n.url, n.file(natsauth.Worker)
		srv = startForTest(t, c, io.Discard)
		srv.natsCredDir = n.creds
	default:
		srv = startForTest(t, c, io.Discard)
	}
	defer srv.Stop()
	mc := srv.s3Client(t)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "bench", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		if _, err := mc.PutObject(ctx, "bench", "wl/"+filepath.ToSlash(rel), bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nc, js := srv.natsAs(t, natsauth.Admin)
	id := fmt.Sprintf("bench-%s-%d-%d", mode, workers, time.Now().UnixNano())
	syscall.Sync() // the uploads' and the previous run's writes, as for deid run
	meter := newCPUMeter()
	defer profileTo(t, fmt.Sprintf("%s-%d", mode, workers))()
	start := time.Now()
	// The job ends when its job.done event is out, as a consumer of the
	// events sees it; its status is then read to check the counts. Where
	// the time goes: submit to the first output, first to last, last to
	// the job's event.
	var first, last time.Time
	var evMu sync.Mutex
	jobDone := make(chan time.Time, 1)
	evSub, err := nc.Subscribe("deid.events.>", func(m *nats.Msg) {
		now := time.Now()
		evMu.Lock()
		defer evMu.Unlock()
		switch m.Subject {
		case ingest.SubjectInstanceDone:
			if first.IsZero() {
				first = now
			}
			last = now
		case ingest.SubjectJobDone:
			var ev ingest.JobDone
			if json.Unmarshal(m.Data, &ev) == nil && ev.JobID == id {
				select {
				case jobDone <- now:
				default:
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer evSub.Unsubscribe()
	if err := nc.Flush(); err != nil { // subscribed before the job starts
		t.Fatal(err)
	}
	if code, out, errOut := runDeid(t, "submit", "--bucket", "bench", "--prefix", "wl/", "--job-id", id, "--nats-url", natsURL,
		"--nats-creds", natsauth.File(srv.natsCredDir, natsauth.Submitter)); code != 0 {
		t.Fatalf("submit: %s %s", out, errOut)
	}
	var end time.Time
	for {
		select {
		case end = <-jobDone:
		case <-time.After(20 * time.Millisecond):
		}
		st, err := ingest.JobStatus(ctx, js, id)
		if err == nil && st.Complete {
			if end.IsZero() { // the event was missed: the status is the end
				end = time.Now()
			}
			if st.Done != len(files) {
				t.Fatalf("%d of %d written: %s", st.Done, len(files), strings.TrimSpace(fmt.Sprint(st)))
			}
			break
		}
		if time.Since(start) > 10*time.Minute {
			t.Fatal("job not complete in 10 minutes")
		}
	}
	evMu.Lock()
	t.Logf("submit to first output %v, first to last output %v, last output to job done %v",
		first.Sub(start).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond), end.Sub(last).Round(time.Millisecond))
	evMu.Unlock()
	user, sys := meter.since()
	t.Logf("CPU %.2f cores (user %v sys %v) over %v", (user+sys).Seconds()/time.Since(start).Seconds(), user, sys, time.Since(start))
	return float64(len(files)) / end.Sub(start).Seconds(), (user + sys) / time.Duration(len(files))
}
