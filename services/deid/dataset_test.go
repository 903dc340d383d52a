package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

// testStudy is one synthetic study put into the input bucket.
type testStudy struct {
	patient            synth.Patient
	studyUID, accesion string
}

func topValue(t *testing.T, data []byte, tag uint32) string {
	t.Helper()
	f, err := dicomraw.Parse(bytes.NewReader(data), int64(len(data)), dicomraw.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Elements {
		if uint32(e.Tag) == tag {
			return strings.TrimRight(string(e.Value), " \x00")
		}
	}
	return ""
}

// datasetService starts the service with a project store holding projects
// alpha and beta (keyed) and gamma (lookup table of the first three
// patients), and ingests ten two-slice studies of ten patients.
func datasetService(t *testing.T) (*service, []testStudy) {
	t.Helper()
	projDir := filepath.Join(t.TempDir(), "projects")
	for _, p := range []string{"alpha", "beta"} {
		if code, _, errOut := runDeid(t, "project", "create", p, "--projects", projDir); code != 0 {
			t.Fatalf("project create: %s", errOut)
		}
	}
	var studies []testStudy
	for i := 0; i < 10; i++ {
		p := synth.Patient{Name: fmt.Sprintf("Nowakowska%02d^Maria", i), ID: fmt.Sprintf("MRN-DS-%04d", i), BirthDate: "19600101",
			Sex: "F", Institution: "Dataset General", Referring: "Lee^Min", Accession: fmt.Sprintf("ACCDS%05d", i), StudyDate: "20240601"}
		studies = append(studies, testStudy{patient: p})
	}
	table := "patient_id,research_id\n"
	for i := 0; i < 3; i++ {
		table += fmt.Sprintf("%s,RESEARCH-%03d\n", studies[i].patient.ID, i+1)
	}
	lookup := filepath.Join(t.TempDir(), "lookup.csv")
	os.WriteFile(lookup, []byte(table), 0o600)
	if code, _, errOut := runDeid(t, "project", "create", "gamma", "--lookup", lookup, "--projects", projDir); code != 0 {
		t.Fatalf("project create with lookup: %s", errOut)
	}

	c := serveConfigForTest(t)
	c.projectsDir = projDir
	srv := startForTest(t, c, io.Discard)
	nc, _ := srv.natsAs(t, natsauth.Admin)
	audits := auditFeed(t, nc)
	mc := srv.s3Client(t)
	keys := map[string]bool{}
	for i := range studies {
		insts, err := synth.CTSeries(studies[i].patient, 2)
		if err != nil {
			t.Fatal(err)
		}
		studies[i].studyUID = topValue(t, insts[0].Data, 0x0020000D)
		studies[i].accesion = studies[i].patient.Accession
		for k, in := range insts {
			key := fmt.Sprintf("pacs-export/%s/%d.dcm", studies[i].patient.Name, k)
			if _, err := mc.PutObject(context.Background(), c.inBucket, key, bytes.NewReader(in.Data), int64(len(in.Data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			keys[key] = true
		}
	}
	awaitInputs(t, nc, audits, keys, time.Minute)
	js, _ := jetstream.New(nc)
	awaitDrained(t, js, time.Minute) // the study index too is written before the ack
	return srv, studies
}

func studyFile(t *testing.T, rows ...string) string {
	p := filepath.Join(t.TempDir(), "studies.csv")
	if err := os.WriteFile(p, []byte(strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// requestDataset runs `deid dataset request --wait` and reads the manifest.
func requestDataset(t *testing.T, srv *service, project string, rows ...string) (code int, out string, m ingest.Manifest) {
	t.Helper()
	code, out, errOut := runDeid(t, "dataset", "request", "--project", project, "--studies", studyFile(t, rows...),
		"--nats-url", "nats://"+srv.cfg.natsListen, "--data", srv.cfg.data, "--wait")
	if code > 1 {
		t.Fatalf("dataset request: %d\n%s%s", code, out, errOut)
	}
	id := strings.Fields(out)[1]
	obj, err := srv.s3Client(t).GetObject(context.Background(), srv.cfg.outBucket, "datasets/"+id+"/manifest.json", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("manifest: %v\n%s", err, out)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return code, out, m
}

// byStudy indexes a manifest's rows by study UID'.
func byStudy(m ingest.Manifest) map[string][]ingest.ManifestEntry {
	out := map[string][]ingest.ManifestEntry{}
	for _, e := range m.Instances {
		out[e.StudyUID] = append(out[e.StudyUID], e)
	}
	return out
}

// TestDatasets: deliveries to research projects are consistent within a
// project, unlinkable across projects, report what they could not
// deliver by request position, and an honest broker can link them back.
func TestDatasets(t *testing.T) {
	srv, studies := datasetService(t)
	uid := func(i int) string { return studies[i].studyUID }

	// Two requests of project alpha overlapping on studies 4-6 (by UID in
	// one, by Accession Number in the other).
	_, _, m1 := requestDataset(t, srv, "alpha", uid(0), uid(1), uid(2), uid(3), uid(4), uid(5))
	rows2 := []string{"accession_number"}
	for i := 3; i < 10; i++ {
		rows2 = append(rows2, studies[i].accesion)
	}
	_, _, m2 := requestDataset(t, srv, "alpha", rows2...)
	if m1.Counts.Studies != 6 || m2.Counts.Studies != 7 || m1.Counts.Instances != 12 {
		t.Fatalf("delivered %d and %d studies (%d instances), want 6 and 7 (12)", m1.Counts.Studies, m2.Counts.Studies, m1.Counts.Instances)
	}
	s1, s2 := byStudy(m1), byStudy(m2)
	overlap := 0
	for st, rows := range s1 {
		other, ok := s2[st]
		if !ok {
			continue
		}
		overlap++
		for k := range rows {
			a, b := rows[k], other[k]
			if a.PatientID != b.PatientID || a.SeriesUID != b.SeriesUID || a.SOPInstanceUID != b.SOPInstanceUID || a.SHA256 != b.SHA256 {
				t.Errorf("study delivered twice to one project differs between deliveries")
			}
		}
	}
	if overlap != 3 {
		t.Errorf("%d studies in both deliveries of project alpha, want 3 (same pseudonymised UIDs)", overlap)
	}

	// Project beta: the same studies share nothing with alpha.
	_, _, mb := requestDataset(t, srv, "beta", uid(0), uid(1), uid(2), uid(3), uid(4), uid(5))
	seen := map[string]bool{}
	for _, e := range m1.Instances {
		for _, v := range []string{e.PatientID, e.StudyUID, e.SeriesUID, e.SOPInstanceUID} {
			seen[v] = true
		}
	}
	shared := 0
	for _, e := range mb.Instances {
		for _, v := range []string{e.PatientID, e.StudyUID, e.SeriesUID, e.SOPInstanceUID} {
			if seen[v] {
				shared++
			}
		}
	}
	if shared != 0 || len(mb.Instances) != 12 {
		t.Errorf("projects alpha and beta share %d identifiers (%d instances to beta)", shared, len(mb.Instances))
	}

	// Ten studies, the seventh missing: nine delivered, the status says #7.
	rows := []string{uid(0), uid(1), uid(2), uid(3), uid(4), uid(5), "1.2.826.0.1.3680043.9.9999.1", uid(6), uid(7), uid(8)}
	nc, _ := srv.natsAs(t, natsauth.Events)
	defer nc.Close()
	ready := make(chan *nats.Msg, 16)
	nc.ChanSubscribe(ingest.SubjectDatasetReady, ready)
	code, out, m := requestDataset(t, srv, "alpha", rows...)
	if code != 1 || m.Counts.Studies != 9 || len(m.Counts.StudiesNotFound) != 1 || m.Counts.StudiesNotFound[0] != 7 {
		t.Errorf("10 requested, one missing: exit %d, %d studies delivered, not found %v\n%s", code, m.Counts.Studies, m.Counts.StudiesNotFound, out)
	}
	if !strings.Contains(out, "not found in the source bucket: request entry #7") || strings.Contains(out, "9999") {
		t.Errorf("status should name the missing study by position only:\n%s", out)
	}
	select {
	case msg := <-ready:
		var ev ingest.DatasetReady
		json.Unmarshal(msg.Data, &ev)
		if ev.Studies != 9 || ev.Instances != 18 || len(ev.NotFound) != 1 || ev.NotFound[0] != 7 || ev.Manifest == "" {
			t.Errorf("dataset.ready %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Error("no dataset.ready event")
	}
	// The manifest.csv is there and the outputs under the dataset's prefix.
	id := strings.Fields(out)[1]
	mc := srv.s3Client(t)
	n := 0
	for o := range mc.ListObjects(context.Background(), srv.cfg.outBucket, minio.ListObjectsOptions{Prefix: "datasets/" + id + "/", Recursive: true}) {
		n++
		_ = o
	}
	if n != 18+2 {
		t.Errorf("%d objects under the dataset's prefix, want 18 instances and 2 manifests", n)
	}
	code, status, _ := runDeid(t, "dataset", "status", id, "--nats-url", "nats://"+srv.cfg.natsListen, "--data", srv.cfg.data)
	if code != 0 || !strings.Contains(status, "ready") || !strings.Contains(status, "#7") {
		t.Errorf("dataset status:\n%s", status)
	}
	code, list, _ := runDeid(t, "dataset", "list", "--nats-url", "nats://"+srv.cfg.natsListen, "--data", srv.cfg.data)
	if code != 0 || !strings.Contains(list, id) {
		t.Errorf("dataset list lacks %s:\n%s", id, list)
	}

	// Nothing identifying in manifests.
	all, _ := json.Marshal([]ingest.Manifest{m1, m2, mb, m})
	for _, st := range studies {
		for _, v := range []string{st.patient.ID, st.patient.Name, st.studyUID, st.accesion, "Nowakowska"} {
			if strings.Contains(string(all), v) {
				t.Errorf("a manifest holds an input identifier (%d characters)", len(v))
			}
		}
	}

	// A project with a lookup table: the broker's research IDs, and a
	// patient missing from the table is not delivered.
	code, out, mg := requestDataset(t, srv, "gamma", uid(0), uid(1), uid(2), uid(3))
	if code != 1 || mg.Counts.Studies != 3 || len(mg.Counts.StudiesNotInTable) != 1 || mg.Counts.StudiesNotInTable[0] != 4 {
		t.Errorf("lookup project: exit %d, %d studies, not in table %v\n%s", code, mg.Counts.Studies, mg.Counts.StudiesNotInTable, out)
	}
	for _, e := range mg.Instances {
		if !strings.HasPrefix(e.PatientID, "RESEARCH-00") {
			t.Errorf("patient delivered as %q, want the research ID", e.PatientID)
		}
	}
	if !strings.Contains(out, "patient not in the project's lookup table (not delivered): request entry #4") {
		t.Errorf("status should say #4 is not in the lookup table:\n%s", out)
	}

	// The honest broker links back without a crosswalk.
	projDir := srv.cfg.projectsDir
	code, link, _ := runDeid(t, "pseudonym", "--project", "alpha", "--projects", projDir, "--patient-id", studies[0].patient.ID,
		"--uid", studies[0].studyUID, "--json")
	var lk struct {
		Patient struct {
			PatientID string `json:"patient_id"`
		} `json:"patient"`
		UIDs map[string]string `json:"uids"`
	}
	json.Unmarshal([]byte(link), &lk)
	row := s1[lk.UIDs[studies[0].studyUID]]
	if code != 0 || len(row) == 0 || row[0].PatientID != lk.Patient.PatientID {
		t.Errorf("deid pseudonym does not give the delivered pseudonyms: %s", link)
	}
	if code, _, _ := runDeid(t, "pseudonym", "--project", "gamma", "--projects", projDir, "--patient-id", studies[5].patient.ID); code != 1 {
		t.Errorf("a patient missing from the lookup table: exit %d, want 1", code)
	}
}

// TestDatasetCrosswalk: a dataset delivery writes its crosswalk
// (id_old,id_new for Patient ID, Study, Series and SOP Instance UIDs) to
// the quarantine bucket, on the trusted side, never to the anonymised
// bucket; its rows are those `deid run --crosswalk` writes for the same
// inputs with the project's key and profile, and the status says where it
// is.
func TestDatasetCrosswalk(t *testing.T) {
	srv, studies := datasetService(t)
	ctx := context.Background()
	_, out, m := requestDataset(t, srv, "alpha", studies[0].studyUID, studies[1].studyUID, studies[2].studyUID)
	if m.Counts.Instances != 6 {
		t.Fatalf("%d instances delivered, want 6\n%s", m.Counts.Instances, out)
	}
	id := strings.Fields(out)[1]
	mc := srv.s3Client(t)
	obj, err := mc.GetObject(ctx, srv.cfg.quarantine, "datasets/"+id+"/crosswalk.csv", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delivered, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("no crosswalk in the quarantine bucket: %v", err)
	}
	rows := readCrosswalk(t, delivered)
	if len(rows) != 3+3+3+6 { // 3 patients, 3 studies, 3 series, 6 instances
		t.Errorf("%d crosswalk rows, want 15", len(rows))
	}
	for o := range mc.ListObjects(ctx, srv.cfg.outBucket, minio.ListObjectsOptions{Recursive: true}) {
		if strings.Contains(o.Key, "crosswalk") {
			t.Errorf("crosswalk in the anonymised bucket: %s", o.Key)
		}
	}
	// The inputs of those studies through deid run with the project's key.
	in := t.TempDir()
	for i := 0; i < 3; i++ {
		for k := 0; k < 2; k++ {
			key := fmt.Sprintf("pacs-export/%s/%d.dcm", studies[i].patient.Name, k)
			o, err := mc.GetObject(ctx, srv.cfg.inBucket, key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(o)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(in, fmt.Sprintf("%d-%d.dcm", i, k)), b, 0o600)
		}
	}
	tmp := t.TempDir()
	cw := filepath.Join(tmp, "run.csv")
	keyFile := filepath.Join(srv.cfg.projectsDir, "alpha.key")
	if code, so, se := runDeid(t, "run", "--in", in, "--out", filepath.Join(tmp, "out"), "--profile", "research", "--key-file", keyFile,
		"--crosswalk", cw, "--no-progress"); code != 0 {
		t.Fatalf("run: %d %s %s", code, so, se)
	}
	if b, _ := os.ReadFile(cw); string(b) != string(delivered) {
		t.Errorf("the delivery's crosswalk differs from deid run's:\n%s\n---\n%s", delivered, b)
	}
	for _, st := range studies[:3] {
		if !strings.Contains(string(delivered), st.patient.ID) || !strings.Contains(string(delivered), st.studyUID) {
			t.Error("the crosswalk lacks a delivered patient or study")
		}
	}
	code, status, _ := runDeid(t, "dataset", "status", id, "--nats-url", "nats://"+srv.cfg.natsListen, "--data", srv.cfg.data)
	if code != 0 || !strings.Contains(status, "crosswalk: "+srv.cfg.quarantine+"/datasets/"+id+"/crosswalk.csv") {
		t.Errorf("dataset status does not say where the crosswalk is:\n%s", status)
	}
}
