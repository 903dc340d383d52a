package ingest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/profiles"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/embed"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

// memStore is an in-memory Store whose operations can be made to fail.
type memStore struct {
	mu      sync.Mutex
	objects map[string][]byte            // bucket/key -> bytes
	meta    map[string]map[string]string // bucket/key -> metadata
	// fail, when set, is asked before each operation; a non-nil error is
	// returned instead of doing it.
	fail  func(op, bucket, key string) error
	calls map[string]int // op -> count
	// orphaned: a conditional PUT to this bucket is refused for a key
	// with no object, as versitygw does when killed between writing an
	// object's metadata and its data.
	orphaned string
}

func newMemStore() *memStore {
	return &memStore{objects: map[string][]byte{}, meta: map[string]map[string]string{}, calls: map[string]int{}}
}

func (m *memStore) check(op, bucket, key string) error {
	m.mu.Lock()
	m.calls[op]++
	f := m.fail
	m.mu.Unlock()
	if f != nil {
		return f(op, bucket, key)
	}
	return nil
}

func etag(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func (m *memStore) add(bucket, key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[bucket+"/"+key] = b
}

func (m *memStore) Get(ctx context.Context, bucket, key string, w io.Writer) (string, int64, error) {
	if err := m.check("get", bucket, key); err != nil {
		return "", 0, err
	}
	m.mu.Lock()
	b, ok := m.objects[bucket+"/"+key]
	m.mu.Unlock()
	if !ok {
		return "", 0, ErrNotFound
	}
	n, err := w.Write(b)
	return etag(b), int64(n), err
}

func (m *memStore) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, o PutOptions) error {
	meta, create := o.Meta, o.Create
	if err := m.check("put", bucket, key); err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("put: %d bytes, size %d", len(b), size)
	}
	if sum := sha256.Sum256(b); o.SHA256 != "" && o.SHA256 != hex.EncodeToString(sum[:]) {
		return fmt.Errorf("put: the SHA-256 given is not the bytes'") // as S3 refuses it
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[bucket+"/"+key]; (ok || bucket == m.orphaned) && create {
		return ErrExists
	}
	m.objects[bucket+"/"+key] = b
	m.meta[bucket+"/"+key] = meta
	return nil
}

func (m *memStore) Metadata(ctx context.Context, bucket, key string) (map[string]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	md, ok := m.meta[bucket+"/"+key]
	if !ok {
		return nil, ErrNotFound
	}
	return md, nil
}

func (m *memStore) Copy(ctx context.Context, sb, sk, db, dk string) error {
	if err := m.check("copy", sb, sk); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[sb+"/"+sk]
	if !ok {
		return ErrNotFound
	}
	m.objects[db+"/"+dk] = b
	return nil
}

func (m *memStore) List(ctx context.Context, bucket, prefix string) ([]Object, error) {
	if err := m.check("list", bucket, prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Object
	for k, b := range m.objects {
		if key, ok := strings.CutPrefix(k, bucket+"/"); ok && strings.HasPrefix(key, prefix) {
			out = append(out, Object{Key: key, ETag: etag(b), Size: int64(len(b))})
		}
	}
	if len(out) == 0 && bucket == "missing" {
		return nil, ErrNoBucket
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Key < out[b].Key })
	return out, nil
}

