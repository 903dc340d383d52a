// Package natsauth defines who may do what on the service's NATS system:
// the roles (worker, admin, submitter, events reader, auditor, object-store
// notifier), the NATS accounts they live in, the subjects each may publish
// and subscribe to, and what the service's account exports to the others.
// From that one table it renders the server configuration (the embedded
// server's, and the file shipped for nats-server in deploy/), generates
// each role's NKey credentials, and gives clients their connect options.
//
// Why accounts and not only user permissions: in one account, any client
// that may publish to a stream subject, or call any JetStream API, chooses
// the reply subject of its request, and the server publishes the answer
// (a PubAck, an API response) there as the account itself, where every
// stream captures it: a submitter could overwrite any key-value entry or
// add messages to the public event stream. A request that crosses from
// another account has its reply mapped back into that account, so the
// service's subjects are reachable from outside only through the exports
// listed here.
package natsauth

import (
	"fmt"
	"slices"
	"sort"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
)

// Role is one kind of NATS client of the deployment.
type Role string

// The roles. Worker and Admin share the service's account; every other
// role has an account of its own.
const (
	// Worker is `deid serve`: the work queue, its streams and buckets.
	Worker Role = "worker"
	// Admin may do anything in the service's account, including deleting
	// streams, buckets and the consumer (which the workers recreate).
	Admin Role = "admin"
	// Submitter submits prefixes (deid.jobs.study) and dataset requests
	// (deid.datasets.request) and asks a job's progress by its id
	// (deid.status.job), answered with counts only.
	Submitter Role = "submitter"
	// Events reads the public events (deid.events.>): live by
	// subscription, DEID_EVENTS' history by direct get. No consumers.
	Events Role = "events"
	// Auditor reads the trusted-side records: the audit stream, the
	// index and job buckets (read-only), and the public events.
	Auditor Role = "auditor"
	// Notifier is an object store announcing created objects on
	// deid.ingest.objects (MinIO, versitygw, the embedded endpoint).
	Notifier Role = "notifier"
)

// Roles lists every role, in the order credentials are generated and
// shown.
func Roles() []Role { return []Role{Worker, Admin, Submitter, Events, Auditor, Notifier} }

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown NATS role %q (one of worker, admin, submitter, events, auditor, notifier)", s)
}

// ServiceAccount is the account of the streams, the work queue and the
// key-value buckets.
const ServiceAccount = "DEID"

// ImportedAPIPrefix is where the accounts other than the service's find
// the JetStream API subjects they import (the service account's $JS.API).
const ImportedAPIPrefix = "$JS.deid.API"

// Account is the NATS account of the role's users.
func (r Role) Account() string {
	switch r {
	case Worker, Admin:
		return ServiceAccount
	case Submitter:
		return "SUBMIT"
	case Events:
		return "EVENTS"
	case Auditor:
		return "AUDIT"
	case Notifier:
		return "NOTIFY"
	}
	return ""
}

// APIPrefix is the JetStream API prefix the role's clients use.
func (r Role) APIPrefix() string {
	if r.Account() == ServiceAccount {
		return "$JS.API"
	}
	return ImportedAPIPrefix
}

// EnvVar is the environment variable the shipped server configuration
// reads the role's public NKey from.
func (r Role) EnvVar() string { return "DEID_NKEY_" + upper(string(r)) }

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// grant is one subject of the service's account another account may use:
// a service (the role publishes or requests on it) or a stream (the role
// subscribes to it). Local is the subject in the importing account.
type grant struct {
	subject string
	local   string
	stream  bool // a stream export (messages flow to the importer)
	// multi: a service answered with several messages (pull consumer
	// deliveries, batched direct gets).
	multi bool
}

func service(subject string) grant { return grant{subject: subject, local: subject} }

// api is a JetStream API subject, imported under ImportedAPIPrefix.
func api(rest string, multi bool) grant {
	return grant{subject: "$JS.API." + rest, local: ImportedAPIPrefix + "." + rest, multi: multi}
}

// readStream is what a reader needs to read a stream without a consumer:
// its info and direct gets (by sequence, batched, or the last message of
// a subject). A consumer in the service's account could deliver copies of
// the stream to any subject someone listens to there; direct gets answer
// only the requester.
func readStream(name string) []grant {
	return []grant{api("STREAM.INFO."+name, false), api("DIRECT.GET."+name, true), api("DIRECT.GET."+name+".>", true)}
}

