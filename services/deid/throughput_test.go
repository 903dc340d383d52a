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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
)

// TestServeThroughput is the service-path benchmark of scripts/bench:
// the files of BENCH_IN through `deid serve` S3 -> S3 (a submitted
// prefix, from submit to the job's completion), on the embedded S3
// endpoint and on versitygw, with 1, 2 and 4 workers, next to `deid run`
// on the same files with as many workers, in the same run. Medians of
// BENCH_RUNS (default 3). BENCH_MODES and BENCH_WORKERS narrow the run
// (to profile one case with -cpuprofile).
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
	// stretch of the machine (its disk is shared) weighs on both alike.
	type result struct {
		mode    string
		workers int
		rate    float64
	}
	var results []result
	runRate := map[int]float64{}
	for _, w := range workers {
		var runRates []float64
		rates := map[string][]float64{}
		for r := 0; r < runs; r++ {
			out := filepath.Join(dir, fmt.Sprintf("run-%d-%d", w, r))
			// Each timed run starts with the previous one's writes on disk:
			// their writeback would otherwise slow whichever run comes next.
			syscall.Sync()
			stopProfile := profileTo(t, fmt.Sprintf("run-%d", w))
			start := time.Now()
			if code, _, errOut := runDeid(t, "run", "--in", in, "--out", out, "--profile", "basic", "--key-file", keyFile,
				"--workers", strconv.Itoa(w), "--no-progress"); code != 0 {
				t.Fatalf("deid run: %s", errOut)
			}
			// Outputs stay until the test ends: ext4 skips inodes freed in
			// the last 30 s when it allocates, so deleting them now would
			// slow whichever run comes next (see scripts/bench).
			runRates = append(runRates, float64(len(files))/time.Since(start).Seconds())
			stopProfile()
			t.Logf("deid run, %d workers: %.1f files/s", w, runRates[len(runRates)-1])
			for _, mode := range modes {
				// A subtest each, so that its servers (nats-server and
				// versitygw processes, the embedded service) and files are
				// gone before the next run, not left idling beside it.
				var rate float64
				data := filepath.Join(dir, fmt.Sprintf("%s-%d-%d", mode, w, r))
				t.Run(fmt.Sprintf("%s-%d-%d", mode, w, r), func(t *testing.T) { rate = serviceRate(t, mode, w, keyFile, files, in, data) })
				rates[mode] = append(rates[mode], rate)
				t.Logf("%s, %d workers: %.1f instances/s", mode, w, rates[mode][len(rates[mode])-1])
			}
		}
		runRate[w] = median(runRates)
		for _, mode := range modes {
			results = append(results, result{mode, w, median(rates[mode])})
		}
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].mode < results[j].mode })
	fmt.Printf("\nservice path, %d files (%s), profile basic, medians of %d runs\n", len(files), in, runs)
	fmt.Printf("%-10s %8s %14s %18s %16s %14s\n", "S3", "workers", "instances/s", "per worker /s", "deid run files/s", "service/run")
	for _, r := range results {
		fmt.Printf("%-10s %8d %14.1f %18.1f %16.1f %13.0f%%\n", r.mode, r.workers, r.rate, r.rate/float64(r.workers),
			runRate[r.workers], 100*r.rate/runRate[r.workers])
	}
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
	sort.Float64s(v)
	return v[len(v)/2]
}

// serviceRate uploads the files (untimed) and times one submitted job.
// data is the embedded service's data directory: under the test's own,
// so that it is deleted when the test ends, not when the run does.
func serviceRate(t *testing.T, mode string, workers int, keyFile string, files []string, root, data string) float64 {
	c := serveConfigForTest(t)
	c.data = data
	c.workers, c.keyFile, c.profile, c.logLevel = workers, keyFile, "basic", "error"
	natsURL := "nats://" + c.natsListen
	var srv *service
	if mode == "versitygw" {
		natsURL = startNATSServer(t)
		vgw := startVersityGW(t, "")
		srv = externalService(t, natsURL, vgw, func(x *serveConfig) {
			x.workers, x.keyFile, x.profile, x.logLevel = workers, keyFile, "basic", "error"
		})
	} else {
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
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	id := fmt.Sprintf("bench-%s-%d-%d", mode, workers, time.Now().UnixNano())
	syscall.Sync() // the uploads' and the previous run's writes, as for deid run
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	defer profileTo(t, fmt.Sprintf("%s-%d", mode, workers))()
	start := time.Now()
	defer func() {
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
		t.Logf("CPU %.2f cores (user %v sys %v) over %v", cpu.Seconds()/time.Since(start).Seconds(),
			time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()), time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano()), time.Since(start))
	}()
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
	if code, out, errOut := runDeid(t, "submit", "--bucket", "bench", "--prefix", "wl/", "--job-id", id, "--nats-url", natsURL); code != 0 {
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
	return float64(len(files)) / end.Sub(start).Seconds()
}
