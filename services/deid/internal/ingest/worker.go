package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
)

// Config configures a Service.
type Config struct {
	InBucket, OutBucket, QuarantineBucket string
	Engine                                *deid.Engine
	// Workers is the number of jobs processed at once by this process.
	Workers int
	// TempDir holds the spooled input and output of jobs in flight.
	TempDir  string
	Topology Topology
	// StudySettle is how long a study must see no new instance before
	// deid.events.study.done is published for it (notification-triggered
	// instances; submitted prefixes report when complete).
	StudySettle time.Duration
	// OpTimeout bounds each NATS or S3 operation; a timed-out operation is
	// retried (publishes with the same Msg-Id).
	OpTimeout time.Duration
	// JobTimeout bounds one job; past it the job is returned for redelivery.
	JobTimeout time.Duration
	// Projects gives the engines of dataset deliveries (nil: no datasets).
	Projects EngineSource
	// Index makes the keys of the study index (DEID_INDEX) from the
	// project key: every worker of a deployment must use the same.
	Index *pseudonym.Indexer
	// SourceBuckets are the buckets besides InBucket that submitted jobs
	// and dataset requests may read. No other bucket is read, whatever a
	// job names.
	SourceBuckets []string
	// SpoolMemory is how large an input or output may be and still be
	// held in memory while its job runs (default 16 MiB); larger ones go
	// to files in TempDir.
	SpoolMemory int
	// MaxObjectSize bounds an input (0: no bound): a larger one is
	// refused before its bytes are read, as a failure of kind "limit".
	MaxObjectSize int64
	// RetryBase is the first redelivery delay after a transient failure;
	// it doubles with each delivery, up to 64 times RetryBase.
	RetryBase time.Duration
	// TopologyCheck is how often the service looks for a stream, bucket
	// or the consumer gone missing, to recreate it (default 10 s; Ready
	// looks at once).
	TopologyCheck time.Duration
	Logger        *zap.Logger
	Metrics       *Metrics
}

// Service runs workers over the shared work queue.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	store   Store
	cons    jetstream.Consumer
	studies jetstream.KeyValue
	jobs    jetstream.KeyValue
	idx     jetstream.KeyValue
	bufs    sync.Pool // spool memory, reused across jobs
	counts  chan countDelta
	log     *zap.Logger
	m       *Metrics
	profile string
	recent  recentKeys // index entries written lately
	// repair asks the topology watcher to look now.
	repair chan struct{}
	itMu   sync.Mutex
	iters  map[jetstream.MessagesContext]bool // the workers' current iterators
}

