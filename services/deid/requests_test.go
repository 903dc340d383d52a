package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

// A dataset request chooses among the profiles the operator registered at
// start, by name. A path in a request (to a profile that keeps names, to
// a system file) is refused in the same words whether the file exists or
// not, and nothing of the file reaches the reply, the events, the audit
// stream or the log; nor does a forged dataset instance job run such a
// profile. Source buckets and prefixes are checked as for submitted jobs.
func TestRequestsCannotChooseWhatRuns(t *testing.T) {
	dir := t.TempDir()
	const secret = "root:$6$SECRETLINEHASH:19000:0:99999:7:::"
	shadow := filepath.Join(dir, "shadow")
	os.WriteFile(shadow, []byte(secret+"\ndaemon:*:19000:0:99999:7:::\n"), 0o600)
	keepNames := filepath.Join(dir, "keep-names.yaml")
	os.WriteFile(keepNames, []byte("name: keep-names\nextends: basic\nrules:\n  - {tag: PatientName, action: keep}\n  - {tag: PatientID, action: keep}\n"), 0o600)
	profDir := filepath.Join(dir, "profiles")
	os.Mkdir(profDir, 0o700)
	os.WriteFile(filepath.Join(profDir, "lung.yaml"), []byte("name: lung\nextends: research\n"), 0o600)

	projDir := filepath.Join(dir, "projects")
	if code, _, errOut := runDeid(t, "project", "create", "alpha", "--projects", projDir); code != 0 {
		t.Fatalf("project create: %s", errOut)
	}
	c := serveConfigForTest(t)
	c.projectsDir, c.profilesDir = projDir, profDir
	var logs syncBuffer
	srv := startForTest(t, c, &logs)
	// Requests come from a submitter; everything published is watched as
	// the administrator, who also forges a job below (only the workers and
	// the administrator may publish jobs: the workers' checks are tried
	// as if the permissions had let a forgery through).
	nc, _ := srv.natsAs(t, natsauth.Admin)
	sub, _ := srv.natsAs(t, natsauth.Submitter)
	public := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe("deid.>", public); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	insts, _ := synth.CTSeries(fakePatientForRequests, 1)
	mc := srv.s3Client(t)
	if _, err := mc.PutObject(context.Background(), c.inBucket, "DOE^JANE_MRN123/x.dcm", bytes.NewReader(insts[0].Data),
		int64(len(insts[0].Data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	ask := func(req ingest.DatasetRequest) ingest.DatasetReply {
		t.Helper()
		b, _ := json.Marshal(req)
		m, err := sub.Request(ingest.SubjectDatasetRequest, b, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r ingest.DatasetReply
		json.Unmarshal(m.Data, &r)
		return r
	}
	all := []ingest.StudyRef{{StudyInstanceUID: "1.2.3"}}
	refusals := map[string]string{}
	for _, p := range []string{keepNames, shadow, filepath.Join(dir, "missing.yaml"), "../../../etc/shadow", "keep-names", "file://" + shadow} {
		r := ask(ingest.DatasetRequest{Project: "alpha", Profile: p, Prefixes: []string{""}})
		if r.Error == "" || r.State != "" {
			t.Errorf("a request naming profile %q was accepted: %+v", p, r)
		}
		refusals[r.Error] = p
	}
	if len(refusals) != 1 {
		t.Errorf("refusals differ by what the path names (an existence oracle): %v", refusals)
	}
	if r := ask(ingest.DatasetRequest{Project: "alpha", Profile: "lung", Studies: all}); r.Error != "" || r.State != "queued" {
		t.Errorf("a request for the registered profile lung: %+v", r)
	}
	if r := ask(ingest.DatasetRequest{Project: "nobody", Profile: "research", Studies: all}); r.Error != ingest.ErrUnknownProject.Error() {
		t.Errorf("a request for a missing project: %+v", r)
	}
	for _, b := range []string{".", "..", c.outBucket, c.quarantine, strings.ToUpper(c.outBucket), "./" + c.inBucket, "elsewhere"} {
		if r := ask(ingest.DatasetRequest{Project: "alpha", Profile: "research", Bucket: b, Prefixes: []string{""}}); r.Error == "" {
			t.Errorf("a request reading bucket %q was accepted: %+v", b, r)
		}
	}
	if r := ask(ingest.DatasetRequest{Project: "alpha", Profile: "research", Prefixes: []string{"../" + c.quarantine + "/"}}); r.Error == "" {
		t.Errorf("a request with a .. prefix was accepted: %+v", r)
	}
	// A forged dataset instance job naming a profile file.
	js, _ := jetstream.New(nc)
	b, _ := json.Marshal(ingest.InstanceJob{JobID: "ds-forged", Bucket: c.inBucket, Key: "DOE^JANE_MRN123/x.dcm",
		Dataset: true, Project: "alpha", Profile: shadow})
	if _, err := js.Publish(context.Background(), ingest.SubjectInstanceJobs, b); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	var seen []*nats.Msg
	failed := false
	for !failed {
		select {
		case m := <-public:
			seen = append(seen, m)
			if m.Subject == ingest.SubjectInstanceFailed {
				var ev ingest.InstanceFailed
				json.Unmarshal(m.Data, &ev)
				if ev.JobID == "ds-forged" {
					failed = true
					if ev.Kind != "project" || ev.Reason != ingest.ErrUnknownProfile.Error() {
						t.Errorf("forged dataset job failed as %s: %s", ev.Kind, ev.Reason)
					}
				}
			}
		case <-deadline:
			t.Fatal("the forged dataset instance job was not reported")
		}
	}
	awaitDrained(t, js, time.Minute)
	time.Sleep(200 * time.Millisecond)
	for len(public) > 0 {
		seen = append(seen, <-public)
	}
	for _, m := range seen {
		if strings.Contains(string(m.Data), "SECRETLINE") || strings.Contains(string(m.Data), "daemon:") {
			t.Errorf("%s carries the file's content", m.Subject)
		}
	}
	if strings.Contains(logs.String(), "SECRETLINE") || strings.Contains(logs.String(), "daemon:") {
		t.Error("the log carries the file's content")
	}
	for o := range mc.ListObjects(context.Background(), c.outBucket, minio.ListObjectsOptions{Prefix: "datasets/", Recursive: true}) {
		if !strings.HasPrefix(o.Key, "datasets/") || o.Err != nil {
			continue
		}
		// Only the lung delivery (a study that is not there) may write:
		// its manifest. No instance of the input is delivered.
		if strings.HasSuffix(o.Key, ".dcm") {
			t.Errorf("a refused request delivered %s", o.Key)
		}
	}
}

var fakePatientForRequests = synth.Patient{Name: "Doe^Jane", ID: "MRN123", BirthDate: "19700101", Sex: "F",
	Institution: "General", Referring: "Roe^Richard", Accession: "ACC123", StudyDate: "20250101"}
