package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology configures the streams, the shared consumer and the key-value
// buckets. Replicas is 1 on one machine and 3 on a cluster.
type Topology struct {
	Replicas   int
	AckWait    time.Duration // a job not acknowledged (or heartbeated) within this is redelivered
	MaxDeliver int           // deliveries before a job is dead-lettered
	// MaxAckPending bounds the jobs in flight across all workers.
	MaxAckPending int
	// Dedup is the window in which a repeated Msg-Id is dropped.
	Dedup time.Duration
}

// DefaultTopology is for one machine.
func DefaultTopology() Topology {
	return Topology{Replicas: 1, AckWait: 60 * time.Second, MaxDeliver: 10, MaxAckPending: 256, Dedup: 2 * time.Hour}
}

// Setup creates the streams, the durable pull consumer shared by all
// workers, and the key-value buckets, where they are missing. Every
// process runs it at start. What exists is left as it is: an operator may
// have tuned it (replicas, limits), and one worker started with other
// flags must not reconfigure a running cluster.
func Setup(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.Consumer, error) {
	streams := []jetstream.StreamConfig{
		{Name: StreamIngest, Subjects: []string{SubjectObjects, SubjectStudyJobs, SubjectInstanceJobs, SubjectDatasetJobs},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup},
		{Name: StreamEvents, Subjects: []string{"deid.events.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup, MaxAge: 30 * 24 * time.Hour},
		{Name: StreamAudit, Subjects: []string{SubjectAudit + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup, MaxAge: 90 * 24 * time.Hour},
		{Name: StreamDLQ, Subjects: []string{SubjectDLQPrefix + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup},
	}
	// Existing things are looked up, not created again: a lookup is
	// answered by the stream's leader, while a create goes through the
	// meta leader's placement, which refuses while it has not heard from
	// a peer ("no suitable peers for placement") and would stop a worker
	// restarted during a node's outage.
	for _, sc := range streams {
		st, err := js.Stream(ctx, sc.Name)
		switch {
		case err == nil:
			err = addSubjects(ctx, js, st.CachedInfo().Config, sc.Subjects)
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another worker won the race
				err = nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	// Progress records expire: a study's marks after a week (a study that
	// grows later starts a new count), a job's after 30 days.
	for _, kv := range []jetstream.KeyValueConfig{{Bucket: KVStudies, TTL: 7 * 24 * time.Hour}, {Bucket: KVJobs, TTL: 30 * 24 * time.Hour},
		{Bucket: KVIndex}} {
		kv.Replicas, kv.Storage, kv.History = t.Replicas, jetstream.FileStorage, 1
		_, err := js.KeyValue(ctx, kv.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			_, err = js.CreateKeyValue(ctx, kv)
			if errors.Is(err, jetstream.ErrBucketExists) {
				err = nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("key-value %s: %w", kv.Bucket, err)
		}
	}
	cons, err := js.Consumer(ctx, StreamIngest, ConsumerName)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = js.CreateConsumer(ctx, StreamIngest, jetstream.ConsumerConfig{
			Durable:       ConsumerName,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       t.AckWait,
			MaxDeliver:    t.MaxDeliver,
			MaxAckPending: t.MaxAckPending,
		})
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = js.Consumer(ctx, StreamIngest, ConsumerName)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	return cons, nil
}

// SetupRetrying is Setup tried until it succeeds or ctx ends, each attempt
// bounded by attempt: during a leader election a JetStream API request
// can go unanswered, and a worker (re)started then must wait it out, not
// hang on one request or give up.
func SetupRetrying(ctx context.Context, js jetstream.JetStream, t Topology, attempt time.Duration) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := retry(ctx, attempt, 1000, func(ctx context.Context) error {
		var err error
		cons, err = Setup(ctx, js, t)
		if err != nil && !electionError(err) {
			return stopRetry{err}
		}
		return err
	})
	return cons, err
}

// jsErrClusterNoPeers is nats-server's JSClusterNoPeersErrF ("no suitable
// peers for placement"), which nats.go has no constant for.
const jsErrClusterNoPeers jetstream.ErrorCode = 10005

// electionError reports an error that a JetStream cluster gives while it
// elects leaders or a node rejoins: an unanswered request, "temporarily
// unavailable" (503), no responder for the JetStream API (a node still
// starting has none, nor has a server without JetStream: the startup
// deadline tells them apart), or no peers to place a new stream on while a
// node is away (on a cluster too small for the replicas this stays until
// the deadline). Anything else (JetStream not enabled for the account, a
// conflicting configuration) is reported at once.
func electionError(err error) bool {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return false // also a 503, but it stays
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders):
		return true
	case errors.As(err, &api):
		return api.Code == http.StatusServiceUnavailable || api.ErrorCode == jsErrClusterNoPeers
	}
	return false
}

// addSubjects adds to an existing stream the subjects a newer version
// reads, changing nothing else of its configuration.
func addSubjects(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, want []string) error {
	missing := false
	for _, w := range want {
		if !slices.Contains(cfg.Subjects, w) {
			cfg.Subjects = append(cfg.Subjects, w)
			missing = true
		}
	}
	if !missing {
		return nil
	}
	_, err := js.UpdateStream(ctx, cfg)
	return err
}
