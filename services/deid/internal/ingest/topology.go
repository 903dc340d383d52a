package ingest

import (
	"context"
	"fmt"
	"time"

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
	return Topology{Replicas: 1, AckWait: 60 * time.Second, MaxDeliver: 5, MaxAckPending: 256, Dedup: 2 * time.Hour}
}

// Setup creates or updates the streams, the durable pull consumer shared by
// all workers, and the key-value buckets. Every process runs it at start;
// it is idempotent.
func Setup(ctx context.Context, js jetstream.JetStream, t Topology) (jetstream.Consumer, error) {
	streams := []jetstream.StreamConfig{
		{Name: StreamIngest, Subjects: []string{SubjectObjects, SubjectStudyJobs, SubjectInstanceJobs},
			Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup},
		{Name: StreamEvents, Subjects: []string{"deid.events.>"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup, MaxAge: 30 * 24 * time.Hour},
		{Name: StreamAudit, Subjects: []string{SubjectAudit + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup, MaxAge: 90 * 24 * time.Hour},
		{Name: StreamDLQ, Subjects: []string{SubjectDLQPrefix + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, Replicas: t.Replicas, Duplicates: t.Dedup},
	}
	for _, sc := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, name := range []string{KVStudies, KVJobs} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Replicas: t.Replicas,
			Storage: jetstream.FileStorage, History: 1}); err != nil {
			return nil, fmt.Errorf("key-value %s: %w", name, err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamIngest, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       t.AckWait,
		MaxDeliver:    t.MaxDeliver,
		MaxAckPending: t.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", ConsumerName, err)
	}
	return cons, nil
}
