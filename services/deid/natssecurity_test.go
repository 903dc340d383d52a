package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

// The NATS attacks of issue 18, tried as a local process would (nothing
// but 127.0.0.1 and, for the role tests, one role's credentials), against
// `deid serve` on its embedded default and against a real nats-server
// running the shipped configuration (deploy/compose/nats-auth.conf) with
// `deid serve --nats-url`. Each must be refused, with nothing stored in
// any stream or bucket and nothing lost.

// natsTarget is a running service and how to reach its NATS.
type natsTarget struct {
	srv     *service
	logs    *syncBuffer
	uploads int
}

// forEachNATS runs f against the embedded default and against nats-server.
func forEachNATS(t *testing.T, extra func(*serveConfig), f func(t *testing.T, tg *natsTarget)) {
	for _, mode := range []string{"embedded", "nats-server"} {
		t.Run(mode, func(t *testing.T) {
			c := serveConfigForTest(t)
			c.logLevel = "info"
			if extra != nil {
				extra(&c)
			}
			tg := &natsTarget{logs: &syncBuffer{}}
			var n testNATS
			if mode == "nats-server" {
				n = startNATSServer(t)
				c.natsURL, c.natsCreds = n.url, n.file(natsauth.Worker)
			}
			tg.srv = startForTest(t, c, tg.logs)
			if mode == "nats-server" {
				tg.srv.natsCredDir = n.creds
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("service log (tail):\n%s", tail(tg.logs.String(), 4000))
				}
			})
			f(t, tg)
		})
	}
}

// fresh is a new connection as role: every refusal is checked on a
// connection of its own, so that no earlier error is mistaken for it.
func (tg *natsTarget) fresh(t *testing.T, r natsauth.Role) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return tg.srv.natsAs(t, r, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}

// pubRefused publishes as role and reports whether the server refused it.
func (tg *natsTarget) pubRefused(t *testing.T, r natsauth.Role, subject, reply string, data []byte) bool {
	t.Helper()
	nc, _ := tg.fresh(t, r)
	defer nc.Close()
	if err := nc.PublishMsg(&nats.Msg{Subject: subject, Reply: reply, Data: data}); err != nil {
		t.Fatal(err)
	}
	// The server answers a refused publish before the flush's PONG.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	le := nc.LastError()
	return le != nil && strings.Contains(le.Error(), fmt.Sprintf("Publish to %q", subject))
}

// subRefused subscribes as role and reports whether the server refused it.
func (tg *natsTarget) subRefused(t *testing.T, r natsauth.Role, subject string) bool {
	t.Helper()
	nc, _ := tg.fresh(t, r)
	defer nc.Close()
	if _, err := nc.SubscribeSync(subject); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	le := nc.LastError()
	return le != nil && strings.Contains(le.Error(), fmt.Sprintf("Subscription to %q", subject))
}

// jsStreams are every stream of the service's account, key-value
// buckets' included.
var jsStreams = []string{ingest.StreamIngest, ingest.StreamEvents, ingest.StreamAudit, ingest.StreamDLQ,
	"KV_" + ingest.KVStudies, "KV_" + ingest.KVJobs, "KV_" + ingest.KVIndex}