func (m *memStore) keys(bucket string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.objects {
		if key, ok := strings.CutPrefix(k, bucket+"/"); ok {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

func (m *memStore) object(bucket, key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objects[bucket+"/"+key]
}

// rig is a service on an embedded NATS server with a memStore.
type rig struct {
	t      *testing.T
	ns     *embed.NATS
	nc     *nats.Conn
	js     jetstream.JetStream
	store  *memStore
	svc    *Service
	cancel context.CancelFunc
	done   chan error
	events chan *nats.Msg
	eng    *deid.Engine
}

func testEngine(t *testing.T) *deid.Engine {
	t.Helper()
	prof, err := (&profiles.Loader{}).Load("research")
	if err != nil {
		t.Fatal(err)
	}
	key, err := pseudonym.ParseKey([]byte(strings.Repeat("ab", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := deid.New(deid.Config{Profile: prof, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newRig(t *testing.T, store *memStore, top Topology, opts ...func(*Config)) *rig {
	t.Helper()
	return newRigWith(t, store, top, testEngine(t), opts...)
}

// newRigWith is newRig with an engine of the test's own.
func newRigWith(t *testing.T, store *memStore, top Topology, eng *deid.Engine, opts ...func(*Config)) *rig {
	t.Helper()
	ns, err := embed.StartNATS(embed.NATSConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := ns.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	r := &rig{t: t, ns: ns, nc: nc, js: js, store: store, eng: eng, events: make(chan *nats.Msg, 1000)}
	if _, err := nc.ChanSubscribe("deid.>", r.events); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key, _ := pseudonym.ParseKey([]byte(strings.Repeat("ab", 32)))
	index, _ := pseudonym.NewIndexer(key)
	cfg := Config{InBucket: "deid-in", OutBucket: "deid-out", QuarantineBucket: "quarantine",
		SourceBuckets: []string{"archive", "missing"}, Engine: r.eng, Index: index, Workers: 2, TempDir: t.TempDir(), Topology: top, StudySettle: 300 * time.Millisecond,
		OpTimeout: 2 * time.Second, RetryBase: 50 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	r.svc, err = New(ctx, nc, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.start()
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.svc.Run(ctx) }()
	r.t.Cleanup(r.stop)
}

func (r *rig) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

func testTopology() Topology {
	t := DefaultTopology()
	t.AckWait, t.MaxDeliver = 2*time.Second, 3
	return t
}

// await collects messages until pred is satisfied by what was collected.
func (r *rig) await(what string, pred func(map[string][]*nats.Msg) bool) map[string][]*nats.Msg {
	r.t.Helper()
	got := map[string][]*nats.Msg{}
	deadline := time.After(20 * time.Second)
	for !pred(got) {
		select {
		case m := <-r.events:
			got[m.Subject] = append(got[m.Subject], m)
		case <-deadline:
			counts := map[string]int{}
			for s, ms := range got {
				counts[s] = len(ms)
			}
			r.t.Fatalf("waiting for %s: got %v", what, counts)
		}
	}
	return got
}

// quiet collects what arrives in a short while (to show nothing more does).
func (r *rig) quiet(d time.Duration) map[string][]*nats.Msg {
	got := map[string][]*nats.Msg{}
	end := time.After(d)
	for {
		select {
		case m := <-r.events:
			got[m.Subject] = append(got[m.Subject], m)
		case <-end:
			return got
		}
	}
}

func (r *rig) publish(subject string, v any, id string) {
	r.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := r.js.Publish(context.Background(), subject, b, jetstream.WithMsgID(id)); err != nil {
		r.t.Fatal(err)
	}
}

// pendingWork is what is left in the work queue (unacknowledged included).
func (r *rig) pendingWork() uint64 {
	st, err := r.js.Stream(context.Background(), StreamIngest)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.Msgs
}

// stored counts the messages a stream holds on a subject.
func (r *rig) stored(stream, subject string) uint64 {
	r.t.Helper()
	st, err := r.js.Stream(context.Background(), stream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func s3Notification(bucket, key string, data []byte) map[string]any {
	return map[string]any{"Records": []any{map[string]any{"eventName": "s3:ObjectCreated:Put",
		"s3": map[string]any{"bucket": map[string]any{"name": bucket},
			"object": map[string]any{"key": url.QueryEscape(key), "size": len(data), "eTag": etag(data)}}}}}
}

func decode[T any](t *testing.T, m *nats.Msg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("%s: %v", m.Subject, err)
	}
	return v
}

var fakePatient = synth.Patient{Name: "Brzęczyszczykiewicz^Grzegorz", ID: "PID-77123-X", BirthDate: "19610704", Sex: "M",
	Institution: "Hospital of Nowhere", Referring: "Adebayo^Funmilayo", Accession: "ACC99887766", StudyDate: "20250101"}

// A notification becomes one output, one public done event (no input
// key in it), one audit event (with it), the job acknowledged, and the
// study announced once it settles.
func TestNotificationToOutputAndEvents(t *testing.T) {
	store := newMemStore()
	r := newRig(t, store, testTopology())
	insts, err := synth.CTSeries(fakePatient, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range insts {
		key := fmt.Sprintf("Brzęczyszczykiewicz Grzegorz/IM%d.dcm", i)
		store.add("deid-in", key, in.Data)
		r.publish(SubjectObjects, s3Notification("deid-in", key, in.Data), "n"+key)
	}
	got := r.await("done and study events", func(g map[string][]*nats.Msg) bool {
		return len(g[SubjectInstanceDone]) == 2 && len(g[SubjectStudyDone]) == 1
	})
	outs := store.keys("deid-out")
	if len(outs) != 2 {
		t.Fatalf("outputs %v, want 2", outs)
	}
	var study string
	for _, m := range got[SubjectInstanceDone] {
		ev := decode[InstanceDone](t, m)
		b := store.object("deid-out", ev.Key)
		sum := sha256.Sum256(b)
		if b == nil || int64(len(b)) != ev.Size || hex.EncodeToString(sum[:]) != ev.SHA256 || ev.Key != ev.StudyUID+"/"+ev.SeriesUID+"/"+ev.SOPInstanceUID+".dcm" {
			t.Errorf("done event does not describe its output object: %+v", ev)
		}
		if strings.Contains(string(m.Data), "Brz") || strings.Contains(string(b), "Brz") {
			t.Error("a patient's name reached a public event or an output")
		}
		study = ev.StudyUID
	}
	sd := decode[StudyDone](t, got[SubjectStudyDone][0])
	if sd.StudyUID != study || sd.Instances != 2 || sd.Reason != "settled" {
		t.Errorf("study.done %+v, want study %s with 2 instances", sd, study)
	}
	audits := got["deid.audit.instance.done"]
	if len(audits) != 2 || !strings.Contains(string(audits[0].Data), "Brz") {
		t.Errorf("audit events (trusted side) should name the inputs: %d", len(audits))
	}
	if n := r.pendingWork(); n != 0 {
		t.Errorf("%d jobs left in the work queue", n)
	}
	// A repeated notification (same object): processed again, same
	// output, and the events stream (what durable consumers read) does not
	// hold its done event twice.
	r.publish(SubjectObjects, s3Notification("deid-in", "Brzęczyszczykiewicz Grzegorz/IM0.dcm", insts[0].Data), "again")
	r.await("reprocessing", func(g map[string][]*nats.Msg) bool { return len(g["deid.audit.instance.done"]) == 1 })
	if n := r.stored(StreamEvents, SubjectInstanceDone); len(store.keys("deid-out")) != 2 || n != 2 {
		t.Errorf("after a repeated notification: %d outputs, %d done events stored; want 2 and 2", len(store.keys("deid-out")), n)
	}
}

// Transient store failures are retried with backoff; the job succeeds
// once the store is back, with one output and one event.
func TestTransientFailuresAreRetried(t *testing.T) {
	store := newMemStore()
	var mu sync.Mutex
	fails := map[string]int{"get": 2, "put": 2}
	store.fail = func(op, bucket, key string) error {
		mu.Lock()
		defer mu.Unlock()
		if fails[op] > 0 {
			fails[op]--
			return errors.New("connection refused")
		}
		return nil
	}
	top := testTopology()
	top.MaxDeliver = 10
	r := newRig(t, store, top)
	insts, _ := synth.CTSeries(fakePatient, 1)
	store.add("deid-in", "a.dcm", insts[0].Data)
	r.publish(SubjectObjects, s3Notification("deid-in", "a.dcm", insts[0].Data), "a")
	got := r.await("done", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceDone]) == 1 })
	if len(got[SubjectInstanceFailed]) != 0 || len(store.keys("deid-out")) != 1 {
		t.Errorf("after transient failures: %d failed events, outputs %v", len(got[SubjectInstanceFailed]), store.keys("deid-out"))
	}
}

// What cannot be de-identified is quarantined with a value-free reason,
// reported, and not retried.
func TestPermanentFailuresAreQuarantined(t *testing.T) {
	store := newMemStore()
	r := newRig(t, store, testTopology())
	insts, _ := synth.CTSeries(fakePatient, 1)
	truncated := insts[0].Data[:len(insts[0].Data)-100]
	cases := map[string][]byte{"notes.txt": []byte("Patient Brzęczyszczykiewicz, see attached"), "cut.dcm": truncated}
	for k, b := range cases {
		store.add("deid-in", k, b)
		r.publish(SubjectObjects, s3Notification("deid-in", k, b), k)
	}
	got := r.await("failed events", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceFailed]) == 2 })
	kinds := map[string]bool{}
	for _, m := range got[SubjectInstanceFailed] {
		ev := decode[InstanceFailed](t, m)
		kinds[ev.Kind] = true
		if strings.Contains(string(m.Data), "Brz") || strings.Contains(string(m.Data), ".txt") {
			t.Error("failed event names the input")
		}
		if store.object("quarantine", ev.QuarantineID+".dcm") == nil || store.object("quarantine", ev.QuarantineID+".json") == nil {
			t.Errorf("quarantine object or note missing for %s", ev.Kind)
		}
	}
	if !kinds["not-dicom"] || !kinds["truncated"] {
		t.Errorf("failure kinds %v, want not-dicom and truncated", kinds)
	}
	if len(store.keys("deid-out")) != 0 {
		t.Error("an output was written for a failed input")
	}
	if later := r.quiet(500 * time.Millisecond); len(later[SubjectInstanceFailed]) != 0 {
		t.Error("a permanent failure was retried")
	}
	if n := r.pendingWork(); n != 0 {
		t.Errorf("%d jobs left in the work queue", n)
	}
	// The input is never modified or removed.
	if !bytes.Equal(store.object("deid-in", "cut.dcm"), truncated) {
		t.Error("input changed")
	}
}

// A job that keeps failing is dead-lettered after MaxDeliver attempts:
// copied to the DLQ stream, reported, removed from the work queue.
func TestDeadLetter(t *testing.T) {
	store := newMemStore()
	store.fail = func(op, _, _ string) error {
		if op == "put" {
			return errors.New("disk full")
		}
		return nil
	}
	r := newRig(t, store, testTopology())
	insts, _ := synth.CTSeries(fakePatient, 1)
	store.add("deid-in", "a.dcm", insts[0].Data)
	r.publish(SubjectObjects, s3Notification("deid-in", "a.dcm", insts[0].Data), "a")
	got := r.await("dead letter", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceFailed]) == 1 })
	ev := decode[InstanceFailed](t, got[SubjectInstanceFailed][0])
	if ev.Kind != "dead-lettered" {
		t.Errorf("kind %s, want dead-lettered", ev.Kind)
	}
	dlq, _ := r.js.Stream(context.Background(), StreamDLQ)
	info, _ := dlq.Info(context.Background())
	if info.State.Msgs != 1 {
		t.Errorf("DLQ holds %d messages, want 1", info.State.Msgs)
	}
	m, err := dlq.GetMsg(context.Background(), info.State.FirstSeq)
	if err != nil || m.Subject != SubjectDLQPrefix+SubjectObjects {
		t.Errorf("DLQ message %v %v", m, err)
	}
	for i := 0; i < 50 && r.pendingWork() != 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.pendingWork(); n != 0 {
		t.Errorf("%d jobs left in the work queue", n)
	}
	if n := store.calls["put"]; n != 3*4 {
		t.Logf("put attempted %d times", n)
	}
}

// Two inputs of one SOP Instance with different bytes: the first written
// stays, the other is reported as a duplicate and quarantined.
func TestDuplicateInstance(t *testing.T) {
	store := newMemStore()
	r := newRig(t, store, testTopology())
	insts, _ := synth.CTSeries(fakePatient, 1)
	a := insts[0].Data
	b := bytes.Replace(a, []byte("AXIAL 5mm"), []byte("AXIAL 3mm"), 1)
	store.add("deid-in", "a.dcm", a)
	r.publish(SubjectObjects, s3Notification("deid-in", "a.dcm", a), "a")
	r.await("first", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceDone]) == 1 })
	first := store.object("deid-out", store.keys("deid-out")[0])
	store.add("deid-in", "b.dcm", b)
	r.publish(SubjectObjects, s3Notification("deid-in", "b.dcm", b), "b")
	got := r.await("duplicate", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceFailed]) == 1 })
	if ev := decode[InstanceFailed](t, got[SubjectInstanceFailed][0]); ev.Kind != "duplicate" {
		t.Errorf("kind %s, want duplicate", ev.Kind)
	}
	if outs := store.keys("deid-out"); len(outs) != 1 || !bytes.Equal(store.object("deid-out", outs[0]), first) {
		t.Error("the first output was replaced")
	}
}