// New sets up the topology and returns a service ready to Run.
func New(ctx context.Context, nc *nats.Conn, store Store, cfg Config) (*Service, error) {
	if cfg.Engine == nil {
		return nil, errors.New("ingest: no engine")
	}
	if cfg.Index == nil {
		return nil, errors.New("ingest: no index key")
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 10 * time.Minute
	}
	if cfg.SpoolMemory <= 0 {
		cfg.SpoolMemory = 16 << 20
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.StudySettle <= 0 {
		cfg.StudySettle = 30 * time.Second
	}
	if cfg.TopologyCheck <= 0 {
		cfg.TopologyCheck = 10 * time.Second
	}
	if cfg.Topology.AckWait <= 0 {
		cfg.Topology = DefaultTopology()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Service{cfg: cfg, nc: nc, js: js, store: store, log: cfg.Logger, m: cfg.Metrics,
		profile: cfg.Engine.Profile().Name, recent: recentKeys{ttl: 10 * time.Minute, max: 4096},
		repair: make(chan struct{}, 1), iters: map[jetstream.MessagesContext]bool{}}
	// A worker (re)started while the cluster elects new leaders sees
	// unanswered requests for a while: both steps are retried until ctx ends.
	if s.cons, err = SetupRetrying(ctx, js, cfg.Topology, cfg.OpTimeout); err != nil {
		return nil, err
	}
	err = retry(ctx, cfg.OpTimeout, 1000, func(ctx context.Context) error {
		var err error
		if s.studies, err = js.KeyValue(ctx, KVStudies); err != nil {
			return fmt.Errorf("key-value %s: %w", KVStudies, err)
		}
		if s.jobs, err = js.KeyValue(ctx, KVJobs); err != nil {
			return fmt.Errorf("key-value %s: %w", KVJobs, err)
		}
		if s.idx, err = js.KeyValue(ctx, KVIndex); err != nil {
			return fmt.Errorf("key-value %s: %w", KVIndex, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Run processes jobs until ctx is cancelled, then stops taking new jobs,
// lets the jobs in flight finish (each bounded by JobTimeout) and returns.
func (s *Service) Run(ctx context.Context) error {
	sub, err := s.nc.Subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+StreamIngest+"."+ConsumerName, s.deadLetter)
	if err != nil {
		return fmt.Errorf("subscribe to advisories: %w", err)
	}
	defer sub.Unsubscribe()
	ssub, err := s.serveJobStatus()
	if err != nil {
		return fmt.Errorf("subscribe to job status requests: %w", err)
	}
	defer ssub.Unsubscribe()
	if s.cfg.Projects != nil {
		dsub, err := s.serveDatasetRequests()
		if err != nil {
			return fmt.Errorf("subscribe to dataset requests: %w", err)
		}
		defer dsub.Unsubscribe()
	}
	s.counts = make(chan countDelta, 1024)
	counted := make(chan struct{})
	go func() { defer close(counted); s.countLoop(s.counts) }()
	// Each worker pulls for itself, one message at a time: a message
	// waits in this process only while a worker is free to take it.
	var wg sync.WaitGroup
	for i := 0; i < s.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx)
		}()
	}
	wg.Add(3)
	go func() { defer wg.Done(); s.sweep(ctx) }()
	go func() { defer wg.Done(); s.watchLag(ctx) }()
	go func() { defer wg.Done(); s.watchTopology(ctx) }()
	<-ctx.Done()
	// Graceful: no new jobs; Drain delivers what was already pulled, and the
	// workers finish their current job before the iterators close.
	s.itMu.Lock()
	for it := range s.iters {
		it.Drain()
	}
	s.itMu.Unlock()
	wg.Wait()
	close(s.counts) // the counts of the last jobs are applied
	<-counted
	return nil
}

// work is one worker: it takes jobs from the shared consumer until ctx
// ends. When its iterator ends while the service runs (the consumer was
// deleted: an iterator does not survive that), the worker asks for the
// consumer to be recreated and takes jobs again once it is.
func (s *Service) work(ctx context.Context) {
	// The worker's previous job may still be finishing (its output
	// stored, its writes awaited, its ack sent) while it processes
	// the next one.
	finishing := make(chan struct{}, 1)
	var fwg sync.WaitGroup
	defer fwg.Wait()
	for ctx.Err() == nil {
		it, err := s.cons.Messages(jetstream.PullMaxMessages(1))
		if err == nil {
			s.itMu.Lock()
			if ctx.Err() != nil { // Run is draining the iterators it knows
				s.itMu.Unlock()
				it.Stop()
				return
			}
			s.iters[it] = true
			s.itMu.Unlock()
			for {
				msg, err := it.Next()
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					break
				}
				if err != nil {
					continue // a terminal error (consumer deleted) closes the iterator: the next call says so
				}
				s.handle(msg, finishing, &fwg)
			}
			s.itMu.Lock()
			delete(s.iters, it)
			s.itMu.Unlock()
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("the work queue's consumer stopped delivering; looking for it")
		}
		s.kickRepair()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// onlyConsumer reports that only the work queue's consumer is missing.
func onlyConsumer(missing []string) bool {
	return len(missing) == 1 && missing[0] == "consumer "+ConsumerName
}

// kickRepair asks the topology watcher to look now.
func (s *Service) kickRepair() {
	select {
	case s.repair <- struct{}{}:
	default:
	}
}

// Ready reports whether everything the workers need exists in JetStream.
// Something missing (deleted by an administrator, or lost) makes it
// fail, and is recreated at once by the topology watcher.
func (s *Service) Ready(ctx context.Context) error {
	missing, err := Missing(ctx, s.js)
	if err != nil {
		return fmt.Errorf("JetStream does not answer: %w", err)
	}
	if len(missing) > 0 {
		s.kickRepair()
		return fmt.Errorf("missing in JetStream, being recreated: %s", strings.Join(missing, ", "))
	}
	return nil
}

// watchTopology looks for streams, buckets or the consumer gone missing
// every TopologyCheck, and when asked, and recreates them: uploads would
// otherwise be accepted and never processed. Each recreation is logged
// and counted (deid_topology_recreated_total).
func (s *Service) watchTopology(ctx context.Context) {
	t := time.NewTicker(s.cfg.TopologyCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.repair:
		}
		ictx, cancel := context.WithTimeout(ctx, 4*s.cfg.OpTimeout)
		missing, err := Missing(ictx, s.js)
		if err == nil && len(missing) > 0 && !onlyConsumer(missing) {
			// A stream deleted and at once created again under its name
			// can be left unable to store (nats-server 2.15: "error
			// opening msg block file" on every publish, seen with the
			// embedded server): let the deletion finish first.
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			missing, err = Missing(ictx, s.js)
		}
		if err == nil && len(missing) > 0 {
			s.log.Error("JetStream objects the service needs are missing; recreating them", zap.Strings("missing", missing))
			_, created, err := setup(ictx, s.js, s.cfg.Topology)
			for _, c := range created {
				s.log.Warn("recreated "+c, zap.String("object", c))
				if s.m != nil {
					s.m.Recreated.WithLabelValues(c).Inc()
				}
				if c == "consumer "+ConsumerName {
					// Pulls parked on a deleted stream's consumer are not
					// told so and would wait out their expiry: the workers
					// pull again from the new one now.
					s.itMu.Lock()
					for it := range s.iters {
						it.Stop()
					}
					s.itMu.Unlock()
				}
			}
			if err != nil {
				s.log.Error("recreating failed; trying again", zap.Error(err))
			}
		}
		cancel()
	}
}

// handle runs one job to an ack, a nak (retry later) or a term. A job
// whose remaining steps wait on the store and JetStream (storing its
// output, announcing it, its ack) ends in the background, one per worker
// at a time (finishing holds it), so that the worker processes its next
// job meanwhile: the CPU work of one job overlaps the round trips of the
// other.
func (s *Service) handle(msg jetstream.Msg, finishing chan struct{}, wg *sync.WaitGroup) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.JobTimeout)
	stop := s.heartbeat(msg)
	var finish func() error
	var err error
	switch msg.Subject() {
	case SubjectObjects:
		finish, err = s.handleNotification(ctx, msg.Data())
	case SubjectStudyJobs:
		err = s.handleStudyJob(ctx, msg.Data())
	case SubjectDatasetJobs:
		err = s.handleDatasetJob(ctx, msg.Data())
	case SubjectInstanceJobs:
		var j InstanceJob
		if e := json.Unmarshal(msg.Data(), &j); e != nil {
			err = permanent("malformed instance job")
		} else {
			finish, err = s.processInstance(ctx, j)
		}
	default:
		err = permanent("unknown subject")
	}
	if err == nil && finish != nil {
		finishing <- struct{}{} // once this worker's previous job has finished
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-finishing }()
			defer cancel()
			s.settle(msg, start, finish(), stop)
		}()
		return
	}
	defer cancel()
	s.settle(msg, start, err, stop)
}