// snapshot is each stream's last sequence and message count: anything
// stored or removed changes it.
func (tg *natsTarget) snapshot(t *testing.T) map[string][2]uint64 {
	t.Helper()
	_, js := tg.srv.natsAs(t, natsauth.Admin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string][2]uint64{}
	for _, s := range jsStreams {
		st, err := js.Stream(ctx, s)
		if err != nil {
			t.Fatalf("stream %s: %v", s, err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out[s] = [2]uint64{info.State.LastSeq, info.State.Msgs}
	}
	return out
}

func (tg *natsTarget) sameAs(t *testing.T, before map[string][2]uint64, what string) {
	t.Helper()
	after := tg.snapshot(t)
	for s, b := range before {
		if after[s] != b {
			t.Errorf("%s: stream %s changed: last sequence and messages %v, before %v", what, s, after[s], b)
		}
	}
}

// idle waits until the service has nothing left to do (work queue
// drained, notification-fed studies settled), so that a snapshot stays
// still unless someone writes.
func (tg *natsTarget) idle(t *testing.T) {
	t.Helper()
	_, js := tg.srv.natsAs(t, natsauth.Admin)
	awaitDrained(t, js, time.Minute)
	prev := tg.snapshot(t)
	for i := 0; i < 100; i++ {
		time.Sleep(1500 * time.Millisecond) // more than --study-settle and its sweep
		cur := tg.snapshot(t)
		if fmt.Sprint(cur) == fmt.Sprint(prev) {
			return
		}
		prev = cur
	}
	t.Fatal("the service did not go idle")
}

// uploadAndAwait uploads an input under a name carrying a patient's name
// and waits for its output: nothing lost.
func (tg *natsTarget) uploadAndAwait(t *testing.T, key string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir(t), "ct_small_explicit_le.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	// A SOP Instance of its own, so that each upload makes one output.
	tg.uploads++
	data = bytes.ReplaceAll(data, []byte("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"),
		[]byte(fmt.Sprintf("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.%05d", tg.uploads)))
	mc := tg.srv.s3Client(t)
	ctx := context.Background()
	before := countObjects(t, mc, tg.srv.cfg.outBucket)
	if _, err := mc.PutObject(ctx, tg.srv.cfg.inBucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for countObjects(t, mc, tg.srv.cfg.outBucket) <= before {
		if time.Now().After(deadline) {
			_, js := tg.srv.natsAs(t, natsauth.Admin)
			t.Fatalf("upload %s not processed within a minute: %s", key, workState(js))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func countObjects(t *testing.T, mc *minio.Client, bucket string) int {
	t.Helper()
	n := 0
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		n++
	}
	return n
}

func TestNATSAttacks(t *testing.T) {
	forEachNATS(t, nil, func(t *testing.T, tg *natsTarget) {
		srv := tg.srv
		tg.uploadAndAwait(t, "Doe^Jane_MRN123/first.dcm")
		tg.idle(t)

		t.Run("unauthenticated connections are refused", func(t *testing.T) {
			nc, err := nats.Connect(srv.natsURL, nats.MaxReconnects(0))
			if err == nil {
				nc.Close()
				t.Fatal("a connection without credentials was accepted")
			}
			if !isAuthError(err) {
				t.Errorf("refused, but not as an authorization violation: %v", err)
			}
			// A key the server does not know.
			kp, _ := nkeys.CreateUser()
			pub, _ := kp.PublicKey()
			if nc, err := nats.Connect(srv.natsURL, nats.Nkey(pub, kp.Sign), nats.MaxReconnects(0)); err == nil {
				nc.Close()
				t.Error("an unknown NKey was accepted")
			}
			// The public key alone (signing with another seed).
			other, _ := nkeys.CreateUser()
			cr, _, _ := natsauth.Ensure(srv.natsCredDir)
			if nc, err := nats.Connect(srv.natsURL, nats.Nkey(cr.Public[natsauth.Admin], other.Sign), nats.MaxReconnects(0)); err == nil {
				nc.Close()
				t.Error("admin's public key without its seed was accepted")
			}
		})

		t.Run("forged jobs, notifications, events and records are refused", func(t *testing.T) {
			before := tg.snapshot(t)
			job, _ := json.Marshal(ingest.InstanceJob{Bucket: srv.cfg.inBucket, Key: "Doe^Jane_MRN123/first.dcm"})
			note := []byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"deid-incoming"},"object":{"key":"Doe%5EJane_MRN123/first.dcm"}}}]}`)
			forged := map[string][]byte{
				ingest.SubjectInstanceJobs:                         job,
				ingest.SubjectDatasetJobs:                          []byte(`{"dataset_id":"ds-forged","project":"p"}`),
				ingest.SubjectObjects:                              note,
				ingest.SubjectInstanceDone:                         []byte(`{"key":"forged"}`),
				ingest.SubjectDatasetReady:                         []byte(`{"dataset_id":"ds-forged"}`),
				ingest.SubjectJobDone:                              []byte(`{"job_id":"forged"}`),
				ingest.SubjectAudit + "instance.done":              []byte(`{"input_key":"forged"}`),
				ingest.SubjectDLQPrefix + "x":                      []byte(`{}`),
				"$KV." + ingest.KVIndex + ".study.a.b":             []byte(`{"bucket":"deid-quarantine","key":"x"}`),
				"$KV." + ingest.KVJobs + ".job.forged":             []byte(`{}`),
				"$JS.API.STREAM.MSG.DELETE." + ingest.StreamIngest: []byte(`{"seq":1}`),
			}
			for _, r := range []natsauth.Role{natsauth.Submitter, natsauth.Events, natsauth.Auditor, natsauth.Notifier} {
				for subj, data := range forged {
					if r == natsauth.Notifier && subj == ingest.SubjectObjects {
						continue // the notifier's one job
					}
					if !tg.pubRefused(t, r, subj, "", data) {
						t.Errorf("%s published %s", r, subj)
					}
				}
			}
			tg.sameAs(t, before, "after forged publishes")
		})

		t.Run("input keys reach only the roles that must see them", func(t *testing.T) {
			refused := map[natsauth.Role][]string{
				natsauth.Submitter: {"deid.audit.>", ingest.SubjectObjects, "deid.events.>", "deid.jobs.>", "$KV.>", ">"},
				natsauth.Events:    {"deid.audit.>", ingest.SubjectObjects, "deid.jobs.>", "$KV.>", "deid.dlq.>", ">"},
				natsauth.Auditor:   {ingest.SubjectObjects, "deid.jobs.>", "$KV.>", ">"},
				natsauth.Notifier:  {"deid.audit.>", ingest.SubjectObjects, "deid.events.>", ">"},
			}
			for r, subjects := range refused {
				for _, s := range subjects {
					if !tg.subRefused(t, r, s) {
						t.Errorf("%s subscribed to %s", r, s)
					}
				}
			}
			// What the events reader and the auditor do receive of an
			// upload names no input: every message of every subscription
			// they may have, while an input named after a patient is
			// processed.
			feeds := map[string]chan *nats.Msg{}
			for _, r := range []natsauth.Role{natsauth.Events, natsauth.Auditor} {
				nc, _ := tg.fresh(t, r)
				ch := make(chan *nats.Msg, 1024)
				if _, err := nc.ChanSubscribe("deid.events.>", ch); err != nil {
					t.Fatal(err)
				}
				nc.Flush()
				feeds[string(r)] = ch
			}
			tg.uploadAndAwait(t, "Doe^Jane_MRN123/second.dcm")
			for who, ch := range feeds {
				got := 0
				// The output is stored before its event is published.
				for wait := time.After(10 * time.Second); got == 0 || len(ch) > 0; {
					var m *nats.Msg
					select {
					case m = <-ch:
					case <-wait:
					}
					if m == nil {
						break
					}
					got++
					if strings.Contains(string(m.Data), "Doe") || strings.Contains(string(m.Data), "MRN123") {
						t.Errorf("%s received an input key on %s", who, m.Subject)
					}
				}
				if got == 0 {
					t.Errorf("%s received no public event", who)
				}
			}
		})

		t.Run("trusted records are read by the auditor only", func(t *testing.T) {
			tg.idle(t)
			for _, r := range []natsauth.Role{natsauth.Submitter, natsauth.Events, natsauth.Notifier} {
				for _, s := range []string{
					natsauth.ImportedAPIPrefix + ".DIRECT.GET.KV_" + ingest.KVIndex,
					natsauth.ImportedAPIPrefix + ".DIRECT.GET.KV_" + ingest.KVIndex + ".$KV." + ingest.KVIndex + ".x",
					natsauth.ImportedAPIPrefix + ".DIRECT.GET." + ingest.StreamAudit,
					natsauth.ImportedAPIPrefix + ".STREAM.INFO." + ingest.StreamAudit,
					natsauth.ImportedAPIPrefix + ".CONSUMER.CREATE." + ingest.StreamAudit + ".x",
					natsauth.ImportedAPIPrefix + ".CONSUMER.CREATE.KV_" + ingest.KVIndex + ".x",
					"$JS.API.DIRECT.GET.KV_" + ingest.KVIndex,
					"$JS.API.DIRECT.GET." + ingest.StreamAudit,
				} {
					if !tg.pubRefused(t, r, s, "_INBOX.x", []byte(`{"seq":1}`)) {
						t.Errorf("%s requested %s", r, s)
					}
				}
			}
			// A submitter reads none of the job bucket: its stream info
			// lists every job id (subjects_filter), and a record names its
			// input bucket and prefix. It asks the workers for its job's
			// progress, answered with counts only.
			nc, _ := tg.fresh(t, natsauth.Submitter)
			job, _ := json.Marshal(ingest.StudyJob{JobID: "jane", Bucket: srv.cfg.inBucket, Prefix: "Doe^Jane_MRN123/"})
			if _, err := nc.Request(ingest.SubjectStudyJobs, job, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			var reply *ingest.JobStatusReply
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
				r, err := ingest.RequestJobStatus(nc, "jane", 5*time.Second)
				if err == nil && r.Complete {
					reply = r
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job status: %v", err)
				}
			}
			if b, _ := json.Marshal(reply); strings.Contains(string(b), "Doe") || strings.Contains(string(b), "MRN") ||
				strings.Contains(string(b), srv.cfg.inBucket) || reply.Expected == 0 || reply.Done != reply.Expected {
				t.Errorf("job status reply %s: want counts only", b)
			}
			if _, err := ingest.RequestJobStatus(nc, "nobody", 5*time.Second); !errors.Is(err, ingest.ErrNoSuchJob) {
				t.Errorf("status of a job nobody submitted: %v", err)
			}
			nc.Close()
			for _, req := range []struct{ subject, body string }{
				{natsauth.ImportedAPIPrefix + ".STREAM.INFO.KV_" + ingest.KVJobs, `{"subjects_filter":">"}`},
				{natsauth.ImportedAPIPrefix + ".DIRECT.GET.KV_" + ingest.KVJobs + ".$KV." + ingest.KVJobs + ".job.jane", ``},
				{natsauth.ImportedAPIPrefix + ".DIRECT.GET.KV_" + ingest.KVJobs + ".$KV." + ingest.KVJobs + ".open.x", ``},
				{natsauth.ImportedAPIPrefix + ".DIRECT.GET.KV_" + ingest.KVJobs, `{"seq":1}`},
				{"$JS.API.DIRECT.GET.KV_" + ingest.KVJobs + ".$KV." + ingest.KVJobs + ".job.jane", ``},
			} {
				if !tg.pubRefused(t, natsauth.Submitter, req.subject, "_INBOX.x", []byte(req.body)) {
					t.Errorf("a submitter requested %s", req.subject)
				}
			}
			// Nor do the events reader and the notifier ask job status.
			for _, r := range []natsauth.Role{natsauth.Events, natsauth.Notifier} {
				if !tg.pubRefused(t, r, ingest.SubjectJobStatus, "_INBOX.x", []byte(`{"job_id":"jane"}`)) {
					t.Errorf("%s asked a job's status", r)
				}
			}
			// The auditor reads the audit records and the index, and
			// writes neither.
			_, ajs := tg.fresh(t, natsauth.Auditor)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := ajs.Stream(ctx, ingest.StreamAudit)
			if err != nil {
				t.Fatalf("auditor: audit stream: %v", err)
			}
			m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(ingest.SubjectAudit+">"))
			if err != nil || !strings.Contains(string(m.Data), "Doe^Jane_MRN123") {
				t.Errorf("auditor reading the audit stream: %v", err)
			}
			kv, err := ajs.KeyValue(ctx, ingest.KVIndex)
			if err != nil {
				t.Fatalf("auditor: index: %v", err)
			}
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			if _, err := kv.Put(pctx, "study.a.b", []byte(`{}`)); err == nil {
				t.Error("the auditor wrote into the index")
			}
			pcancel()
			if _, err := ingest.ListJobs(ctx, ajs); err != nil {
				t.Errorf("auditor listing jobs: %v", err)
			}
			// Index keys are keyed hashes: the unkeyed SHA-256 of the
			// study's UID is not among them.
			data, err := os.ReadFile(filepath.Join(corpusDir(t), "ct_small_explicit_le.dcm"))
			if err != nil {
				t.Fatal(err)
			}
			study := topValue(t, data, 0x0020000D)
			if study == "" {
				t.Fatal("no Study Instance UID in the test file")
			}
			var keys []string
			if err := scanIndexKeys(ctx, ajs, &keys); err != nil {
				t.Fatalf("auditor scanning the index: %v", err)
			}
			if len(keys) == 0 {
				t.Fatal("the index is empty")
			}
			for _, k := range keys {
				if !strings.HasPrefix(k, "study.") && !strings.HasPrefix(k, "accession.") {
					t.Errorf("index key %q", k)
				}
				if strings.Contains(k, unkeyedIndexHash(study)) {
					t.Errorf("index key %q is the unkeyed hash of the Study Instance UID", k)
				}
			}
		})

		t.Run("the events reader reads events and nothing else", func(t *testing.T) {
			tg.idle(t)
			before := tg.snapshot(t)
			_, ejs := tg.fresh(t, natsauth.Events)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := ejs.Stream(ctx, ingest.StreamEvents)
			if err != nil {
				t.Fatal(err)
			}
			// History by direct get (answered to the requester only).
			m, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject("deid.events.>"))
			if err != nil || !strings.HasPrefix(m.Subject, "deid.events.") {
				t.Errorf("events reader reading DEID_EVENTS by direct get: %v", err)
			}
			// No consumer of any kind: a durable stays and costs the
			// service; a push consumer in DEID delivers where its creator
			// says, into the service's streams.
			dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
			if _, err := st.CreateOrUpdateConsumer(dctx, jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
				t.Error("the events reader created a durable consumer on DEID_EVENTS")
			}
			dcancel()
			for _, s := range []string{ingest.StreamEvents, ingest.StreamIngest, ingest.StreamAudit, ingest.StreamDLQ,
				"KV_" + ingest.KVJobs, "KV_" + ingest.KVIndex, "KV_" + ingest.KVStudies} {
				push, _ := json.Marshal(map[string]any{"stream_name": s, "config": map[string]any{
					"durable_name": "x", "deliver_subject": ingest.SubjectAudit + "forged", "ack_policy": "none"}})
				for _, api := range []string{"CONSUMER.CREATE." + s + ".x", "CONSUMER.CREATE." + s + ".x.deid.events.>",
					"CONSUMER.DURABLE.CREATE." + s + ".x", "CONSUMER.CREATE." + s, "CONSUMER.INFO." + s + ".x",
					"CONSUMER.LIST." + s, "CONSUMER.NAMES." + s, "CONSUMER.MSG.NEXT." + s + ".x"} {
					if !tg.pubRefused(t, natsauth.Events, natsauth.ImportedAPIPrefix+"."+api, "_INBOX.x", push) {
						t.Errorf("the events reader requested %s", api)
					}
				}
				if s != ingest.StreamEvents && !tg.pubRefused(t, natsauth.Events, natsauth.ImportedAPIPrefix+".STREAM.INFO."+s, "_INBOX.x", nil) {
					t.Errorf("the events reader asked for %s's info", s)
				}
			}
			for _, api := range []string{"INFO", "STREAM.LIST", "STREAM.NAMES", "STREAM.MSG.GET." + ingest.StreamEvents,
				"DIRECT.GET." + ingest.StreamAudit, "DIRECT.GET.KV_" + ingest.KVJobs} {
				if !tg.pubRefused(t, natsauth.Events, natsauth.ImportedAPIPrefix+"."+api, "_INBOX.x", []byte(`{}`)) {
					t.Errorf("the events reader requested %s", api)
				}
			}
			for _, subj := range []string{"$JS.ACK." + ingest.StreamEvents + ".x.1.1.1.1.0", "deid.events.instance.done",
				ingest.SubjectJobStatus, ingest.SubjectDatasetRequest, ingest.SubjectStudyJobs} {
				if !tg.pubRefused(t, natsauth.Events, subj, "", []byte(`{}`)) {
					t.Errorf("the events reader published %s", subj)
				}
			}
			time.Sleep(500 * time.Millisecond) // answers in flight land before the snapshot
			tg.sameAs(t, before, "after the events reader's attempts")
		})

		t.Run("nobody but admin deletes or purges, and not even admin purges", func(t *testing.T) {
			tg.idle(t)
			before := tg.snapshot(t)
			victims := []string{
				"STREAM.PURGE." + ingest.StreamAudit, "STREAM.DELETE." + ingest.StreamAudit,
				"STREAM.PURGE." + ingest.StreamEvents, "STREAM.DELETE.KV_" + ingest.KVIndex, "STREAM.PURGE.KV_" + ingest.KVIndex,
				"STREAM.DELETE." + ingest.StreamIngest, "STREAM.PURGE." + ingest.StreamIngest,
				"CONSUMER.DELETE." + ingest.StreamIngest + "." + ingest.ConsumerName,
				"STREAM.UPDATE." + ingest.StreamAudit,
			}
			for _, r := range []natsauth.Role{natsauth.Worker, natsauth.Submitter, natsauth.Events, natsauth.Auditor, natsauth.Notifier} {
				for _, v := range victims {
					for _, pre := range []string{"$JS.API.", natsauth.ImportedAPIPrefix + "."} {
						if r == natsauth.Worker && v == "STREAM.UPDATE."+ingest.StreamAudit {
							continue // the worker keeps its streams' configuration current
						}
						if !tg.pubRefused(t, r, pre+v, "_INBOX.x", []byte(`{}`)) {
							t.Errorf("%s requested %s%s", r, pre, v)
						}
					}
				}
			}
			tg.sameAs(t, before, "after delete and purge attempts")
			// The administrator cannot purge either: deny_purge.
			_, js := tg.srv.natsAs(t, natsauth.Admin)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, s := range []string{ingest.StreamAudit, ingest.StreamEvents, ingest.StreamDLQ, ingest.StreamIngest} {
				st, err := js.Stream(ctx, s)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Purge(ctx); err == nil {
					t.Errorf("admin purged %s", s)
				}
				if s == ingest.StreamIngest {
					continue
				}
				if err := st.DeleteMsg(ctx, 1); err == nil {
					t.Errorf("admin deleted a message of %s", s)
				}
			}
			tg.sameAs(t, before, "after admin's purges")
		})

		t.Run("reply subjects cannot write into the service's streams", func(t *testing.T) {
			// A job submitted, done, then the same message again with reply
			// subjects on the service's streams: the acknowledgement goes
			// back to the submitter's account, not onto them.
			_, sjs := tg.fresh(t, natsauth.Submitter)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			job, _ := json.Marshal(ingest.StudyJob{JobID: "replies", Bucket: srv.cfg.inBucket, Prefix: "nothing-here/"})
			if _, err := sjs.Publish(ctx, ingest.SubjectStudyJobs, job, jetstream.WithMsgID("study/replies")); err != nil {
				t.Fatal(err)
			}
			for {
				st, err := ingest.RequestJobStatus(sjs.Conn(), "replies", 5*time.Second)
				if err == nil && st.Complete {
					break
				}
				if ctx.Err() != nil {
					t.Fatal("the empty job did not complete")
				}
				time.Sleep(50 * time.Millisecond)
			}
			tg.idle(t)
			before := tg.snapshot(t)
			for _, reply := range []string{ingest.SubjectJobDone, ingest.SubjectAudit + "job.done", ingest.SubjectInstanceJobs,
				"$KV." + ingest.KVJobs + ".job.replies", "$KV." + ingest.KVIndex + ".study.x.y", "$JS.API.STREAM.PURGE." + ingest.StreamAudit} {
				nc, _ := tg.fresh(t, natsauth.Submitter)
				m := nats.NewMsg(ingest.SubjectStudyJobs)
				m.Reply, m.Data = reply, job
				m.Header.Set(jetstream.MsgIDHeader, "study/replies")
				if err := nc.PublishMsg(m); err != nil {
					t.Fatal(err)
				}
				// A JetStream API answer as well.
				nc2, _ := tg.fresh(t, natsauth.Events)
				nc2.PublishRequest(natsauth.ImportedAPIPrefix+".STREAM.INFO."+ingest.StreamEvents, reply, nil)
				nc.Flush()
				nc2.Flush()
			}
			time.Sleep(500 * time.Millisecond) // answers in flight land before the snapshot
			tg.sameAs(t, before, "after requests with reply subjects on the service's streams")
		})

		t.Run("clients say why NATS refuses them", func(t *testing.T) {
			code, _, errOut := runDeid(t, "submit", "--bucket", srv.cfg.inBucket, "--nats-url", srv.natsURL, "--data", t.TempDir(), "--timeout", "2s")
			if code != exitRejected || !strings.Contains(errOut, "Authorization Violation") || !strings.Contains(errOut, "--nats-creds") {
				t.Errorf("submit without credentials: %d %q", code, errOut)
			}
			code, _, errOut = runDeid(t, "submit", "--bucket", srv.cfg.inBucket, "--nats-url", srv.natsURL,
				"--nats-creds", natsauth.File(srv.natsCredDir, natsauth.Events), "--timeout", "2s")
			if code != exitRejected || !strings.Contains(errOut, "NATS refused it") || !strings.Contains(errOut, ingest.SubjectStudyJobs) {
				t.Errorf("submit with the events reader's credentials: %d %q", code, errOut)
			}
			code, _, errOut = runDeid(t, "dataset", "list", "--nats-url", srv.natsURL, "--nats-creds", natsauth.File(srv.natsCredDir, natsauth.Submitter))
			if code != exitRejected {
				t.Errorf("dataset list with a submitter's credentials: %d %q", code, errOut)
			}
		})

		t.Run("nothing lost", func(t *testing.T) {
			tg.uploadAndAwait(t, "Doe^Jane_MRN123/after.dcm")
		})
	})
}

// unkeyedIndexHash is how index keys were made before they were keyed.
func unkeyedIndexHash(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:16])
}

// scanIndexKeys lists the index's keys with batched direct gets (the
// auditor's reads).
func scanIndexKeys(ctx context.Context, js jetstream.JetStream, keys *[]string) error {
	nc := js.Conn()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(map[string]any{"seq": 1, "next_by_subj": "$KV." + ingest.KVIndex + ".>", "batch": 1000})
	if err := nc.PublishRequest(js.Options().APIPrefix+".DIRECT.GET.KV_"+ingest.KVIndex, inbox, req); err != nil {
		return err
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return err
		}
		if m.Header.Get("Status") != "" {
			return nil
		}
		*keys = append(*keys, strings.TrimPrefix(m.Header.Get("Nats-Subject"), "$KV."+ingest.KVIndex+"."))
	}
}

// After an administrator deletes the work queue's consumer, the index
// bucket or the work queue itself, readiness fails, the service recreates
// them, says so in its log and its metrics, and uploads are processed
// again (they were accepted and never processed, with /readyz ready).
func TestNATSTopologyRecreated(t *testing.T) {
	forEachNATS(t, func(c *serveConfig) { c.topologyCheck = time.Hour /* /readyz finds it first */ }, func(t *testing.T, tg *natsTarget) {
		tg.uploadAndAwait(t, "Doe^Jane/one.dcm")
		_, js := tg.srv.natsAs(t, natsauth.Admin)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, c := range []struct {
			object  string
			del     func() error
			metrics []string
		}{
			{"consumer " + ingest.ConsumerName, func() error { return js.DeleteConsumer(ctx, ingest.StreamIngest, ingest.ConsumerName) },
				[]string{"consumer " + ingest.ConsumerName}},
			{"bucket " + ingest.KVIndex, func() error { return js.DeleteKeyValue(ctx, ingest.KVIndex) }, []string{"bucket " + ingest.KVIndex}},
			{"stream " + ingest.StreamIngest, func() error { return js.DeleteStream(ctx, ingest.StreamIngest) },
				[]string{"stream " + ingest.StreamIngest, "consumer " + ingest.ConsumerName}},
		} {
			if err := c.del(); err != nil {
				t.Fatalf("admin deleting %s: %v", c.object, err)
			}
			// The workers notice a deleted consumer at once (their pulls
			// are answered "consumer deleted") and ask for it to be
			// recreated, which may be done before this asks; a deleted
			// stream or bucket is recreated after a pause.
			code, body := readyz(t, tg.srv)
			if code == http.StatusOK && c.object != "consumer "+ingest.ConsumerName || code != http.StatusOK && !strings.Contains(body, c.object) {
				t.Errorf("/readyz with %s deleted: %d %q", c.object, code, body)
			}
			// Recreated, logged, counted: ready again.
			deadline := time.Now().Add(30 * time.Second)
			for {
				code, _ := readyz(t, tg.srv)
				metrics := metricsText(t, tg.srv)
				counted := true
				for _, m := range c.metrics {
					counted = counted && !strings.Contains(metrics, fmt.Sprintf("deid_topology_recreated_total{object=%q} 0\n", m))
				}
				if code == http.StatusOK && counted && strings.Contains(tg.logs.String(), `"msg":"recreated `+c.object) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s not recreated, logged and counted within 30 s: /readyz %d", c.object, code)
				}
				time.Sleep(50 * time.Millisecond)
			}
			tg.uploadAndAwait(t, "Doe^Jane/after "+c.object+".dcm")
		}
		// Each recreation counted once.
		metrics := metricsText(t, tg.srv)
		for obj, n := range map[string]int{"consumer " + ingest.ConsumerName: 2, "bucket " + ingest.KVIndex: 1, "stream " + ingest.StreamIngest: 1,
			"stream " + ingest.StreamAudit: 0} {
			if want := fmt.Sprintf("deid_topology_recreated_total{object=%q} %d\n", obj, n); !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q", strings.TrimSpace(want))
			}
		}
	})
}