// A store that lost a write halfway can refuse a conditional PUT for a
// key it has no object under: the output is written anyway, once, not
// retried until the job is dead-lettered.
func TestOrphanedKeyIsWritten(t *testing.T) {
	store := newMemStore()
	store.orphaned = "deid-out"
	r := newRig(t, store, testTopology())
	insts, _ := synth.CTSeries(fakePatient, 1)
	store.add("deid-in", "a.dcm", insts[0].Data)
	r.publish(SubjectObjects, s3Notification("deid-in", "a.dcm", insts[0].Data), "a")
	got := r.await("done", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceDone]) == 1 })
	ev := decode[InstanceDone](t, got[SubjectInstanceDone][0])
	outs := store.keys("deid-out")
	if len(outs) != 1 || outs[0] != ev.Key {
		t.Fatalf("outputs %v, want the event's %s", outs, ev.Key)
	}
	if sum := sha256.Sum256(store.object("deid-out", ev.Key)); hex.EncodeToString(sum[:]) != ev.SHA256 {
		t.Error("the output is not the bytes the event describes")
	}
	if len(got[SubjectInstanceFailed]) != 0 {
		t.Errorf("%d failure events", len(got[SubjectInstanceFailed]))
	}
}

// A submitted prefix is expanded into one job per object; job.done and
// study.done come when every object is finished; resubmitting does not
// count anything twice.
func TestSubmittedJob(t *testing.T) {
	store := newMemStore()
	r := newRig(t, store, testTopology())
	insts, _ := synth.CTSeries(fakePatient, 3)
	other := fakePatient
	other.ID = "PID-0000-Y"
	insts2, _ := synth.CTSeries(other, 1)
	for i, in := range append(insts, insts2...) {
		store.add("archive", fmt.Sprintf("batch/%d.dcm", i), in.Data)
	}
	store.add("archive", "batch/readme.txt", []byte("hello"))
	store.add("archive", "elsewhere/x.dcm", insts[0].Data)
	r.publish(SubjectStudyJobs, StudyJob{JobID: "job-1", Bucket: "archive", Prefix: "batch/"}, "study/job-1")
	got := r.await("job.done", func(g map[string][]*nats.Msg) bool { return len(g[SubjectJobDone]) == 1 })
	jd := decode[JobDone](t, got[SubjectJobDone][0])
	if jd.Instances != 5 || jd.Done != 4 || jd.Failed != 1 || len(jd.Studies) != 2 || jd.Error != "" {
		t.Errorf("job.done %+v, want 5 objects, 4 done, 1 failed, 2 studies", jd)
	}
	if len(got[SubjectStudyDone]) != 2 {
		t.Errorf("%d study.done events, want 2", len(got[SubjectStudyDone]))
	}
	n := 0
	for _, m := range got[SubjectStudyDone] {
		n += decode[StudyDone](t, m).Instances
	}
	if n != 4 {
		t.Errorf("study.done events count %d instances, want 4", n)
	}
	// The record says complete once the announcements are out.
	var st *JobState
	var err error
	for i := 0; i < 100; i++ {
		if st, err = JobStatus(context.Background(), r.js, "job-1"); err == nil && st.Complete {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || !st.Complete || st.Done != 4 || st.Failed != 1 {
		t.Errorf("job status %+v (%v)", st, err)
	}
	// The same job again (a client retrying after the dedup window).
	r.publish(SubjectStudyJobs, StudyJob{JobID: "job-1", Bucket: "archive", Prefix: "batch/"}, "study/job-1-again")
	later := r.quiet(time.Second)
	if len(later[SubjectJobDone])+len(later[SubjectStudyDone])+len(later[SubjectInstanceDone]) != 0 {
		t.Errorf("resubmission announced again: %d job, %d study, %d instance events",
			len(later[SubjectJobDone]), len(later[SubjectStudyDone]), len(later[SubjectInstanceDone]))
	}
	if st, _ := JobStatus(context.Background(), r.js, "job-1"); st.Done != 4 || st.Failed != 1 {
		t.Errorf("resubmission recounted: %+v", st)
	}
	// A bucket that does not exist, and an output bucket.
	r.publish(SubjectStudyJobs, StudyJob{JobID: "job-2", Bucket: "missing", Prefix: ""}, "study/job-2")
	r.publish(SubjectStudyJobs, StudyJob{JobID: "job-3", Bucket: "deid-out", Prefix: ""}, "study/job-3")
	got = r.await("refused jobs", func(g map[string][]*nats.Msg) bool { return len(g[SubjectJobDone]) == 2 })
	for _, m := range got[SubjectJobDone] {
		if jd := decode[JobDone](t, m); jd.Error == "" || jd.Done != 0 {
			t.Errorf("refused job reported as %+v", jd)
		}
	}
}

// A worker that died between recording an input as finished and counting
// it leaves the job one short; the sweeper recounts and completes it.
func TestLostCountIsReconciled(t *testing.T) {
	store := newMemStore()
	r := newRig(t, store, testTopology())
	r.stop()
	insts, _ := synth.CTSeries(fakePatient, 2)
	for i, in := range insts {
		store.add("archive", fmt.Sprintf("p/%d.dcm", i), in.Data)
	}
	ctx := context.Background()
	if err := r.svc.createJob(ctx, StudyJob{JobID: "job-9", Bucket: "archive", Prefix: "p/"}, 2); err != nil {
		t.Fatal(err)
	}
	// The mark of one input exists, its count was lost.
	input := shortHash("archive/p/0.dcm/" + etag(insts[0].Data))
	mb, _ := json.Marshal(Mark{Study: "2.25.1"})
	if _, err := r.svc.jobs.Create(ctx, markKey("job-9", input), mb); err != nil {
		t.Fatal(err)
	}
	// Make the record look idle.
	r.svc.updateJob(ctx, "job-9", func(st *JobState) bool { st.Updated = time.Now().Add(-time.Hour); return true })
	r.svc.cfg.StudySettle = 10 * time.Millisecond
	r.start()
	r.publish(SubjectInstanceJobs, InstanceJob{JobID: "job-9", Bucket: "archive", Key: "p/1.dcm", ETag: etag(insts[1].Data)}, "i1")
	got := r.await("job.done", func(g map[string][]*nats.Msg) bool { return len(g[SubjectJobDone]) == 1 })
	if jd := decode[JobDone](t, got[SubjectJobDone][0]); jd.Done != 2 {
		t.Errorf("job.done %+v, want 2 done", jd)
	}
}

// Stopping lets the job in progress finish and acknowledges it; nothing
// is left half done and nothing is redelivered.
// A worker whose job waits on the store (its output being written) takes
// on its next job meanwhile; no job is acknowledged before its output is
// stored and announced, and once the store answers every job completes.
func TestWorkerOverlapsJobs(t *testing.T) {
	store := newMemStore()
	release := make(chan struct{})
	var mu sync.Mutex
	read := map[string]bool{}
	store.fail = func(op, bucket, key string) error {
		switch {
		case op == "get":
			mu.Lock()
			read[key] = true
			mu.Unlock()
		case op == "put" && bucket == "deid-out":
			<-release
		}
		return nil
	}
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()                       // before the rig stops (cleanups run after)
	r := newRig(t, store, testTopology()) // 2 workers
	insts, _ := synth.CTSeries(fakePatient, 3)
	names := []string{"a.dcm", "b.dcm", "c.dcm"}
	for i, name := range names {
		store.add("deid-in", name, insts[i].Data)
		r.publish(SubjectObjects, s3Notification("deid-in", name, insts[i].Data), name)
	}
	// Two jobs wait on the store, one per worker; the third is read all
	// the same, by a worker that is not idle.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(read)
		mu.Unlock()
		if n == len(names) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inputs read while two outputs wait on the store: %d of %d", n, len(names))
		}
	}
	if got := store.keys("deid-out"); len(got) != 0 {
		t.Fatalf("outputs stored while the store blocks: %v", got)
	}
	if n := r.pendingWork(); n != uint64(len(names)) {
		t.Fatalf("%d of %d jobs left in the work queue before any output was stored", n, len(names))
	}
	unblock()
	r.await("every instance done", func(got map[string][]*nats.Msg) bool {
		return len(got[SubjectInstanceDone]) == len(names)
	})
	if got := store.keys("deid-out"); len(got) != len(names) {
		t.Fatalf("outputs %v", got)
	}
	for i := 0; i < 50 && r.pendingWork() != 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.pendingWork(); n != 0 {
		t.Errorf("%d jobs left unacknowledged", n)
	}
}

func TestGracefulStop(t *testing.T) {
	store := newMemStore()
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	store.fail = func(op, _, _ string) error {
		if op == "get" {
			once.Do(func() { close(started) })
			<-release
		}
		return nil
	}
	r := newRig(t, store, testTopology())
	insts, _ := synth.CTSeries(fakePatient, 1)
	store.add("deid-in", "a.dcm", insts[0].Data)
	r.publish(SubjectObjects, s3Notification("deid-in", "a.dcm", insts[0].Data), "a")
	<-started
	r.cancel()
	time.Sleep(100 * time.Millisecond) // Run is now draining, the job in flight
	close(release)
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	if len(store.keys("deid-out")) != 1 {
		t.Errorf("the job in flight at stop was not finished: outputs %v", store.keys("deid-out"))
	}
	// The ack is sent without waiting for the server: give it a moment.
	for i := 0; i < 50 && r.pendingWork() != 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.pendingWork(); n != 0 {
		t.Errorf("%d jobs left unacknowledged", n)
	}
}
