package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

// An input over MaxObjectSize is refused before the engine sees it:
// failed with kind "limit" and a reason that names nothing of it,
// quarantined by a note (no copy of the bytes), the input left as it
// is, no output. An input within the limit is processed as usual.
func TestOversizeInputIsRefused(t *testing.T) {
	store := newMemStore()
	insts, err := synth.CTSeries(fakePatient, 2)
	if err != nil {
		t.Fatal(err)
	}
	small, large := insts[0].Data, append(bytes.Clone(insts[1].Data), make([]byte, 64<<10)...)
	limit := int64(len(small)) + 1024
	if int64(len(large)) <= limit {
		t.Fatal("the large input is not over the limit")
	}
	r := newRig(t, store, testTopology(), func(c *Config) { c.MaxObjectSize = limit })
	const bigKey = "Brzęczyszczykiewicz Grzegorz/big.dcm"
	store.add("deid-in", bigKey, large)
	store.add("deid-in", "small.dcm", small)
	r.publish(SubjectObjects, s3Notification("deid-in", bigKey, large), "big")
	r.publish(SubjectObjects, s3Notification("deid-in", "small.dcm", small), "small")
	got := r.await("a failure and a success", func(g map[string][]*nats.Msg) bool {
		return len(g[SubjectInstanceFailed]) == 1 && len(g[SubjectInstanceDone]) == 1
	})
	ev := decode[InstanceFailed](t, got[SubjectInstanceFailed][0])
	if ev.Kind != KindLimit || strings.Contains(string(got[SubjectInstanceFailed][0].Data), "Brz") {
		t.Errorf("failed event %s", got[SubjectInstanceFailed][0].Data)
	}
	note := store.object("quarantine", ev.QuarantineID+".json")
	var n map[string]string
	if json.Unmarshal(note, &n) != nil || n["kind"] != KindLimit || n["input_key"] != bigKey {
		t.Errorf("quarantine note %s", note)
	}
	if store.object("quarantine", ev.QuarantineID+".dcm") != nil {
		t.Error("the oversize input was copied")
	}
	if !bytes.Equal(store.object("deid-in", bigKey), large) {
		t.Error("the input changed")
	}
	if outs := store.keys("deid-out"); len(outs) != 1 {
		t.Errorf("outputs %v, want the small input's only", outs)
	}
	if later := r.quiet(500 * time.Millisecond); len(later[SubjectInstanceFailed]) != 0 {
		t.Error("the refusal was retried")
	}
}
