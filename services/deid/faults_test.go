//go:build faults

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/profiles"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

// TestFaults is scripts/faults: the service scaled out on a 3-node NATS
// JetStream cluster (streams with 3 replicas) and a real S3 server
// (versitygw), three `deid serve` processes, and faults during the run:
// the work queue's stream leader and one worker are killed (SIGKILL) and
// restarted, and the S3 server goes away for a few seconds. The inputs
// are ../shared/bench/genworkload.py's CT slices (corpus seeds, planted
// identifiers). At the end every input is checked against the outputs and
// the events.
func TestFaults(t *testing.T) {
	studies, perStudy := envInt("STUDIES", 50), envInt("INSTANCES", 20)
	work := t.TempDir()
	bin := filepath.Join(work, "deid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cl := startCluster(t, work)
	s3 := &restartable{t: t, bin: serverBinary(t, "versitygw"), addr: freePort(t)}
	// Not "s3" and "s3meta": versitygw refuses a sidecar path that merely
	// starts with the root path.
	root, meta := filepath.Join(work, "objects"), filepath.Join(work, "metadata")
	os.MkdirAll(root, 0o755)
	os.MkdirAll(meta, 0o755)
	s3.args = []string{"--access", itAccess, "--secret", itSecret, "--port", s3.addr, "--quiet", "posix", "--sidecar", meta, root}
	s3.start()
	waitTCP(t, s3.addr)

	key := strings.Repeat("5a", 32)
	workers := make([]*restartable, 3)
	for i := range workers {
		data := filepath.Join(work, fmt.Sprintf("worker-%d", i))
		workers[i] = &restartable{t: t, bin: bin, env: []string{"DEID_KEY=" + key}, args: []string{"serve",
			"--data", data, "--nats-url", cl.urls(), "--nats-creds", cl.creds.file(natsauth.Worker), "--replicas", "3", "--s3-endpoint", s3.addr,
			"--s3-access-key", itAccess, "--s3-secret-key", itSecret, "--workers", "2", "--http", freePort(t),
			"--ack-wait", "20s", "--op-timeout", "3s", "--study-settle", "5s", "--log-level", "warn"}}
	}

	mc, err := minio.New(s3.addr, &minio.Options{Creds: credentials.NewStaticV4(itAccess, itSecret, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The first worker creates buckets, streams (R3) and the consumer.
	workers[0].start()
	waitReady(t, workers[0])
	_, js := cl.creds.connect(t, natsauth.Admin, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))

	// Inputs, and what each must become (same key and profile, in-process).
	eng := faultsEngine(t, key)
	want := map[string]string{} // output key -> sha256
	// The inputs: ../shared/bench/genworkload.py, real corpus CT slices
	// with planted identifiers, one study per patient.
	gen := filepath.Join(work, "gen")
	script, _ := filepath.Abs("../../../shared/bench/genworkload.py")
	if out, err := exec.Command("/usr/bin/python3", script, "--out", gen, "--kind", "small-files",
		"--instances", strconv.Itoa(studies*perStudy), "--studies", strconv.Itoa(studies)).CombinedOutput(); err != nil {
		t.Fatalf("genworkload.py (needs python3-pydicom, python3-numpy): %v\n%s", err, out)
	}
	var prefixes []string
	count := map[string]int{} // prefix -> instances
	dirs, err := os.ReadDir(filepath.Join(gen, "dicom"))
	if err != nil || len(dirs) != studies {
		t.Fatalf("genworkload made %d studies, want %d: %v", len(dirs), studies, err)
	}
	total := 0
	for s, d := range dirs {
		prefix := fmt.Sprintf("batch/study-%03d/", s)
		prefixes = append(prefixes, prefix)
		root := filepath.Join(gen, "dicom", d.Name())
		err := filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			k, sum := expectedOutput(t, eng, data)
			want[k] = sum
			rel, _ := filepath.Rel(root, path)
			count[prefix]++
			total++
			_, err = mc.PutObject(ctx, "deid-incoming", prefix+filepath.ToSlash(rel), bytes.NewReader(data),
				int64(len(data)), minio.PutObjectOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != studies*perStudy || len(want) != total {
		t.Fatalf("%d inputs with %d distinct outputs; want %d, one output each", total, len(want), studies*perStudy)
	}

	// Throughput, clean, on the first studies: one worker, then three.
	n1 := min(5, studies/4)
	rate1 := runJobs(t, bin, cl, js, prefixes[:n1], "tp1", count)
	for _, w := range workers[1:] {
		w.start()
	}
	for _, w := range workers[1:] {
		waitReady(t, w)
	}
	rate3 := runJobs(t, bin, cl, js, prefixes[n1:2*n1], "tp3", count)

	// The fault run: every study, with faults.
	start := time.Now()
	var ids []string
	for i, p := range prefixes {
		id := fmt.Sprintf("faults-%03d", i)
		ids = append(ids, id)
		if out, err := exec.Command(bin, "submit", "--bucket", "deid-incoming", "--prefix", p, "--job-id", id,
			"--nats-url", cl.urls(), "--nats-creds", cl.creds.file(natsauth.Submitter)).CombinedOutput(); err != nil {
			t.Fatalf("submit: %v %s", err, out)
		}
	}
	progress := func() int {
		n := 0
		for _, id := range ids {
			if st, err := ingest.JobStatus(ctx, js, id); err == nil {
				n += st.Done + st.Failed
			}
		}
		return n
	}
	var faults []string
	var fmu sync.Mutex
	note := func(s string) { fmu.Lock(); faults = append(faults, s); fmu.Unlock(); t.Log(s) }
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitFor(func() bool { return progress() >= total/5 }, 2*time.Minute)
		leader := cl.leader(js)
		note(fmt.Sprintf("SIGKILL stream leader %s and worker 1 at %d/%d", leader, progress(), total))
		cl.kill(leader)
		workers[1].kill()
		time.Sleep(3 * time.Second)
		cl.restart(leader)
		workers[1].start()
		note("restarted them")
		waitFor(func() bool { return progress() >= total/2 }, 2*time.Minute)
		note(fmt.Sprintf("S3 server down for 4 s at %d/%d", progress(), total))
		s3.kill()
		time.Sleep(4 * time.Second)
		s3.start()
		note("S3 server back")
	}()
	allDone := func() bool {
		for _, id := range ids {
			st, err := ingest.JobStatus(ctx, js, id)
			if err != nil || !st.Complete {
				return false
			}
		}
		return true
	}
	if !waitFor(allDone, 8*time.Minute) {
		t.Errorf("jobs not complete after 8 minutes: %d/%d finished", progress(), total)
	}
	<-done
	elapsed := time.Since(start)
	// The restarted worker must have come back, not given up while the
	// cluster elected new leaders.
	for i, w := range workers {
		if !isReady(w, time.Minute) {
			t.Errorf("worker %d not ready after the fault run:\n%s", i, tail(w.out.String(), 4000))
		}
	}

	// The workers, as the worker role, were never refused anything.
	for i, w := range workers {
		if strings.Contains(w.out.String(), "NATS refused an operation") {
			t.Errorf("worker %d was refused a NATS operation:\n%s", i, tail(w.out.String(), 4000))
		}
	}

	// Check every input against the outputs and the events.
	got := map[string]string{}
	for o := range mc.ListObjects(ctx, "deid-anonymised", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		r, err := mc.GetObject(ctx, "deid-anonymised", o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			t.Fatal(err)
		}
		got[o.Key] = hex.EncodeToString(h.Sum(nil))
	}
	events := map[string]int{}
	for _, m := range streamMessages(t, js, ingest.StreamEvents) {
		if m.Subject() == ingest.SubjectInstanceDone {
			var ev ingest.InstanceDone
			json.Unmarshal(m.Data(), &ev)
			events[ev.Key]++
		}
	}
	lost, dups, partial := 0, 0, 0
	for k, sum := range want {
		switch g, ok := got[k]; {
		case !ok:
			lost++
		case g != sum:
			partial++
		}
		if events[k] > 1 {
			dups++
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			dups++ // an output no input should have
		}
	}
	dlq := uint64(0)
	if st, err := js.Stream(ctx, ingest.StreamDLQ); err == nil {
		if info, err := st.Info(ctx); err == nil {
			dlq = info.State.Msgs
		}
	}
	t.Logf("throughput (clean): 1 worker process %.1f instances/s, 3 worker processes %.1f instances/s (x%.2f); fault run %d instances in %s (%.1f/s)",
		rate1, rate3, rate3/rate1, total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	fmt.Printf("FAULTS: throughput 1 worker=%.1f/s 3 workers=%.1f/s; faults: %s\n", rate1, rate3, strings.Join(faults, "; "))
	fmt.Printf("FAULTS: studies=%d instances=%d lost=%d duplicates=%d partial=%d dlq=%d\n", studies, total, lost, dups, partial, dlq)
	if lost+dups+partial > 0 {
		t.Errorf("lost=%d duplicates=%d partial=%d", lost, dups, partial)
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Logf("missing output %s", k)
			}
		}
		for i, w := range workers {
			t.Logf("worker %d log (last 8 KiB):\n%s", i, tail(w.out.String(), 8<<10))
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func waitFor(cond func() bool, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return cond()
}

func faultsEngine(t *testing.T, hexKey string) *deid.Engine {
	prof, err := (&profiles.Loader{}).Load("research")
	if err != nil {
		t.Fatal(err)
	}
	k, err := pseudonym.ParseKey([]byte(hexKey))
	if err != nil {
		t.Fatal(err)
	}
	// The workers read pixels with the OCR of the machine: so does the
	// reference.
	text := openTextOCR(1, false)
	t.Cleanup(text.Close)
	e, err := deid.New(text.engineConfig(deid.Config{Profile: prof, Key: k}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// expectedOutput is the key and digest the service must produce.
func expectedOutput(t *testing.T, e *deid.Engine, in []byte) (string, string) {
	j, err := e.Plan(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := j.WriteTo(h); err != nil {
		t.Fatal(err)
	}
	return ingest.OutputKey(j.Result()), hex.EncodeToString(h.Sum(nil))
}

// runJobs submits prefixes and returns instances per second until every
// job is complete.
func runJobs(t *testing.T, bin string, cl *natsCluster, js jetstream.JetStream, prefixes []string, tag string, count map[string]int) float64 {
	start := time.Now()
	var ids []string
	for i, p := range prefixes {
		id := fmt.Sprintf("%s-%03d", tag, i)
		ids = append(ids, id)
		if out, err := exec.Command(bin, "submit", "--bucket", "deid-incoming", "--prefix", p, "--job-id", id,
			"--nats-url", cl.urls(), "--nats-creds", cl.creds.file(natsauth.Submitter)).CombinedOutput(); err != nil {
			t.Fatalf("submit: %v %s", err, out)
		}
	}
	ok := waitFor(func() bool {
		for _, id := range ids {
			st, err := ingest.JobStatus(context.Background(), js, id)
			if err != nil || !st.Complete {
				return false
			}
		}
		return true
	}, 5*time.Minute)
	if !ok {
		t.Fatalf("throughput jobs %s not complete", tag)
	}
	n := 0
	for _, p := range prefixes {
		n += count[p]
	}
	return float64(n) / time.Since(start).Seconds()
}

// restartable is a server process that can be killed and started again
// with the same arguments.
type restartable struct {
	t    *testing.T
	bin  string
	args []string
	env  []string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *syncBuffer
}

func (r *restartable) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out == nil {
		r.out = &syncBuffer{} // kept across restarts: a failure report shows the whole story
	}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		r.t.Error(err)
		return
	}
	r.cmd = cmd
	r.t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
}

func (r *restartable) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

func waitReady(t *testing.T, w *restartable) {
	if !isReady(w, time.Minute) {
		t.Fatalf("worker not ready:\n%s", tail(w.out.String(), 2000))
	}
}

// isReady waits up to d for a worker's /readyz to answer 200.
func isReady(w *restartable, d time.Duration) bool {
	addr := ""
	for i, a := range w.args {
		if a == "--http" {
			addr = w.args[i+1]
		}
	}
	return waitFor(func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, d)
}

// natsCluster is three nats-server processes in one JetStream cluster,
// running the shipped accounts configuration (every client and every
// route authenticates).
type natsCluster struct {
	t     *testing.T
	nodes map[string]*restartable // by server name
	cli   []string
	mon   map[string]string
	creds testNATS // the roles' credentials (its url: every node)
}

func startCluster(t *testing.T, work string) *natsCluster {
	bin := serverBinary(t, "nats-server")
	cl := &natsCluster{t: t, nodes: map[string]*restartable{}, mon: map[string]string{}}
	credDir := filepath.Join(work, "nats-credentials")
	cr, _, err := natsauth.Ensure(credDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "nats-auth.conf"), []byte(shippedAuth(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	var routes []string
	type node struct{ name, cli, cluster, mon string }
	var ns []node
	for i := 1; i <= 3; i++ {
		n := node{fmt.Sprintf("n%d", i), freePort(t), freePort(t), freePort(t)}
		ns = append(ns, n)
		routes = append(routes, fmt.Sprintf("%q", "nats-route://route:"+cr.RoutePassword+"@"+n.cluster))
	}
	for _, n := range ns {
		dir := filepath.Join(work, n.name)
		os.MkdirAll(dir, 0o755)
		// max_file: the streams' and buckets' default limits reserve 8 GiB.
		conf := fmt.Sprintf("server_name: %s\nlisten: %s\nhttp: %s\njetstream { store_dir: %q, max_mem: 256MB, max_file: 16GB }\n"+
			"cluster { name: faults, listen: %s, authorization { user: route, password: $%s }, routes: [%s] }\ninclude nats-auth.conf\n",
			n.name, n.cli, n.mon, dir, n.cluster, natsauth.RouteEnv, strings.Join(routes, ", "))
		cf := filepath.Join(work, n.name+".conf")
		if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		r := &restartable{t: t, bin: bin, args: []string{"-c", cf}, env: cr.Env()}
		r.start()
		cl.nodes[n.name] = r
		cl.cli = append(cl.cli, "nats://"+n.cli)
		cl.mon[n.name] = n.mon
	}
	cl.creds = testNATS{url: cl.urls(), creds: credDir}
	for name, mon := range cl.mon {
		if !waitFor(func() bool {
			resp, err := http.Get("http://" + mon + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		}, time.Minute) {
			t.Fatalf("nats node %s not healthy", name)
		}
	}
	return cl
}

func (c *natsCluster) urls() string { return strings.Join(c.cli, ",") }

func (c *natsCluster) leader(js jetstream.JetStream) string {
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := js.Stream(ctx, ingest.StreamIngest)
		if err == nil {
			var info *jetstream.StreamInfo
			info, err = st.Info(ctx)
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				cancel()
				return info.Cluster.Leader
			}
		}
		cancel()
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatal("no stream leader")
	return ""
}

func (c *natsCluster) kill(name string)    { c.nodes[name].kill() }
func (c *natsCluster) restart(name string) { c.nodes[name].start() }
