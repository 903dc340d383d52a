package ingest

import (
	"context"
	"testing"
	"time"
)

// TestWriteAll: the writes of a finished instance sent together keep the
// guarantees of one synchronous publish each: a repeated Msg-Id is stored
// once, a key-value create reports an existing key instead of failing
// (so a redelivered job is not counted twice), and a write nothing stores
// is an error, not a silent loss.
func TestWriteAll(t *testing.T) {
	r := newRig(t, newMemStore(), testTopology())
	ctx := context.Background()
	mark := kvSubject(KVJobs, markKey("job-w", "input-1"))
	steps := []struct {
		name       string
		writes     []*jsWrite
		wantErr    []bool
		wantExists []bool
		within     time.Duration // the job's time left (the retries stop with it)
	}{
		{"event and its repeat", []*jsWrite{
			{subject: SubjectInstanceDone, data: []byte(`{"n":1}`), msgID: "done/w/1"},
			{subject: SubjectInstanceDone, data: []byte(`{"n":1}`), msgID: "done/w/1"},
		}, []bool{false, false}, []bool{false, false}, time.Minute},
		{"first create", []*jsWrite{{subject: mark, data: []byte(`{}`), create: true}},
			[]bool{false}, []bool{false}, time.Minute},
		{"create again", []*jsWrite{{subject: mark, data: []byte(`{}`), create: true}},
			[]bool{false}, []bool{true}, time.Minute},
		{"subject no stream stores", []*jsWrite{{subject: "deid.nowhere", data: []byte(`{}`)}},
			[]bool{true}, []bool{false}, time.Second},
	}
	for _, st := range steps {
		sctx, cancel := context.WithTimeout(ctx, st.within)
		r.svc.writeAll(sctx, st.writes)
		cancel()
		for i, w := range st.writes {
			if (w.err != nil) != st.wantErr[i] {
				t.Errorf("%s, write %d: err %v, want error %v", st.name, i, w.err, st.wantErr[i])
			}
			if w.exists != st.wantExists[i] {
				t.Errorf("%s, write %d: exists %v, want %v", st.name, i, w.exists, st.wantExists[i])
			}
		}
	}
	if n := r.stored(StreamEvents, SubjectInstanceDone); n != 1 {
		t.Errorf("%d events stored for one Msg-Id, want 1", n)
	}
	e, err := r.svc.jobs.Get(ctx, markKey("job-w", "input-1"))
	if err != nil || string(e.Value()) != `{}` {
		t.Errorf("mark not readable as a key-value entry: %v", err)
	}
}

func TestRecentKeys(t *testing.T) {
	r := recentKeys{ttl: 50 * time.Millisecond, max: 2}
	if r.fresh("a") {
		t.Fatal("a key never written is fresh")
	}
	if !r.fresh("a") {
		t.Fatal("a key just written is not fresh")
	}
	r.forget("a")
	if r.fresh("a") {
		t.Fatal("a forgotten key (its write failed) is still fresh")
	}
	time.Sleep(60 * time.Millisecond)
	if r.fresh("a") {
		t.Fatal("a key older than the TTL is still fresh")
	}
	r.fresh("b")
	r.fresh("c") // over max: the memory starts again
	if len(r.seen) > r.max {
		t.Fatalf("%d keys remembered, max %d", len(r.seen), r.max)
	}
}