// settle ends a job by its outcome: ack, term or nak.
func (s *Service) settle(msg jetstream.Msg, start time.Time, err error, stop func()) {
	// No more "in progress" from here: were the ack lost, the job must
	// come back after AckWait rather than be kept alive by heartbeats.
	stop()
	md, _ := msg.Metadata()
	delivered := uint64(1)
	if md != nil {
		delivered = md.NumDelivered
	}
	var pe *permanentError
	switch {
	case err == nil:
		// The output and its events are durable. The ack is confirmed by
		// the consumer's leader, each attempt bounded by OpTimeout: a
		// leader killed after delivering the job never answers, and the
		// ack is retried to its successor. Were every attempt lost, the
		// job would come back and find its output and events already there.
		if e := s.ack(msg); e != nil {
			s.log.Warn("ack not confirmed; the job will be redelivered and is idempotent", zap.Error(e))
		}
		s.observe(start)
	case errors.As(err, &pe):
		// Failure already reported (event, quarantine); the job must not
		// come back.
		msg.TermWithReason(pe.reason)
		s.observe(start)
	default:
		s.count("retried")
		delay := backoff(s.cfg.RetryBase, delivered)
		s.log.Warn("job failed, retrying", zap.String("subject", msg.Subject()), zap.Uint64("delivery", delivered),
			zap.Duration("delay", delay), zap.Error(err))
		msg.NakWithDelay(delay)
	}
}

func (s *Service) observe(start time.Time) {
	if s.m != nil {
		s.m.Latency.Observe(time.Since(start).Seconds())
	}
}

func (s *Service) count(outcome string) {
	if s.m != nil {
		s.m.Instances.WithLabelValues(outcome).Inc()
	}
}

// ack acknowledges a finished job and waits for the server to confirm it,
// a few times, each attempt bounded by OpTimeout (an ack is idempotent).
func (s *Service) ack(msg jetstream.Msg) error {
	var err error
	for a := 0; a < 3; a++ {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.OpTimeout)
		err = msg.DoubleAck(ctx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return nil
		}
	}
	return err
}

