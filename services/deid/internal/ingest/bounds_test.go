package ingest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/dicomdeid/dicomdeid/pipeline/bombs"
	"github.com/dicomdeid/dicomdeid/pipeline/budget"
	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/profiles"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

// engineWith is the test engine with a profile, limits and a budget.
func engineWith(t *testing.T, profile string, lim dicomraw.Limits, pool *budget.Pool) *deid.Engine {
	t.Helper()
	var l profiles.Loader
	prof, err := l.Load(profile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pseudonym.ParseKey([]byte(strings.Repeat("ab", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := deid.New(deid.Config{Profile: prof, Key: key, Limits: lim, Memory: pool})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Bombs sent to the service are quarantined with kind limit and a reason
// that carries nothing of the file; the deflate bomb's scratch file is
// gone from the spool folder; the budget is given back.
func TestBombsAreQuarantined(t *testing.T) {
	spool := t.TempDir()
	pool := budget.New(budget.Config{Total: 64 << 20, Workers: 2})
	lim := dicomraw.Limits{Scratch: func() (dicomraw.Scratch, error) { return dicomraw.TempScratch(spool) }}
	store := newMemStore()
	r := newRigWith(t, store, testTopology(), engineWith(t, "research", lim, pool))
	bs := map[string][]byte{
		"deflate.dcm":  bombs.Deflate("2.25.21", 4<<30),
		"elements.dcm": bombs.Elements("2.25.22", 5_000_000),
		"values.dcm":   bombs.Values("2.25.23", 30_000),
	}
	for k, b := range bs {
		store.add("deid-in", k, b)
		r.publish(SubjectObjects, s3Notification("deid-in", k, b), k)
	}
	got := r.await("failed events", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceFailed]) == len(bs) })
	for _, m := range got[SubjectInstanceFailed] {
		ev := decode[InstanceFailed](t, m)
		if ev.Kind != "limit" {
			t.Errorf("failure kind %s (%s), want limit", ev.Kind, ev.Reason)
		}
		for _, v := range []string{"BOMB", "DOCTOR", "INSTITUTION", "ID-", "2.25.2"} {
			if strings.Contains(string(m.Data), v) {
				t.Errorf("failed event carries %q: %s", v, ev.Reason)
			}
		}
		if store.object("quarantine", ev.QuarantineID+".dcm") == nil {
			t.Errorf("no quarantined copy for %s", ev.Reason)
		}
	}
	if len(store.keys("deid-out")) != 0 {
		t.Error("an output was written for a bomb")
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("%d scratch files left in the spool folder", len(left))
	}
	a := pool.Account()
	defer a.Close()
	if err := a.Charge(pool.PerFile()); err != nil {
		t.Errorf("the budget was not given back: %v", err)
	}
}

// With Retain UIDs the input's own UIDs name the output object: one that
// is not a valid UID is named by a keyed hash, inside the output bucket's
// layout.
func TestOutputKeyOfARetainedUIDThatIsAPath(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "retain.yaml")
	if err := os.WriteFile(prof, []byte("name: retain\nextends: basic\noptions:\n  retain_uids: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	store := newMemStore()
	r := newRigWith(t, store, testTopology(), engineWith(t, prof, dicomraw.Limits{}, nil))
	insts, err := synth.CTSeries(fakePatient, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := bytes.ReplaceAll(insts[0].Data, []byte(insts[0].SOPInstanceUID), []byte(pathUID(insts[0].SOPInstanceUID)))
	store.add("deid-in", "x.dcm", in)
	r.publish(SubjectObjects, s3Notification("deid-in", "x.dcm", in), "x")
	got := r.await("done event", func(g map[string][]*nats.Msg) bool { return len(g[SubjectInstanceDone]) == 1 })
	ev := decode[InstanceDone](t, got[SubjectInstanceDone][0])
	parts := strings.Split(ev.Key, "/")
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "hashed-") || strings.Contains(ev.Key, "..") {
		t.Fatalf("output key %q, want <study>/<series>/hashed-....dcm", ev.Key)
	}
	if store.object("deid-out", ev.Key) == nil {
		t.Fatal("no output under the announced key")
	}
}

// pathUID is a value of the same length as uid that climbs out of its
// folder (so the file's lengths stay right).
func pathUID(uid string) string {
	return "../../" + strings.Repeat("x", len(uid)-6)
}
