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
	"go.uber.org/zap"
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
	Dedup  time.Duration
	Limits Limits
	// Log receives what Setup created or changed (nil: nothing logged).
	Log *zap.Logger
}

// Limits are the size limits of the streams and key-value buckets, in
// bytes (QueueMsgs: messages). A full stream or bucket refuses new
// messages (discard new) instead of dropping the oldest: an upload is
// answered 503, a job that cannot record its outcome is not acknowledged
// and comes back, and nothing that was accepted is lost.
type Limits struct {
	QueueMsgs, QueueBytes             int64
	EventsBytes, AuditBytes, DLQBytes int64
	IndexBytes, JobsBytes             int64
	StudiesBytes                      int64
}

// DefaultLimits fit a JetStream file store of 10 GB per node (Budget:
// 7 GiB of limits and 1 GiB of headroom): a million jobs waiting, and
// tens of millions of instances' events, audit records and index entries.
func DefaultLimits() Limits {
	return Limits{QueueMsgs: 1_000_000, QueueBytes: 1 << 30, EventsBytes: 2 << 30, AuditBytes: 2 << 30, DLQBytes: 256 << 20,
		IndexBytes: 1 << 30, JobsBytes: 512 << 20, StudiesBytes: 256 << 20}
}

// Budget is the file store the limits reserve on each node, with 1 GiB
// of headroom: a server's max_file_store must be at least this for the
// streams to be created.
func (l Limits) Budget() int64 {
	return l.QueueBytes + l.EventsBytes + l.AuditBytes + l.DLQBytes + l.IndexBytes + l.JobsBytes + l.StudiesBytes + 1<<30
}

// DefaultTopology is for one machine.
func DefaultTopology() Topology {
	return Topology{Replicas: 1, AckWait: 60 * time.Second, MaxDeliver: 10, MaxAckPending: 256, Dedup: 2 * time.Hour,
		Limits: DefaultLimits()}
}

