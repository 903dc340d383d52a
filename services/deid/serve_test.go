package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/embed"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

// syncBuffer collects the service's log lines from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveConfigForTest is `deid serve` with its defaults, on free loopback
// ports, in a temporary data directory.
func serveConfigForTest(t *testing.T) serveConfig {
	t.Helper()
	var c serveConfig
	serveFlags(&c, flag.NewFlagSet("", flag.ContinueOnError))
	c.data = t.TempDir()
	c.natsListen, c.s3Listen, c.httpAddr = freePort(t), freePort(t), "127.0.0.1:0"
	c.studySettle, c.workers, c.logLevel = time.Second, 2, "debug"
	// The other buckets tests submit batches from.
	c.sourceBuckets = "archive,bench,nobucket"
	return c
}

// startForTest starts the service in-process and stops it at the end.
// The service's own NATS connections must never be refused anything:
// their roles' permissions are what the service needs (a refusal is
// logged as "NATS refused an operation" and fails the test).
func startForTest(t *testing.T, c serveConfig, logs io.Writer) *service {
	t.Helper()
	own := &syncBuffer{}
	srv, err := startService(context.Background(), c, io.Discard, io.MultiWriter(logs, own))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		srv.Stop()
		for _, l := range strings.Split(own.String(), "\n") {
			if strings.Contains(l, "NATS refused an operation") {
				t.Errorf("the service's permissions are short of what it does: %s", l)
			}
		}
	})
	return srv
}

// natsAs connects to the service's NATS as a role, with the credentials
// the embedded server generated (or the test's external server's).
func (s *service) natsAs(t testing.TB, r natsauth.Role, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connectRole(t, s.natsURL, s.natsCredDir, r, opts...)
}

func (s *service) s3Client(t *testing.T) *minio.Client {
	t.Helper()
	mc, err := minio.New(s.s3Addr, &minio.Options{Creds: credentials.NewStaticV4(s.creds[0], s.creds[1], "")})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// identifyingStrings are input values that must not appear anywhere
// public: names (and their parts), IDs, birth dates, accession numbers,
// institution names and addresses.
func identifyingStrings(data []byte) []string {
	f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.Limits{})
	if err != nil {
		return nil
	}
	vals := map[string]bool{}
	identifyingValues(f.Elements, vals)
	var out []string
	for v := range vals {
		out = append(out, v)
	}
	return out
}

// placeholders stand in identifying attributes of test files without
// identifying anyone, and are words of the service's own vocabulary.
var placeholders = map[string]bool{"anonymous": true, "anonymized": true, "unknown": true, "removed": true}

func identifyingValues(els []*dicomraw.Element, out map[string]bool) {
	tags := map[uint32]bool{0x00100010: true, 0x00100020: true, 0x00100030: true, 0x00080050: true,
		0x00080080: true, 0x00080081: true, 0x00080090: true, 0x00101000: true, 0x00101040: true, 0x00321032: true}
	for _, e := range els {
		for _, it := range e.Items {
			identifyingValues(it.Elements, out)
		}
		if !e.Loaded || !tags[uint32(e.Tag)] {
			continue
		}
		for _, part := range strings.FieldsFunc(strings.TrimRight(string(e.Value), " \x00"), func(r rune) bool { return r == '\\' || r == '^' || r == '=' }) {
			part = strings.TrimSpace(part)
			if len(part) >= 6 && !placeholders[strings.ToLower(part)] {
				out[part] = true
			}
		}
	}
}

// containsValue finds v in s; a number only where no digit or decimal
// point continues it (a Patient ID 999999 is not in 0.9999991).
func containsValue(s, v string) bool {
	numeric := strings.Trim(v, "0123456789") == ""
	for i := 0; ; {
		j := strings.Index(s[i:], v)
		if j < 0 {
			return false
		}
		j += i
		if !numeric {
			return true
		}
		before, after := byte(' '), byte(' ')
		if j > 0 {
			before = s[j-1]
		}
		if end := j + len(v); end < len(s) {
			after = s[end]
		}
		if !isNumberByte(before) && !isNumberByte(after) {
			return true
		}
		i = j + 1
	}
}

func isNumberByte(c byte) bool { return c >= '0' && c <= '9' || c == '.' }