// grants is what each role outside the service's account imports.
func grants(r Role) []grant {
	switch r {
	case Submitter:
		return []grant{
			service(ingest.SubjectStudyJobs),
			service(ingest.SubjectDatasetRequest),
			// A job's progress, asked of the workers by its id and
			// answered with counts only. Not the job bucket: its stream
			// info lists every job id (subjects_filter) and a record
			// names the job's input bucket and prefix.
			service(ingest.SubjectJobStatus),
		}
	case Notifier:
		return []grant{service(ingest.SubjectObjects)}
	case Events:
		// Live events by subscription, history by direct get. No
		// consumer: the API cannot tell an ordered consumer from a
		// durable one (which stays and costs the service), nor a pull
		// consumer from a push consumer delivering, in the service's
		// account, to whatever subject its creator names.
		return append([]grant{{subject: "deid.events.>", local: "deid.events.>", stream: true}}, readStream(ingest.StreamEvents)...)
	case Auditor:
		g := []grant{{subject: "deid.events.>", local: "deid.events.>", stream: true}}
		for _, s := range []string{ingest.StreamAudit, ingest.StreamEvents, "KV_" + ingest.KVIndex, "KV_" + ingest.KVJobs} {
			g = append(g, readStream(s)...)
		}
		return g
	}
	return nil
}

// access is a user's permissions; nil lists mean no restriction.
type access struct {
	pub, sub  []string
	responses bool // may answer requests it received (any reply subject)
}

// permissions are the role's user permissions within its account.
func permissions(r Role) *access {
	switch r {
	case Admin:
		return nil
	case Worker:
		return workerAccess()
	}
	a := &access{sub: []string{"_INBOX.>"}}
	for _, g := range grants(r) {
		if g.stream {
			a.sub = append(a.sub, g.local)
		} else {
			a.pub = append(a.pub, g.local)
		}
	}
	return a
}

// workerAccess is what `deid serve` does, measured by running it (the
// service tests fail on any permission violation in its log): its own
// streams, buckets and consumer, no delete or purge of any of them.
func workerAccess() *access {
	streams := []string{ingest.StreamIngest, ingest.StreamEvents, ingest.StreamAudit, ingest.StreamDLQ}
	kvs := []string{ingest.KVStudies, ingest.KVJobs, ingest.KVIndex}
	pub := []string{
		// Creating a key-value bucket asks for the account's limits first.
		"$JS.API.INFO",
		ingest.SubjectInstanceJobs, ingest.SubjectDatasetJobs,
		// With an external NATS and the embedded S3 endpoint, the workers'
		// connection announces the endpoint's uploads.
		ingest.SubjectObjects,
		"deid.events.>", ingest.SubjectAudit + ">", ingest.SubjectDLQPrefix + ">",
	}
	for _, s := range streams {
		pub = append(pub, "$JS.API.STREAM.INFO."+s, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s)
	}
	for _, b := range kvs {
		st := "KV_" + b
		pub = append(pub, "$KV."+b+".>",
			"$JS.API.STREAM.INFO."+st, "$JS.API.STREAM.CREATE."+st, "$JS.API.STREAM.UPDATE."+st,
			"$JS.API.DIRECT.GET."+st+".>",
			// Listing keys: an ordered consumer, its flow control, and
			// its removal when the listing ends (a bucket's stream has
			// no other consumers; the work queue's is admin's to delete).
			"$JS.API.CONSUMER.CREATE."+st+".>", "$JS.FC."+st+".>", "$JS.API.CONSUMER.DELETE."+st+".*")
	}
	c := ingest.StreamIngest + "." + ingest.ConsumerName
	pub = append(pub,
		"$JS.API.CONSUMER.INFO."+c, "$JS.API.CONSUMER.CREATE."+c, "$JS.API.CONSUMER.MSG.NEXT."+c, "$JS.ACK."+c+".>",
		// Dead-lettering: read the job that reached MaxDeliver, copy it,
		// remove it from the work queue.
		"$JS.API.STREAM.MSG.GET."+ingest.StreamIngest, "$JS.API.STREAM.MSG.DELETE."+ingest.StreamIngest)
	sub := []string{"_INBOX.>", ingest.SubjectDatasetRequest, ingest.SubjectJobStatus,
		"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + c}
	// Answers to dataset requests go to the requester's (mapped) reply
	// subject.
	return &access{pub: pub, sub: sub, responses: true}
}

// exportsOfService are the service account's exports: every grant of
// every role, each subject once with the accounts that may import it.
type export struct {
	grant
	accounts []string
}

func exportsOfService() []export {
	by := map[string]*export{}
	for _, r := range Roles() {
		for _, g := range grants(r) {
			e, ok := by[g.subject]
			if !ok {
				e = &export{grant: g}
				by[g.subject] = e
			}
			if !slices.Contains(e.accounts, r.Account()) {
				e.accounts = append(e.accounts, r.Account())
			}
		}
	}
	out := make([]export, 0, len(by))
	for _, e := range by {
		sort.Strings(e.accounts)
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].subject < out[j].subject })
	return out
}