// heartbeat tells the server the job is still being worked on, so a large
// object is not redelivered to another worker while this one is busy. The
// returned stop can be called more than once.
func (s *Service) heartbeat(msg jetstream.Msg) (stop func()) {
	every := s.cfg.Topology.AckWait / 3
	if every <= 0 {
		every = 10 * time.Second
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg.InProgress()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// s3Event is the part of an AWS/MinIO notification the worker needs.
type s3Event struct {
	Records []struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key  string `json:"key"`
				Size int64  `json:"size"`
				ETag string `json:"eTag"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

// handleNotification processes the objects an S3 notification names. Like
// processInstance, it leaves storing and announcing them to finish.
func (s *Service) handleNotification(ctx context.Context, data []byte) (finish func() error, err error) {
	var ev s3Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, permanent("malformed S3 notification")
	}
	var pending []func() error
	// finishAll waits for the writes of every object processed; the first
	// error is the notification's.
	finishAll := func() error {
		var first error
		for _, f := range pending {
			if err := f(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, r := range ev.Records {
		if !strings.HasPrefix(r.EventName, "s3:ObjectCreated:") && !strings.HasPrefix(r.EventName, "ObjectCreated:") {
			continue
		}
		if r.S3.Bucket.Name != s.cfg.InBucket {
			continue // notifications of other buckets are not ours
		}
		key, err := s.notifiedKey(ctx, r.S3.Bucket.Name, r.S3.Object.Key)
		if err != nil {
			finishAll()
			return nil, err
		}
		if !s3name.ValidKey(key) {
			s.refuse(ctx, InstanceJob{Bucket: r.S3.Bucket.Name, Key: key}, "the object key is not one this service reads (empty, too long, control characters, or a . or .. segment)")
			continue
		}
		f, err := s.processInstance(ctx, InstanceJob{Bucket: r.S3.Bucket.Name, Key: key, ETag: strings.Trim(r.S3.Object.ETag, `"`)})
		var pe *permanentError
		if err != nil && !errors.As(err, &pe) {
			finishAll()
			return nil, err
		}
		if f != nil {
			pending = append(pending, f)
		}
	}
	return finishAll, nil
}

// notifiedKey is the object key a notification names. AWS and MinIO
// URL-encode it (spaces as '+'); some servers (versitygw) send it as it
// is. When the two readings differ and the decoded one does not exist,
// the key as sent is taken if it does.
func (s *Service) notifiedKey(ctx context.Context, bucket, raw string) (string, error) {
	key, err := url.QueryUnescape(raw)
	if err != nil {
		return raw, nil
	}
	if key == raw {
		return key, nil
	}
	var mErr error
	err = retry(ctx, s.cfg.OpTimeout, 3, func(ctx context.Context) error {
		_, mErr = s.store.Metadata(ctx, bucket, key)
		if mErr == nil || errors.Is(mErr, ErrNotFound) {
			return nil
		}
		return mErr
	})
	if err != nil {
		return "", err
	}
	if errors.Is(mErr, ErrNotFound) {
		if _, err := s.store.Metadata(ctx, bucket, raw); err == nil {
			return raw, nil
		}
	}
	return key, nil
}

// handleStudyJob expands a submitted prefix into instance jobs (one per
// object, deduplicated by Msg-Id) and records how many to expect.
func (s *Service) handleStudyJob(ctx context.Context, data []byte) error {
	var j StudyJob
	if err := json.Unmarshal(data, &j); err != nil || !ValidJobID(j.JobID) {
		return permanent("malformed study job")
	}
	if why := s.sourceBucket(j.Bucket); why != "" {
		return s.failJob(ctx, j, why)
	}
	if !s3name.ValidPrefix(j.Prefix) {
		return s.failJob(ctx, j, "the prefix is not a valid object key prefix")
	}
	var objs []Object
	err := retry(ctx, s.cfg.OpTimeout, 3, func(ctx context.Context) error {
		var err error
		objs, err = s.store.List(ctx, j.Bucket, j.Prefix)
		if errors.Is(err, ErrNoBucket) {
			return stopRetry{err}
		}
		return err
	})
	if errors.Is(err, ErrNoBucket) {
		return s.failJob(ctx, j, "no such bucket")
	}
	if err != nil {
		return err
	}
	if err := s.createJob(ctx, j, len(objs)); err != nil {
		return fmt.Errorf("record job: %w", err)
	}
	// Published in rounds, each acknowledged together: a small first one,
	// so that the other workers start while the rest goes out, then rounds
	// of a few hundred.
	for start, round := 0, 16; start < len(objs); start, round = start+round, 256 {
		ws := make([]*jsWrite, 0, round)
		for _, o := range objs[start:min(start+round, len(objs))] {
			b, _ := json.Marshal(InstanceJob{JobID: j.JobID, Bucket: j.Bucket, Key: o.Key, ETag: o.ETag})
			ws = append(ws, &jsWrite{subject: SubjectInstanceJobs, data: b,
				msgID: "instance/" + j.JobID + "/" + shortHash(j.Bucket+"/"+o.Key+"/"+o.ETag)})
		}
		s.writeAll(ctx, ws)
		for _, w := range ws {
			if w.err != nil {
				return w.err
			}
		}
	}
	if s.m != nil {
		s.m.Jobs.WithLabelValues("study").Inc()
	}
	s.audit(ctx, Audit{Event: "job.expanded", JobID: j.JobID, InputBucket: j.Bucket, InputKey: j.Prefix,
		Reason: fmt.Sprintf("%d objects", len(objs))}, "job.expanded/"+j.JobID)
	if len(objs) == 0 {
		st, err := JobStatus(ctx, s.js, j.JobID)
		if err != nil {
			return err
		}
		if !st.Complete {
			return s.completeJob(ctx, st)
		}
	}
	return nil
}

// failJob reports a submitted job that cannot run at all.
func (s *Service) failJob(ctx context.Context, j StudyJob, reason string) error {
	ev, _ := json.Marshal(JobDone{Schema: EventsSchema, Time: time.Now().UTC(), JobID: j.JobID, Studies: []string{},
		Bucket: s.cfg.OutBucket, Profile: s.profile, Error: reason})
	if err := s.publish(ctx, SubjectJobDone, ev, "job-done/"+j.JobID); err != nil {
		return err
	}
	now := time.Now().UTC()
	b, _ := json.Marshal(JobState{JobID: j.JobID, Bucket: j.Bucket, Prefix: j.Prefix, Complete: true, Error: reason,
		Studies: map[string]int{}, Created: now, Updated: now})
	cctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	s.jobs.Create(cctx, jobKey(j.JobID), b)
	cancel()
	s.audit(ctx, Audit{Event: "job.failed", JobID: j.JobID, InputBucket: j.Bucket, InputKey: j.Prefix, Reason: reason},
		"job.failed/"+j.JobID)
	s.log.Warn("submitted job refused", zap.String("job", j.JobID), zap.String("reason", reason))
	return permanent(reason)
}

// errTooLarge: the input is larger than Config.MaxObjectSize.
var errTooLarge = errors.New("the input is larger than the maximum object size")

// input opens the job's object in place when the store can (the
// embedded endpoint's files), else spools it. An object larger than
// MaxObjectSize is refused (errTooLarge) before its bytes are read.
func (s *Service) input(ctx context.Context, j InstanceJob) (in ReadAtCloser, etag string, size int64, err error) {
	if op, ok := s.store.(Opener); ok {
		err = retry(ctx, s.cfg.OpTimeout*6, 5, func(ctx context.Context) error {
			var err error
			in, etag, size, err = op.Open(ctx, j.Bucket, j.Key)
			if errors.Is(err, ErrNotFound) {
				return stopRetry{err}
			}
			return err
		})
		if err == nil && s.cfg.MaxObjectSize > 0 && size > s.cfg.MaxObjectSize {
			in.Close()
			return nil, "", size, errTooLarge
		}
		return in, etag, size, err
	}
	sp := s.newSpool(0) // size unknown until the GET answers
	var w io.Writer = sp
	if s.cfg.MaxObjectSize > 0 {
		w = &capWriter{sp: sp, max: s.cfg.MaxObjectSize}
	}
	err = retry(ctx, s.cfg.OpTimeout*6, 5, func(ctx context.Context) error {
		if err := sp.Reset(); err != nil {
			return err
		}
		var err error
		etag, size, err = s.store.Get(ctx, j.Bucket, j.Key, w)
		if errors.Is(err, ErrNotFound) || errors.Is(err, errTooLarge) {
			return stopRetry{err}
		}
		return err
	})
	return sp, etag, size, err
}

// capWriter is a spool that refuses more than max bytes: told the size
// before the first byte (Expect, from the GET's answer), it refuses at
// once, and it counts in any case.
type capWriter struct {
	sp       *spool
	max      int64
	tooLarge bool
}

func (c *capWriter) Expect(n int64) {
	if n > c.max {
		c.tooLarge = true
		return
	}
	c.sp.Expect(n)
}

func (c *capWriter) Write(p []byte) (int, error) {
	if c.tooLarge || c.sp.Size()+int64(len(p)) > c.max {
		c.tooLarge = true
		return 0, errTooLarge
	}
	return c.sp.Write(p)
}

// processInstance is one object: read, de-identify, verify, store,
// announce. The order makes a retry safe at every step: the output key
// and bytes depend only on the input and the key, and events carry
// Msg-Ids. Once the output is written and verified, it returns finish,
// which stores it, announces it (event, audit record, mark, index entries)
// and counts it: the job is done only when finish returns nil. A failure
// before that returns no finish.
func (s *Service) processInstance(ctx context.Context, j InstanceJob) (finish func() error, err error) {
	if why := s.sourceBucket(j.Bucket); why != "" {
		return nil, s.refuse(ctx, j, why)
	}
	if !s3name.ValidKey(j.Key) {
		return nil, s.refuse(ctx, j, "the object key is not one this service reads (empty, too long, control characters, or a . or .. segment)")
	}
	in, etag, size, err := s.input(ctx, j)
	if in != nil {
		defer in.Close()
	}
	if errors.Is(err, ErrNotFound) {
		return nil, s.fail(ctx, j, "gone", "the input object no longer exists", false)
	}
	if errors.Is(err, errTooLarge) {
		return nil, s.failTooLarge(ctx, j)
	}
	if err != nil {
		return nil, err
	}
	if j.ETag == "" {
		j.ETag = etag
	}
	if s.m != nil {
		s.m.Bytes.WithLabelValues("in").Add(float64(size))
	}
	eng, profile, prefix := s.cfg.Engine, s.profile, ""
	if j.Dataset {
		if s.cfg.Projects == nil {
			return nil, s.fail(ctx, j, "unsupported", "this service has no project store", false)
		}
		if eng, err = s.cfg.Projects.Engine(ctx, j.Project, j.Profile); err != nil {
			if errors.Is(err, ErrUnknownProject) || errors.Is(err, ErrUnknownProfile) {
				return nil, s.fail(ctx, j, "project", err.Error(), false)
			}
			s.log.Error("project store", zap.Error(err))
			return nil, fmt.Errorf("project store: %w", err) // retried: the store may come back
		}
		profile, prefix = eng.Profile().Name, "datasets/"+j.JobID+"/"
	}
	job, err := eng.Plan(in, size)
	var rej *deid.Rejection
	if errors.As(err, &rej) {
		return nil, s.fail(ctx, j, rej.Kind, rej.Reason, rej.Kind != KindNotInLookup)
	}
	if err != nil {
		return nil, fmt.Errorf("read spooled input: %w", err) // the spool, not the input: retried
	}
	defer job.Close() // its memory budget and scratch file
	// Where this study is, for dataset requests: recorded whatever becomes
	// of the instance (with the instance's other writes when it is done).
	var index []*jsWrite
	if !j.Dataset {
		index = s.indexWrites(job.Source(), j)
		defer func() { s.writeIndex(ctx, index) }() // unless sent with the others
	}
	outF := s.newSpool(size)
	handedOver := false // to finish, which closes it
	defer func() {
		if !handedOver {
			outF.Close()
		}
	}()
	spool := &hashSpool{f: outF, h: sha256.New()}
	n, _, err := job.WriteVerified(spool)
	if errors.As(err, &rej) {
		return nil, s.fail(ctx, j, rej.Kind, rej.Reason, true)
	}
	if err != nil {
		return nil, fmt.Errorf("write output: %w", err)
	}
	sum := hex.EncodeToString(spool.h.Sum(nil))
	r := job.Result()
	key := prefix + OutputKey(r)
	// Its Time is set by announce, when the output is stored.
	done := InstanceDone{Schema: EventsSchema, JobID: j.JobID, StudyUID: r.StudyUID,
		SeriesUID: r.SeriesUID, SOPInstanceUID: r.SOPInstanceUID, SOPClassUID: r.SOPClassUID, Bucket: s.cfg.OutBucket,
		Key: key, Size: n, SHA256: sum, Profile: profile, Edition: ps315.Edition, Counts: r.Counts}
	if r.Pixels != nil {
		done.PixelsExamined, done.PixelsMasked = r.Pixels.Examined, r.Pixels.Masked
	}
	mk := Mark{Study: r.StudyUID}
	if j.Dataset {
		mk.Entry = &ManifestEntry{PatientID: job.OutputPatientID(), StudyUID: r.StudyUID, SeriesUID: r.SeriesUID,
			SOPInstanceUID: r.SOPInstanceUID, SOPClassUID: r.SOPClassUID, Modality: job.Modality(), Key: key, Size: n, SHA256: sum,
			PixelsExamined: done.PixelsExamined, PixelsMasked: done.PixelsMasked}
		mk.Crosswalk = job.Crosswalk()
	}
	// The rest is waiting on the store and JetStream: the worker processes
	// its next job meanwhile.
	handedOver = true
	idx := index
	index = nil
	return func() error {
		defer outF.Close()
		if err := s.storeOutput(ctx, j, key, outF, n, profile, sum); err != nil {
			s.writeIndex(ctx, idx) // recorded whatever becomes of the instance
			return err
		}
		if s.m != nil {
			s.m.Bytes.WithLabelValues("out").Add(float64(n))
		}
		return s.announce(ctx, j, done, mk, idx)
	}, nil
}

// storeOutput writes a verified output under key. First writer wins: an
// instance is written once. A retry of the same input finds its own bytes
// (same digest) and carries on; another input of the same SOP Instance
// (another transfer syntax, a resend with other header values) is
// reported, not written over it.
func (s *Service) storeOutput(ctx context.Context, j InstanceJob, key string, out *spool, n int64, profile, sum string) error {
	meta := map[string]string{"deid-profile": profile, "deid-standard-edition": ps315.Edition, "deid-sha256": sum}
	err := retry(ctx, s.cfg.OpTimeout*6, 4, func(ctx context.Context) error {
		err := s.store.Put(ctx, s.cfg.OutBucket, key, out.Reader(), n, PutOptions{Meta: meta, Create: true, SHA256: sum})
		if errors.Is(err, ErrExists) {
			return stopRetry{err}
		}
		return err
	})
	if !errors.Is(err, ErrExists) {
		return err
	}
	have, err := s.existing(ctx, key)
	if errors.Is(err, ErrNotFound) {
		// The store refuses the conditional write yet holds no object
		// under the key: a write it lost halfway (versitygw killed
		// between its metadata and its data leaves exactly this).
		// There is no first writer to protect; write unconditionally.
		s.log.Warn("store refused a new object but has none under its key; writing it unconditionally", zap.String("output", key))
		return retry(ctx, s.cfg.OpTimeout*6, 4, func(ctx context.Context) error {
			return s.store.Put(ctx, s.cfg.OutBucket, key, out.Reader(), n, PutOptions{Meta: meta, SHA256: sum})
		})
	}
	if err != nil {
		return err
	}
	if have["deid-sha256"] != sum {
		return s.fail(ctx, j, "duplicate", "another input already produced this instance (same SOP Instance UID) with other bytes; the first written stays", true)
	}
	return nil
}

// announce makes a stored output known: the event, the audit record, the
// progress mark and the index entries are independent writes to
// JetStream, sent together and all acknowledged before the job is.
func (s *Service) announce(ctx context.Context, j InstanceJob, done InstanceDone, mk Mark, index []*jsWrite) error {
	done.Time = time.Now().UTC() // stored now
	b, _ := json.Marshal(done)
	key, sum := done.Key, done.SHA256
	ev := &jsWrite{subject: SubjectInstanceDone, data: b, msgID: "done/" + key + "/" + sum}
	au := s.auditWrite(Audit{Event: "instance.done", JobID: j.JobID, InputBucket: j.Bucket, InputKey: j.Key,
		InputETag: j.ETag, OutputBucket: s.cfg.OutBucket, OutputKey: key}, "audit-done/"+key+"/"+sum)
	ws := append([]*jsWrite{ev, au}, index...)
	var mark *jsWrite
	if j.JobID != "" {
		mk.Position = j.Position
		mark = s.markWrite(j, mk)
		ws = append(ws, mark)
	}
	s.writeAll(ctx, ws)
	s.indexed(index)
	s.logFailed("audit event", au)
	if ev.err != nil {
		return ev.err
	}
	// The audit record links the input to its output: a job whose record
	// was refused (a full audit stream) is not acknowledged, and comes
	// back (the event, already stored, is deduplicated).
	if au.err != nil {
		return fmt.Errorf("audit record: %w", au.err)
	}
	if mark != nil {
		if err := s.marked(j, mk, mark); err != nil {
			return err
		}
	} else if err := s.track(ctx, j, mk); err != nil {
		return err
	}
	s.count("done")
	s.log.Info("instance done", zap.String("job", shortHash(j.Bucket+"/"+j.Key)), zap.String("output", key),
		zap.Int64("bytes", done.Size))
	return nil
}

// existing returns the metadata of the output already under key, or
// ErrNotFound when, asked twice a second apart (another writer's object
// may be appearing), the store has none.
func (s *Service) existing(ctx context.Context, key string) (map[string]string, error) {
	var have map[string]string
	var err error
	for look := 0; look < 2; look++ {
		if look > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		err = retry(ctx, s.cfg.OpTimeout, 4, func(ctx context.Context) error {
			var err error
			have, err = s.store.Metadata(ctx, s.cfg.OutBucket, key)
			if errors.Is(err, ErrNotFound) {
				return stopRetry{err}
			}
			return err
		})
		if !errors.Is(err, ErrNotFound) {
			break
		}
	}
	return have, err
}

// fail reports a permanent failure: the input is copied to the quarantine
// bucket (with a note of why), a public event names it by an opaque id,
// an audit event links it to the input.
func (s *Service) fail(ctx context.Context, j InstanceJob, kind, reason string, copyInput bool) error {
	id := shortHash(j.Bucket + "/" + j.Key + "/" + j.ETag)
	qb := ""
	if copyInput && s.cfg.QuarantineBucket != "" {
		qb = s.cfg.QuarantineBucket
		note, _ := json.Marshal(map[string]string{"kind": kind, "reason": reason, "input_bucket": j.Bucket,
			"input_key": j.Key, "input_etag": j.ETag, "job_id": j.JobID, "time": time.Now().UTC().Format(time.RFC3339)})
		err := retry(ctx, s.cfg.OpTimeout*6, 4, func(ctx context.Context) error {
			if err := s.store.Copy(ctx, j.Bucket, j.Key, qb, id+".dcm"); err != nil {
				return err
			}
			return s.store.Put(ctx, qb, id+".json", strings.NewReader(string(note)), int64(len(note)), PutOptions{})
		})
		if err != nil {
			return err
		}
	}
	ev, _ := json.Marshal(InstanceFailed{Schema: EventsSchema, Time: time.Now().UTC(), JobID: j.JobID,
		QuarantineID: id, Bucket: qb, Kind: kind, Reason: reason, Profile: s.profile})
	if err := s.publish(ctx, SubjectInstanceFailed, ev, "failed/"+id); err != nil {
		return err
	}
	if err := s.audit(ctx, Audit{Event: "instance.failed", JobID: j.JobID, InputBucket: j.Bucket, InputKey: j.Key,
		InputETag: j.ETag, QuarantineID: id, Reason: reason}, "audit-failed/"+id); err != nil {
		return err // not acknowledged: comes back
	}
	if err := s.track(ctx, j, Mark{Failed: true, Kind: kind}); err != nil {
		return err
	}
	s.count("failed")
	s.log.Warn("instance failed", zap.String("job", shortHash(j.Bucket+"/"+j.Key)), zap.String("quarantine_id", id),
		zap.String("kind", kind), zap.String("reason", reason))
	return permanent(kind + ": " + reason)
}

// failTooLarge reports an input over MaxObjectSize: quarantined by a
// note only (kind "limit"), not by a copy, which would double the disk
// an object too large to process already takes (and a single S3 copy
// stops at 5 GiB). The input stays where it is; the note and the audit
// record name it.
func (s *Service) failTooLarge(ctx context.Context, j InstanceJob) error {
	const reason = "the input is larger than the maximum object size (--max-object-size)"
	if qb := s.cfg.QuarantineBucket; qb != "" {
		id := shortHash(j.Bucket + "/" + j.Key + "/" + j.ETag)
		note, _ := json.Marshal(map[string]string{"kind": KindLimit, "reason": reason, "input_bucket": j.Bucket,
			"input_key": j.Key, "input_etag": j.ETag, "job_id": j.JobID, "time": time.Now().UTC().Format(time.RFC3339)})
		err := retry(ctx, s.cfg.OpTimeout*6, 4, func(ctx context.Context) error {
			return s.store.Put(ctx, qb, id+".json", strings.NewReader(string(note)), int64(len(note)), PutOptions{})
		})
		if err != nil {
			return err
		}
	}
	return s.fail(ctx, j, KindLimit, reason, false)
}

// KindLimit is the failure of an input over a size limit.
const KindLimit = "limit"

// refuse reports a job that names what this service does not read (a
// bucket it may not use, a key it cannot name safely): nothing is read
// or copied; the public event says why in fixed words, the audit record
// keeps the names for operators.
func (s *Service) refuse(ctx context.Context, j InstanceJob, reason string) error {
	id := shortHash(j.Bucket + "/" + j.Key + "/" + j.ETag)
	ev, _ := json.Marshal(InstanceFailed{Schema: EventsSchema, Time: time.Now().UTC(), JobID: j.JobID,
		QuarantineID: id, Kind: KindRefused, Reason: reason, Profile: s.profile})
	if err := s.publish(ctx, SubjectInstanceFailed, ev, "failed/"+id); err != nil {
		return err
	}
	if err := s.audit(ctx, Audit{Event: "instance.failed", JobID: j.JobID, InputBucket: j.Bucket, InputKey: j.Key,
		InputETag: j.ETag, QuarantineID: id, Reason: reason}, "audit-failed/"+id); err != nil {
		return err // not acknowledged: comes back
	}
	if j.JobID != "" {
		if err := s.track(ctx, j, Mark{Failed: true, Kind: KindRefused}); err != nil {
			return err
		}
	}
	s.count("failed")
	s.log.Warn("job refused", zap.String("job", id), zap.String("kind", KindRefused), zap.String("reason", reason))
	return permanent(KindRefused + ": " + reason)
}

// OutputKey names an output by pseudonymised UIDs only: the engine's
// Name, in which a UID that is not a valid UID (an input's own, kept by
// Retain UIDs) is replaced by a keyed hash, so no key leaves its prefix.
func OutputKey(r *deid.Result) string { return r.Name }

// publish stores a message in JetStream with a Msg-Id, retrying on timeouts:
// the same Msg-Id makes a repeated publish a no-op within the dedup window.
func (s *Service) publish(ctx context.Context, subject string, data []byte, id string) error {
	w := &jsWrite{subject: subject, data: data, msgID: id}
	s.writeSync(ctx, w)
	return w.err
}

// audit publishes a trusted-side record and logs a failure. An
// instance's record is required (its callers return the error: the job
// comes back); a job's are only logged when they fail.
func (s *Service) audit(ctx context.Context, a Audit, id string) error {
	w := s.auditWrite(a, id)
	s.writeAll(ctx, []*jsWrite{w})
	s.logFailed("audit event "+a.Event, w)
	if w.err != nil {
		return fmt.Errorf("audit record: %w", w.err)
	}
	return nil
}

// auditWrite is an audit record to publish (Msg-Id id).
func (s *Service) auditWrite(a Audit, id string) *jsWrite {
	a.Schema, a.Time = EventsSchema, time.Now().UTC()
	b, _ := json.Marshal(a)
	return &jsWrite{subject: SubjectAudit + a.Event, data: b, msgID: id}
}

// deadLetter moves a job that reached MaxDeliver to the dead-letter stream
// (the work queue keeps it otherwise), reports it, and removes it.
func (s *Service) deadLetter(m *nats.Msg) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if json.Unmarshal(m.Data, &adv) != nil || adv.StreamSeq == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.cfg.OpTimeout)
	defer cancel()
	stream, err := s.js.Stream(ctx, StreamIngest)
	if err != nil {
		return
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return // already moved by another worker
	}
	id := fmt.Sprintf("dlq-%d", adv.StreamSeq)
	out := &nats.Msg{Subject: SubjectDLQPrefix + raw.Subject, Data: raw.Data, Header: nats.Header{}}
	out.Header.Set("Deid-Orig-Seq", fmt.Sprint(adv.StreamSeq))
	out.Header.Set("Deid-Deliveries", fmt.Sprint(adv.Deliveries))
	err = retry(ctx, s.cfg.OpTimeout, 3, func(ctx context.Context) error {
		_, err := s.js.PublishMsg(ctx, out, jetstream.WithMsgID(id))
		return err
	})
	if err != nil {
		s.log.Error("dead-letter copy failed", zap.Uint64("seq", adv.StreamSeq), zap.Error(err))
		return
	}
	ev, _ := json.Marshal(InstanceFailed{Schema: EventsSchema, Time: time.Now().UTC(), QuarantineID: id,
		Kind: "dead-lettered", Reason: fmt.Sprintf("gave up after %d deliveries", adv.Deliveries), Profile: s.profile})
	s.publish(ctx, SubjectInstanceFailed, ev, "failed/"+id)
	s.audit(ctx, Audit{Event: "dlq", QuarantineID: id, Deliveries: adv.Deliveries, Reason: "max deliveries"}, "audit-"+id)
	if err := stream.DeleteMsg(ctx, adv.StreamSeq); err == nil && s.m != nil {
		s.m.DLQ.Inc()
	}
	s.log.Error("job dead-lettered", zap.Uint64("seq", adv.StreamSeq), zap.Uint64("deliveries", adv.Deliveries))
}

