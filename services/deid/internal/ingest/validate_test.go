package ingest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

// Whatever a job names, a worker reads only the configured sources: not
// a bucket spelled to reach the store's own folders, not the output or
// quarantine bucket, not a bucket the operator did not name, and not a
// key with a . or .. segment. Nothing is read, copied or written for such
// a job; it is reported in fixed words and leaves the work queue.
func TestJobsReadOnlyConfiguredSources(t *testing.T) {
	store := newMemStore()
	var mu sync.Mutex
	touched := map[string]bool{}
	store.fail = func(op, bucket, key string) error {
		mu.Lock()
		touched[bucket] = true
		mu.Unlock()
		return nil
	}
	r := newRig(t, store, testTopology())
	insts, _ := synth.CTSeries(fakePatient, 1)
	for _, b := range []string{"quarantine", "deid-out", "secrets", "."} {
		store.add(b, "deid-quarantine/0555e771840edc420aae439d.dcm", insts[0].Data)
	}
	store.add("deid-in", "a/../b.dcm", insts[0].Data)

	badBuckets := []string{".", "..", "./deid-in", "deid-in/../quarantine", "Quarantine", "quarantine", "deid-out", "secrets", ""}
	for i, b := range badBuckets {
		r.publish(SubjectInstanceJobs, InstanceJob{JobID: "", Bucket: b, Key: "deid-quarantine/0555e771840edc420aae439d.dcm"}, "forged-"+string(rune('a'+i)))
		r.publish(SubjectStudyJobs, StudyJob{JobID: "job-bad-" + string(rune('a'+i)), Bucket: b, Prefix: ""}, "study-bad-"+string(rune('a'+i)))
	}
	for i, k := range []string{"a/../b.dcm", "../quarantine/x.dcm", "/etc/shadow", "a/./b.dcm"} {
		r.publish(SubjectInstanceJobs, InstanceJob{Bucket: "deid-in", Key: k}, "forged-key-"+string(rune('a'+i)))
	}
	r.publish(SubjectStudyJobs, StudyJob{JobID: "job-bad-prefix", Bucket: "deid-in", Prefix: "../"}, "study-bad-prefix")
	r.publish(SubjectObjects, s3Notification("deid-in", "a/../b.dcm", insts[0].Data), "notified-dotdot")

	want := len(badBuckets) + 4 + 1 // instance jobs and the notification
	got := r.await("refusals", func(g map[string][]*nats.Msg) bool {
		return len(g[SubjectInstanceFailed]) >= want && len(g[SubjectJobDone]) >= len(badBuckets)+1
	})
	for _, m := range got[SubjectInstanceFailed] {
		ev := decode[InstanceFailed](t, m)
		if ev.Kind != KindRefused || ev.Bucket != "" {
			t.Errorf("forged job reported as %+v, want kind %s and nothing quarantined", ev, KindRefused)
		}
		if strings.Contains(string(m.Data), "deid-quarantine/") || strings.Contains(string(m.Data), "shadow") {
			t.Errorf("public event names what the job asked for: %s", m.Data)
		}
	}
	for _, m := range got[SubjectJobDone] {
		if jd := decode[JobDone](t, m); jd.Error == "" || jd.Instances != 0 {
			t.Errorf("forged study job reported as %+v", jd)
		}
	}
	r.quiet(300 * time.Millisecond)
	mu.Lock()
	for b := range touched {
		if b != "deid-in" { // the notification's key is looked up there

			t.Errorf("a worker used bucket %q", b)
		}
	}
	mu.Unlock()
	if n := len(store.keys("deid-out")) + len(store.keys("quarantine")); n != 2 {
		// The one object each of those buckets was given above, and nothing more.
		t.Errorf("outputs or quarantine copies written for forged jobs: %v %v", store.keys("deid-out"), store.keys("quarantine"))
	}
	if n := r.pendingWork(); n != 0 {
		t.Errorf("%d jobs left in the work queue", n)
	}
}