func readyz(t *testing.T, srv *service) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + srv.httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func metricsText(t *testing.T, srv *service) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A full work queue refuses new uploads (503) and keeps every job it
// accepted; a full event or audit stream refuses the event or record, so
// the job is not acknowledged, and completes once there is room: nothing
// accepted is dropped.
func TestNATSStreamOverflow(t *testing.T) {
	forEachNATS(t, func(c *serveConfig) { c.limits.QueueMsgs = 3 }, func(t *testing.T, tg *natsTarget) {
		_, js := tg.srv.natsAs(t, natsauth.Admin)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// The workers take nothing while the consumer is paused.
		if _, err := js.PauseConsumer(ctx, ingest.StreamIngest, ingest.ConsumerName, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(corpusDir(t), "ct_small_explicit_le.dcm"))
		if err != nil {
			t.Fatal(err)
		}
		mc := tg.srv.s3Client(t)
		put := func(i int) error {
			b := bytes.ReplaceAll(data, []byte("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"),
				[]byte(fmt.Sprintf("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.%05d", i)))
			_, err := mc.PutObject(ctx, tg.srv.cfg.inBucket, fmt.Sprintf("Doe^Jane/%d.dcm", i), bytes.NewReader(b), int64(len(b)),
				minio.PutObjectOptions{})
			return err
		}
		for i := 0; i < 3; i++ {
			if err := put(i); err != nil {
				t.Fatalf("upload %d of 3 (the queue holds 3): %v", i, err)
			}
		}
		err = put(3)
		if resp := minio.ToErrorResponse(err); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a fourth upload into a full work queue: %v (status %d), want 503", err, resp.StatusCode)
		}
		st, _ := js.Stream(ctx, ingest.StreamIngest)
		if info, _ := st.Info(ctx); info.State.Msgs != 3 {
			t.Errorf("the work queue holds %d jobs, want the 3 accepted", info.State.Msgs)
		}
		// (A consumer's pending count may lag a message just stored: the
		// outputs are counted instead.)
		outputs := func(want int) {
			t.Helper()
			deadline := time.Now().Add(time.Minute)
			for countObjects(t, mc, tg.srv.cfg.outBucket) < want {
				if time.Now().After(deadline) {
					t.Fatalf("%d outputs, want %d: %s", countObjects(t, mc, tg.srv.cfg.outBucket), want, workState(js))
				}
				time.Sleep(50 * time.Millisecond)
			}
			awaitDrained(t, js, time.Minute)
			if n := countObjects(t, mc, tg.srv.cfg.outBucket); n != want {
				t.Errorf("%d outputs, want %d", n, want)
			}
		}
		if _, err := js.ResumeConsumer(ctx, ingest.StreamIngest, ingest.ConsumerName); err != nil {
			t.Fatal(err)
		}
		outputs(3)
		// The client retries the refused upload: accepted now, processed.
		if err := put(3); err != nil {
			t.Fatalf("the retried upload: %v", err)
		}
		outputs(4)

		// A full event stream: the instance's event is refused, its job is
		// not acknowledged (it stays in the work queue, redelivered), and
		// it completes once an administrator makes room.
		ev, _ := js.Stream(ctx, ingest.StreamEvents)
		info, _ := ev.Info(ctx)
		cfg := info.Config
		cfg.MaxMsgs = int64(info.State.Msgs)
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if err := put(4); err != nil {
			t.Fatal(err)
		}
		cons, _ := js.Consumer(ctx, ingest.StreamIngest, ingest.ConsumerName)
		deadline := time.Now().Add(time.Minute)
		for {
			ci, err := cons.Info(ctx)
			if err == nil && ci.NumRedelivered > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the job whose event was refused was not redelivered: %+v", ci)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if qi, _ := st.Info(ctx); qi.State.Msgs != 1 {
			t.Errorf("the work queue holds %d jobs while the event stream is full, want the 1 not acknowledged", qi.State.Msgs)
		}
		cfg.MaxMsgs = -1
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		awaitDrained(t, js, 2*time.Minute)
		if qi, _ := st.Info(ctx); qi.State.Msgs != 0 {
			t.Errorf("%d jobs left in the work queue", qi.State.Msgs)
		}
		done := 0
		for _, m := range streamMessages(t, js, ingest.StreamEvents) {
			if m.Subject() == ingest.SubjectInstanceDone {
				done++
			}
		}
		if done != 5 {
			t.Errorf("%d instance.done events for 5 accepted uploads", done)
		}

		// A full audit stream likewise: the job waits for its record.
		au, _ := js.Stream(ctx, ingest.StreamAudit)
		ainfo, _ := au.Info(ctx)
		acfg := ainfo.Config
		acfg.MaxMsgs = int64(ainfo.State.Msgs)
		if _, err := js.UpdateStream(ctx, acfg); err != nil {
			t.Fatal(err)
		}
		before, _ := cons.Info(ctx)
		if err := put(5); err != nil {
			t.Fatal(err)
		}
		deadline = time.Now().Add(time.Minute)
		for {
			ci, err := cons.Info(ctx)
			if err == nil && ci.NumRedelivered > before.NumRedelivered {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the job whose audit record was refused was not redelivered: %+v", ci)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if qi, _ := st.Info(ctx); qi.State.Msgs != 1 {
			t.Errorf("the work queue holds %d jobs while the audit stream is full, want the 1 not acknowledged", qi.State.Msgs)
		}
		acfg.MaxMsgs = -1
		if _, err := js.UpdateStream(ctx, acfg); err != nil {
			t.Fatal(err)
		}
		awaitDrained(t, js, 2*time.Minute)
		audited := 0
		for _, m := range streamMessages(t, js, ingest.StreamAudit) {
			if m.Subject() == ingest.SubjectAudit+"instance.done" {
				audited++
			}
		}
		if audited != 6 {
			t.Errorf("%d instance.done audit records for 6 accepted uploads", audited)
		}
	})
}