// streamMessages reads every message a stream holds.
func streamMessages(t *testing.T, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Msgs)
	if n == 0 {
		return nil
	}
	// Read in order from where the last read ended; on a cluster that has
	// just lost and regained a node the first consumer can stay silent
	// while its stream's leader catches up, so a read without progress is
	// retried with a new consumer a few times before failing.
	var out []jetstream.Msg
	var last uint64
	for idle := 0; len(out) < n; {
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			out = append(out, m)
			if md, err := m.Metadata(); err == nil {
				last = md.Sequence.Stream
			}
			got++
		}
		if got > 0 {
			idle = 0
		} else if idle++; idle == 6 {
			t.Fatalf("read %d of %d messages of %s", len(out), n, stream)
		}
	}
	return out
}

// awaitInputs waits until every input key has its audit record (done or
// failed), whatever order and duplicates core NATS delivers them in.
// awaitDrained waits until the work queue has no job waiting or in
// flight: every job's writes (output, events, audit) are then done.
func awaitDrained(t *testing.T, js jetstream.JetStream, limit time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for {
		cons, err := js.Consumer(ctx, ingest.StreamIngest, ingest.ConsumerName)
		if err == nil {
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("work queue not drained in %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func awaitInputs(t *testing.T, nc *nats.Conn, audits <-chan *nats.Msg, keys map[string]bool, limit time.Duration) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.After(limit)
	for len(seen) < len(keys) {
		select {
		case m := <-audits:
			var a ingest.Audit
			if json.Unmarshal(m.Data, &a) == nil && keys[a.InputKey] && (a.Event == "instance.done" || a.Event == "instance.failed") {
				seen[a.InputKey] = true
			}
		case <-deadline:
			js, _ := jetstream.New(nc)
			t.Fatalf("%d of %d inputs finished in %s; %s", len(seen), len(keys), limit, workState(js))
		}
	}
}

// auditFeed subscribes to the audit records, and makes sure the server has
// the subscription before the caller uploads anything: a record published
// before it would be missed.
func auditFeed(t *testing.T, nc *nats.Conn) <-chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 8192)
	if _, err := nc.ChanSubscribe("deid.audit.>", ch); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// workState tells where the work stands, for a test that timed out
// waiting: the work queue's consumer and the audit stream.
func workState(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	if c, err := js.Consumer(ctx, ingest.StreamIngest, ingest.ConsumerName); err == nil {
		if i, err := c.Info(ctx); err == nil {
			fmt.Fprintf(&b, "work queue: %d pending, %d unacknowledged, %d redelivered, %d delivered; ",
				i.NumPending, i.NumAckPending, i.NumRedelivered, i.Delivered.Consumer)
		}
	}
	if st, err := js.Stream(ctx, ingest.StreamAudit); err == nil {
		if i, err := st.Info(ctx, jetstream.WithSubjectFilter("deid.audit.>")); err == nil {
			fmt.Fprintf(&b, "audit stream: %d records", i.State.Msgs)
			for subj, n := range i.State.Subjects {
				fmt.Fprintf(&b, ", %s %d", subj, n)
			}
		}
	}
	return b.String()
}

// TestServeCorpusEndToEnd is the README's promise: start the service with
// no servers installed, upload the shared corpus into the input bucket
// with an S3 client (object keys carrying patient names, as hospital
// exports do), and every valid file appears in the anonymised bucket,
// every rejected one in quarantine, the events match the objects one to
// one, the outputs are the bytes `deid run` writes, and nothing public
// (logs, events, metrics, keys, metadata) holds an identifying value.
func TestServeCorpusEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeKey(t, dir, keyA)
	c := serveConfigForTest(t)
	// The comparison with deid run needs both to finish every file: a
	// time limit hit under load in one and not the other is the load's
	// doing (reading a 96-frame cine's pixels takes a while on two cores).
	c.maxTime = 10 * time.Minute
	c.keyFile = keyFile
	logs := &syncBuffer{}
	srv := startForTest(t, c, logs)
	mc := srv.s3Client(t)
	ctx := context.Background()

	nc, _ := srv.natsAs(t, natsauth.Admin, nats.Name("test"))
	audits := auditFeed(t, nc)
	t.Cleanup(func() {
		if t.Failed() { // the service's logs name no identifying value
			t.Logf("service log (tail):\n%s", tail(logs.String(), 4000))
		}
	})

	corpus := corpusDir(t)
	names, _ := filepath.Glob(filepath.Join(corpus, "*"))
	var needles []string
	keys := map[string]bool{}
	keyOf := map[string]string{} // corpus file -> object key
	for _, p := range names {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ids := identifyingStrings(data)
		needles = append(needles, ids...)
		var words []string
		for _, id := range ids {
			// Keys as exports name them: no control characters (ISO 2022
			// escapes) or backslashes (multi-valued attributes), which
			// the endpoint and the workers refuse in keys.
			if utf8.ValidString(id) && !strings.ContainsFunc(id, unicode.IsControl) && !strings.Contains(id, `\`) {
				words = append(words, id)
			}
		}
		key := "export/" + strings.Join(words, " ") + "/" + filepath.Base(p)
		if _, err := mc.PutObject(ctx, c.inBucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("upload: %v", err)
		}
		keys[key], keyOf[filepath.Base(p)] = true, key
	}
	// A bound on liveness, not a speed test: the pure-Go build reads the
	// corpus's screens through the tesseract command (a process and a
	// model load a read), 96 frames of XA among them.
	awaitInputs(t, nc, audits, keys, 8*time.Minute)

	js, _ := jetstream.New(nc)
	// The audit record can arrive before the event written beside it; a
	// job is acknowledged only once both are stored.
	awaitDrained(t, js, time.Minute)
	events := streamMessages(t, js, ingest.StreamEvents)
	outputs := map[string][]byte{}
	for o := range mc.ListObjects(ctx, c.outBucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		obj, _ := mc.GetObject(ctx, c.outBucket, o.Key, minio.GetObjectOptions{})
		b, err := io.ReadAll(obj)
		if err != nil {
			t.Fatal(err)
		}
		outputs[o.Key] = b
	}
	quarantined := map[string]bool{}
	for o := range mc.ListObjects(ctx, c.quarantine, minio.ListObjectsOptions{Recursive: true}) {
		quarantined[o.Key] = true
	}

	// Events and objects, one to one.
	var public []string
	doneKeys := map[string]bool{}
	failed := 0
	for _, m := range events {
		public = append(public, string(m.Data()))
		switch m.Subject() {
		case ingest.SubjectInstanceDone:
			var ev ingest.InstanceDone
			json.Unmarshal(m.Data(), &ev)
			if doneKeys[ev.Key] {
				t.Errorf("two done events for one output")
			}
			doneKeys[ev.Key] = true
			sum := sha256.Sum256(outputs[ev.Key])
			if outputs[ev.Key] == nil || hex.EncodeToString(sum[:]) != ev.SHA256 || int64(len(outputs[ev.Key])) != ev.Size {
				t.Errorf("done event does not match its object")
			}
		case ingest.SubjectInstanceFailed:
			var ev ingest.InstanceFailed
			json.Unmarshal(m.Data(), &ev)
			failed++
			if !quarantined[ev.QuarantineID+".dcm"] || !quarantined[ev.QuarantineID+".json"] {
				t.Errorf("failed event (%s) without its quarantine copy and note", ev.Kind)
			}
		}
	}
	if len(doneKeys) != len(outputs) {
		t.Errorf("%d done events, %d output objects", len(doneKeys), len(outputs))
	}
	if 2*failed != len(quarantined) {
		t.Errorf("%d failed events, %d quarantine objects (a copy and a note each)", failed, len(quarantined))
	}

	// The same bytes as deid run, for every instance that had one input.
	runOut, report := filepath.Join(dir, "run-out"), filepath.Join(dir, "report.json")
	if code, _, errOut := runDeid(t, "run", "--in", corpus, "--out", runOut, "--profile", "research", "--key-file", keyFile, "--report", report, "--no-progress", "--max-time", "10m"); code > 1 {
		t.Fatalf("deid run: %d %s", code, errOut)
	}
	var rep struct {
		Files []struct{ Input, Status, Output string }
	}
	raw, _ := os.ReadFile(report)
	json.Unmarshal(raw, &rep)
	shared := map[string]int{}
	for _, f := range rep.Files {
		if f.Status == "written" || f.Status == "duplicate" {
			shared[f.Output]++
		}
	}
	same, written := 0, 0
	for _, f := range rep.Files {
		if f.Status != "written" {
			continue
		}
		written++
		want, err := os.ReadFile(filepath.Join(runOut, f.Output))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := outputs[filepath.ToSlash(f.Output)]
		switch {
		case !ok:
			t.Errorf("deid run wrote %s, the service did not", f.Output)
		case bytes.Equal(got, want):
			same++
		case shared[f.Output] == 1:
			t.Errorf("the service's output for %s differs from deid run's", f.Output)
		}
	}
	if len(outputs) != written {
		t.Errorf("the service wrote %d instances, deid run %d", len(outputs), written)
	}

	// Nothing identifying anywhere public.
	resp, err := http.Get("http://" + srv.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	public = append(public, string(metrics), logs.String())
	for k := range outputs {
		public = append(public, k)
		st, err := mc.StatObject(ctx, c.outBucket, k, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for mk, mv := range st.UserMetadata {
			public = append(public, mk+"="+mv)
		}
	}
	all := strings.ToLower(strings.Join(public, "\n"))
	leaks := 0
	for _, v := range needles {
		if containsValue(all, strings.ToLower(v)) {
			leaks++
			t.Errorf("an identifying value of length %d appears in logs, events, metrics, keys or metadata", len(v))
		}
	}
	if !strings.Contains(string(metrics), "deid_instances_total{outcome=\"failed\"}") || !strings.Contains(string(metrics), "deid_consumer_pending") {
		t.Error("metrics lack the instance and lag series")
	}
	if resp, err := http.Get("http://" + srv.httpAddr + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz: %v", err)
	}
	t.Logf("corpus through the service: %d uploaded, %d written (%d byte-identical to deid run), %d failed and quarantined; %d identifying values looked for, %d found",
		len(keys), len(outputs), same, failed, len(needles), leaks)
}

// TestServeSubmitWait: a batch over existing data, through the CLI a
// hospital job would call.
func TestServeSubmitWait(t *testing.T) {
	c := serveConfigForTest(t)
	srv := startForTest(t, c, io.Discard)
	mc := srv.s3Client(t)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "archive", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, f := range []string{"ct_small_explicit_le.dcm", "rtplan_small.dcm", "sc_rgb_jpeg_baseline.dcm"} {
		data, err := os.ReadFile(filepath.Join(corpusDir(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mc.PutObject(ctx, "archive", fmt.Sprintf("2024/Doe John/%d.dcm", i), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nats := "nats://" + c.natsListen
	creds := natsauth.File(srv.natsCredDir, natsauth.Submitter)
	code, out, errOut := runDeid(t, "submit", "--bucket", "archive", "--prefix", "2024/", "--nats-url", nats, "--nats-creds", creds, "--wait")
	if code != 0 || !strings.Contains(out, "3 of 3 objects finished (3 written, 0 failed)") || !strings.Contains(out, "complete") {
		t.Fatalf("submit --wait: %d\n%s%s", code, out, errOut)
	}
	n := 0
	for range mc.ListObjects(ctx, c.outBucket, minio.ListObjectsOptions{Recursive: true}) {
		n++
	}
	if n != 3 {
		t.Errorf("%d outputs, want 3", n)
	}
	// Again: a duplicate, nothing runs twice.
	code, out, _ = runDeid(t, "submit", "--bucket", "archive", "--prefix", "2024/", "--nats-url", nats, "--data", c.data)
	if code != 0 || !strings.Contains(out, "already submitted") {
		t.Errorf("resubmit: %d %s", code, out)
	}
	// A prefix with a file that is not DICOM: exit 1, the failure said.
	mc.PutObject(ctx, "archive", "2025/notes.txt", strings.NewReader("Doe John called"), 15, minio.PutObjectOptions{})
	code, out, _ = runDeid(t, "submit", "--bucket", "archive", "--prefix", "2025/", "--nats-url", nats, "--nats-creds", creds, "--wait")
	if code != 1 || !strings.Contains(out, "1 objects failed") {
		t.Errorf("submit --wait of a failing object: %d %s", code, out)
	}
	// No such bucket.
	code, out, _ = runDeid(t, "submit", "--bucket", "nobucket", "--nats-url", nats, "--nats-creds", creds, "--wait")
	if code != 1 || !strings.Contains(out, "could not run: no such bucket") {
		t.Errorf("submit --wait of a missing bucket: %d %s", code, out)
	}
	if code, _, _ := runDeid(t, "submit", "--bucket", "archive", "--job-id", "bad id!", "--nats-url", nats); code != exitUsage {
		t.Errorf("bad job id: exit %d", code)
	}
}

// TestServeRestartLosesNothing: stopping the service while it works and
// starting it again on the same data directory finishes every input, each
// written once.
func TestServeRestartLosesNothing(t *testing.T) {
	c := serveConfigForTest(t)
	srv, err := startService(context.Background(), c, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mc := srv.s3Client(t)
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join(corpusDir(t), "ct_small_explicit_le.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := 0; i < n; i++ {
		// Distinct instances: a new SOP Instance UID in place of the old one.
		b := bytes.Replace(data, []byte("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"),
			[]byte(fmt.Sprintf("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.%05d", i)), -1)
		if _, err := mc.PutObject(ctx, c.inBucket, fmt.Sprintf("s/%02d.dcm", i), bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	srv = startForTest(t, c, io.Discard)
	mc = srv.s3Client(t)
	count := func() int {
		k := 0
		for range mc.ListObjects(ctx, c.outBucket, minio.ListObjectsOptions{Recursive: true}) {
			k++
		}
		return k
	}
	deadline := time.Now().Add(time.Minute)
	for count() < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := count(); got != n {
		t.Fatalf("%d of %d inputs written after a restart", got, n)
	}
	_, js := srv.natsAs(t, natsauth.Admin)
	done := map[string]bool{}
	for _, m := range streamMessages(t, js, ingest.StreamEvents) {
		if m.Subject() == ingest.SubjectInstanceDone {
			var ev ingest.InstanceDone
			json.Unmarshal(m.Data(), &ev)
			if done[ev.Key] {
				t.Error("an output announced twice")
			}
			done[ev.Key] = true
		}
	}
	if len(done) != n {
		t.Errorf("%d done events for %d outputs", len(done), n)
	}
}

// TestServeStartupErrors: what a misconfigured start says.
func TestServeStartupErrors(t *testing.T) {
	closed := freePort(t)
	// A NATS server without JetStream: after the startup window (a node
	// still starting looks the same), told so.
	plain, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go plain.Start()
	defer plain.Shutdown()
	if !plain.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server without JetStream did not start")
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"NATS unreachable", []string{"--nats-url", "nats://user:pw@" + closed}, "cannot reach NATS at nats://" + closed},
		{"JetStream not enabled", []string{"--nats-url", plain.ClientURL(), "--startup-timeout", "2s"}, "NATS at " + plain.ClientURL() + " has no JetStream"},
		{"S3 unreachable", []string{"--s3-endpoint", closed, "--s3-access-key", "a", "--s3-secret-key", "b", "--startup-timeout", "1s"}, "cannot use S3 at " + closed},
		{"S3 without credentials", []string{"--s3-endpoint", closed}, "--s3-endpoint needs --s3-access-key"},
		{"missing key file", []string{"--key-file", "/nonexistent/project.key"}, "project key"},
		{"unknown profile", []string{"--profile", "no-such-profile"}, "no-such-profile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", t.TempDir(), "--nats-listen", freePort(t), "--s3-listen", freePort(t),
				"--http", "127.0.0.1:0"}, c.args...)
			code, _, errOut := runDeid(t, args...)
			if code == 0 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q; want an error saying %q", code, errOut, c.want)
			}
			if strings.Contains(errOut, "pw@") {
				t.Error("the NATS password was printed")
			}
		})
	}
}

// A worker started while its S3 server restarts waits for it within
// --startup-timeout, saying so in its log, and then runs: it does not
// exit because the server was down for a moment.
func TestServeWaitsForS3AtStartup(t *testing.T) {
	addr := freePort(t) // nothing listens there yet
	c := serveConfigForTest(t)
	c.s3Endpoint, c.s3Access, c.s3Secret, c.startupTimeout = addr, "deidtest", "secret-0123456789", time.Minute
	logs := &syncBuffer{}
	type started struct {
		srv *service
		err error
	}
	done := make(chan started, 1)
	go func() {
		srv, err := startService(context.Background(), c, io.Discard, logs)
		done <- started{srv, err}
	}()
	for !strings.Contains(logs.String(), "S3 does not answer yet") {
		select {
		case r := <-done:
			t.Fatalf("start ended before S3 was up: %v", r.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s3, err := embed.StartS3(embed.S3Config{Dir: t.TempDir(), Listen: addr, AccessKey: c.s3Access, SecretKey: c.s3Secret})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("start after S3 came up: %v", r.err)
	}
	defer r.srv.Stop()
	r.srv.creds = [2]string{c.s3Access, c.s3Secret}
	mc := r.srv.s3Client(t)
	for _, b := range []string{c.inBucket, c.outBucket, c.quarantine} {
		if ok, err := mc.BucketExists(context.Background(), b); err != nil || !ok {
			t.Errorf("bucket %s after the wait: %v %v", b, ok, err)
		}
	}
}

// TestDemo: the newcomer's first command shows the main job end to end.
func TestDemo(t *testing.T) {
	code, out, errOut := runDeid(t, "demo", "--instances", "3")
	if code != 0 {
		t.Fatalf("demo: %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"Patient's Name", "Kowalska^Zofia^Maria", "ANON", "pixel data identical: true",
		"deid.events.instance.done      3", "deid.events.study.done         1", "s3://deid-anonymised/"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The output column and the keys show no input identifier.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "   2.25.") && strings.Contains(line, "Kowalska") {
			t.Errorf("an output key names the patient: %s", line)
		}
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(line, "Patient ID") && strings.Contains(f[len(f)-1], "4471") {
			t.Errorf("the output Patient ID is the input's: %s", line)
		}
	}
}