// streams are the streams' configurations, key-value buckets' streams
// aside.
func (t Topology) streams() []jetstream.StreamConfig {
	l := t.Limits
	return []jetstream.StreamConfig{
		// The work queue: an acknowledged job is removed by the server, a
		// dead-lettered one by the worker that copied it to DEID_DLQ (so
		// it may delete messages; nobody may purge it).
		{Name: StreamIngest, Subjects: []string{SubjectObjects, SubjectStudyJobs, SubjectInstanceJobs, SubjectDatasetJobs},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup,
			MaxMsgs: l.QueueMsgs, MaxBytes: l.QueueBytes, Discard: jetstream.DiscardNew, DenyPurge: true},
		// Readers in other accounts read events and audit records with
		// direct gets (AllowDirect), not consumers.
		{Name: StreamEvents, Subjects: []string{"deid.events.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup, MaxAge: 30 * 24 * time.Hour,
			MaxBytes: l.EventsBytes, Discard: jetstream.DiscardNew, DenyDelete: true, DenyPurge: true, AllowDirect: true},
		{Name: StreamAudit, Subjects: []string{SubjectAudit + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup, MaxAge: 90 * 24 * time.Hour,
			MaxBytes: l.AuditBytes, Discard: jetstream.DiscardNew, DenyDelete: true, DenyPurge: true, AllowDirect: true},
		{Name: StreamDLQ, Subjects: []string{SubjectDLQPrefix + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup,
			MaxBytes: l.DLQBytes, Discard: jetstream.DiscardNew, DenyDelete: true, DenyPurge: true},
	}
}

// buckets are the key-value buckets. Progress records expire: a study's
// marks after a week (a study that grows later starts a new count), a
// job's after 30 days. nats.go makes a bucket's stream discard new and
// deny deletes; purging a key needs roll-ups, which deny_purge forbids,
// so only permissions keep the stream purge API from anyone but admin.
func (t Topology) buckets() []jetstream.KeyValueConfig {
	l := t.Limits
	kvs := []jetstream.KeyValueConfig{{Bucket: KVStudies, TTL: 7 * 24 * time.Hour, MaxBytes: l.StudiesBytes},
		{Bucket: KVJobs, TTL: 30 * 24 * time.Hour, MaxBytes: l.JobsBytes}, {Bucket: KVIndex, MaxBytes: l.IndexBytes}}
	for i := range kvs {
		kvs[i].Replicas, kvs[i].Storage, kvs[i].History = t.Replicas, jetstream.FileStorage, 1
	}
	return kvs
}

// Objects are the names of what the service owns in JetStream, as
// readiness and the recreation metric name them.
func Objects() []string {
	return []string{"stream " + StreamIngest, "stream " + StreamEvents, "stream " + StreamAudit, "stream " + StreamDLQ,
		"bucket " + KVStudies, "bucket " + KVJobs, "bucket " + KVIndex, "consumer " + ConsumerName}
}

// Setup creates the streams, the durable pull consumer shared by all
// workers, and the key-value buckets, where they are missing. Every
// process runs it at start. What exists is looked up, not created again;
// it is changed only where that is safe and only toward what this
// version needs: subjects it reads are added, deny_delete and deny_purge
// are set (they can never be unset), an unlimited size gets the limit
// (unless the stream already holds more), and discard old becomes
// discard new. A limit an operator set is kept, as are replicas and
// retention: one worker started with other flags must not reconfigure a
// running cluster. Each change is logged.
func Setup(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.Consumer, error) {
	cons, _, err := setup(ctx, js, t)
	return cons, err
}

// setup is Setup, also returning what it created (by Objects' names).
func setup(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.Consumer, []string, error) {
	log := t.Log
	if log == nil {
		log = zap.NewNop()
	}
	var created []string
	// Existing things are looked up, not created again: a lookup is
	// answered by the stream's leader, while a create goes through the
	// meta leader's placement, which refuses while it has not heard from
	// a peer ("no suitable peers for placement") and would stop a worker
	// restarted during a node's outage.
	for _, sc := range t.streams() {
		st, err := js.Stream(ctx, sc.Name)
		switch {
		case err == nil:
			err = reconcile(ctx, js, st.CachedInfo(), sc, log)
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another worker won the race
				err = nil
			} else if err == nil {
				created = append(created, "stream "+sc.Name)
			}
		}
		if err != nil {
			return nil, created, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, kv := range t.buckets() {
		st, err := js.Stream(ctx, "KV_"+kv.Bucket)
		switch {
		case err == nil:
			want := st.CachedInfo().Config
			want.MaxBytes, want.Discard, want.DenyDelete = kv.MaxBytes, jetstream.DiscardNew, true
			err = reconcile(ctx, js, st.CachedInfo(), want, log)
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = js.CreateKeyValue(ctx, kv)
			if errors.Is(err, jetstream.ErrBucketExists) {
				err = nil
			} else if err == nil {
				created = append(created, "bucket "+kv.Bucket)
			}
		}
		if err != nil {
			return nil, created, fmt.Errorf("key-value %s: %w", kv.Bucket, err)
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
		} else if err == nil {
			created = append(created, "consumer "+ConsumerName)
		}
	}
	if err != nil {
		return nil, created, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	for _, c := range created {
		log.Info("created "+c, zap.String("object", c))
	}
	return cons, created, nil
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

// reconcile brings an existing stream toward want where that is safe
// (see Setup) and logs what it changed.
func reconcile(ctx context.Context, js jetstream.JetStream, info *jetstream.StreamInfo, want jetstream.StreamConfig, log *zap.Logger) error {
	cfg := info.Config
	var changed []string
	for _, w := range want.Subjects {
		if !slices.Contains(cfg.Subjects, w) {
			cfg.Subjects = append(cfg.Subjects, w)
			changed = append(changed, "subject "+w)
		}
	}
	if want.DenyDelete && !cfg.DenyDelete {
		cfg.DenyDelete = true
		changed = append(changed, "deny_delete")
	}
	// Roll-ups (key-value purges) and deny_purge exclude each other.
	if want.DenyPurge && !cfg.DenyPurge && !cfg.AllowRollup {
		cfg.DenyPurge = true
		changed = append(changed, "deny_purge")
	}
	if want.MaxBytes > 0 && cfg.MaxBytes <= 0 {
		if int64(info.State.Bytes) < want.MaxBytes {
			cfg.MaxBytes = want.MaxBytes
			changed = append(changed, fmt.Sprintf("max_bytes %d", want.MaxBytes))
		} else {
			log.Warn("stream holds more than the size limit; left unlimited", zap.String("stream", cfg.Name),
				zap.Uint64("bytes", info.State.Bytes), zap.Int64("limit", want.MaxBytes))
		}
	}
	if want.MaxMsgs > 0 && cfg.MaxMsgs <= 0 {
		if int64(info.State.Msgs) < want.MaxMsgs {
			cfg.MaxMsgs = want.MaxMsgs
			changed = append(changed, fmt.Sprintf("max_msgs %d", want.MaxMsgs))
		} else {
			log.Warn("stream holds more messages than the limit; left unlimited", zap.String("stream", cfg.Name),
				zap.Uint64("msgs", info.State.Msgs), zap.Int64("limit", want.MaxMsgs))
		}
	}
	if want.AllowDirect && !cfg.AllowDirect {
		cfg.AllowDirect = true
		changed = append(changed, "allow_direct")
	}
	if want.Discard == jetstream.DiscardNew && cfg.Discard != jetstream.DiscardNew {
		cfg.Discard = jetstream.DiscardNew
		changed = append(changed, "discard new")
	}
	if len(changed) == 0 {
		return nil
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return err
	}
	log.Info("updated an existing stream", zap.String("stream", cfg.Name), zap.Strings("changes", changed))
	return nil
}

// Missing lists what the workers need in JetStream and do not find, by
// Objects' names: a stream, a bucket or the work queue's consumer that
// someone deleted. An error means JetStream did not answer (then nothing
// can be said).
func Missing(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	var missing []string
	names := []string{StreamIngest, StreamEvents, StreamAudit, StreamDLQ, "KV_" + KVStudies, "KV_" + KVJobs, "KV_" + KVIndex}
	objs := Objects()
	for i, n := range names {
		_, err := js.Stream(ctx, n)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = append(missing, objs[i])
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", objs[i], err)
		}
	}
	_, err := js.Consumer(ctx, StreamIngest, ConsumerName)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		missing = append(missing, objs[len(objs)-1])
	} else if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	return missing, nil
}