// The compose and Kubernetes NATS configurations, run by nats-server as
// shipped (only the addresses moved to free loopback ports and the store
// to a temporary directory), refuse a client without credentials and let
// a role's key in.
func TestShippedNATSConfigsRefuseAnonymous(t *testing.T) {
	y, err := os.ReadFile("../../deploy/k8s/nats/nats.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k8s, err := natsauth.ConfigMapKey(string(y), "nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	compose, err := os.ReadFile("../../deploy/compose/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	for name, conf := range map[string]string{"compose": string(compose), "k8s": k8s} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cr, _, err := natsauth.Ensure(filepath.Join(dir, "credentials"))
			if err != nil {
				t.Fatal(err)
			}
			addr, mon, cluster := freePort(t), freePort(t), freePort(t)
			local := strings.NewReplacer("0.0.0.0:4222", addr, "0.0.0.0:8222", mon, "127.0.0.1:8222", mon, "0.0.0.0:6222", cluster,
				"store_dir: /data", fmt.Sprintf("store_dir: %q", filepath.Join(dir, "js"))).Replace(conf)
			if strings.Contains(local, "0.0.0.0") {
				t.Fatalf("an address left on every interface:\n%s", local)
			}
			for f, body := range map[string]string{"nats.conf": local, "nats-auth.conf": shippedAuth(t), "auth.conf": shippedAuth(t)} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// The routes as the shipped command lines give them: here the
			// node's own (a JetStream cluster needs routes).
			startProcess(t, append(cr.Env(), "POD_NAME=nats-0"), serverBinary(t, "nats-server"), "-c", filepath.Join(dir, "nats.conf"),
				"--name", "nats-0", "--routes", "nats-route://route:"+cr.RoutePassword+"@"+cluster)
			// A JetStream cluster of one node never reports healthy: its
			// client port is what is tried.
			waitTCP(t, addr)
			url := "nats://" + addr
			if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
				nc.Close()
				t.Error("a client without credentials was let in")
			} else if !isAuthError(err) {
				t.Errorf("refused, but not as an authorization violation: %v", err)
			}
			for _, r := range natsauth.Roles() {
				nc, _ := connectRole(t, url, cr.Dir, r)
				nc.Close()
			}
		})
	}
}