// watchLag keeps the consumer lag gauges current.
func (s *Service) watchLag(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ictx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
			info, err := s.cons.Info(ictx)
			cancel()
			if err == nil && s.m != nil {
				s.m.Pending.Set(float64(info.NumPending))
				s.m.AckPend.Set(float64(info.NumAckPending))
			}
		}
	}
}

// newSpool is a spool for one job's input or output; expect, when known
// (above 0), is about how many bytes it will hold (see spool.Expect).
func (s *Service) newSpool(expect int64) *spool {
	sp := &spool{dir: s.cfg.TempDir, limit: s.cfg.SpoolMemory}
	if b, ok := s.bufs.Get().([]byte); ok {
		sp.buf = b
	}
	sp.Expect(expect)
	sp.free = func(b []byte) {
		if cap(b) <= 2<<20 { // keep the pool to what typical instances need
			s.bufs.Put(b)
		}
	}
	return sp
}

// hashSpool is the output spool: written once, hashed as it is written,
// read back by the verifier and the upload.
type hashSpool struct {
	f *spool
	h hash.Hash
}

func (s *hashSpool) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.h.Write(p[:n])
	return n, err
}

func (s *hashSpool) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

// permanentError is a failure that retrying cannot fix.
type permanentError struct{ reason string }

func (e *permanentError) Error() string { return e.reason }

func permanent(reason string) error { return &permanentError{reason: reason} }

type stopRetry struct{ err error }

func (e stopRetry) Error() string { return e.err.Error() }
func (e stopRetry) Unwrap() error { return e.err }

// retry runs op with a fresh per-attempt timeout, a few times, backing off:
// a NATS request dropped during a leader election, or an S3 endpoint
// restarting, is retried instead of hanging the job.
func retry(ctx context.Context, timeout time.Duration, attempts int, op func(context.Context) error) error {
	var err error
	for a := 0; a < attempts; a++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err = op(actx)
		cancel()
		var sr stopRetry
		if err == nil || errors.As(err, &sr) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond << min(a, 5)):
		}
	}
	return err
}

// backoff is the redelivery delay after the n-th delivery failed.
func backoff(base time.Duration, n uint64) time.Duration {
	return base << min(n-1, 6)
}

// shortHash is an opaque, stable id for a trusted-side name.
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:12])
}
