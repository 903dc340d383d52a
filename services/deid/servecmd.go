package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dicomdeid/dicomdeid/pipeline/budget"
	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/deid"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/pseudonym"
	"github.com/dicomdeid/dicomdeid/profiles"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/connlimit"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/embed"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/projects"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
)

// serveConfig holds the flags of `deid serve`; each is also DEID_<FLAG>.
type serveConfig struct {
	data                            string
	natsURL, natsListen, natsCreds  string
	s3Endpoint, s3Listen            string
	s3Access, s3Secret, s3Region    string
	s3TLS                           bool
	minioNotifyARN                  string
	inBucket, outBucket, quarantine string
	profile, keyFile, projectsDir   string
	profilesDir, datasetProfiles    string
	sourceBuckets                   string
	workers, replicas               int
	httpAddr                        string
	studySettle, ackWait, opTimeout time.Duration
	startupTimeout, topologyCheck   time.Duration
	logLevel                        string
	limits                          ingest.Limits
	maxObjectSize                   byteSize
	uploadExpiry                    time.Duration
	s3Limits                        embed.Limits // beyond the flags: timeouts, connections (tests)
	maxMemoryMB, maxInflatedMB      int64
	maxInflateRatio                 int
	maxTime                         time.Duration // one file's limit (dicomraw.Limits.MaxDuration)
}

func serveFlags(c *serveConfig, fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", "./data", "directory for the embedded NATS and S3 stores, the default key and temporary files")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server(s) to use; empty: an embedded NATS server with JetStream under --data")
	fs.StringVar(&c.natsListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS server listens (for deid submit and other clients)")
	fs.StringVar(&c.natsCreds, "nats-creds", "", "NATS credentials of the worker role for --nats-url: an NKey seed file (deid nats-creds generate) or a JWT .creds file; default $DEID_NATS_SEED, then <data>/nats-credentials/worker.nk")
	fs.StringVar(&c.s3Endpoint, "s3-endpoint", "", "S3 endpoint host:port; empty: an embedded S3-compatible endpoint over --data")
	fs.StringVar(&c.s3Listen, "s3-listen", "127.0.0.1:9000", "where the embedded S3 endpoint listens")
	fs.StringVar(&c.s3Access, "s3-access-key", "", "S3 access key for --s3-endpoint (embedded: the uploader's; every role's is generated into --data when empty)")
	fs.StringVar(&c.s3Secret, "s3-secret-key", "", "S3 secret key")
	c.maxObjectSize = embed.DefaultMaxObjectSize
	fs.Var(&c.maxObjectSize, "max-object-size", "largest input accepted (embedded endpoint: PUT and multipart; workers: any S3), e.g. 8GiB, 512MiB")
	fs.DurationVar(&c.uploadExpiry, "s3-upload-expiry", 24*time.Hour, "embedded endpoint: remove multipart uploads left unfinished this long")
	fs.BoolVar(&c.s3TLS, "s3-tls", false, "use https for --s3-endpoint")
	fs.StringVar(&c.s3Region, "s3-region", "", "S3 region (default: asked of the endpoint)")
	fs.StringVar(&c.minioNotifyARN, "minio-notify-arn", "", "MinIO only: make the input bucket send object-created notifications to this target (e.g. arn:minio:sqs::PRIMARY:nats, whose subject must be deid.ingest.objects)")
	fs.StringVar(&c.inBucket, "in-bucket", "deid-incoming", "bucket of identifiable inputs")
	fs.StringVar(&c.outBucket, "out-bucket", "deid-anonymised", "bucket of de-identified outputs")
	fs.StringVar(&c.quarantine, "quarantine-bucket", "deid-quarantine", "bucket where inputs that failed are copied, with the reason")
	fs.StringVar(&c.profile, "profile", "research", "built-in profile name or profile file")
	fs.StringVar(&c.profilesDir, "profiles-dir", "", "directory of operator profiles (NAME.yaml) that dataset requests may name, besides the built-ins; requests never name files")
	fs.StringVar(&c.datasetProfiles, "dataset-profiles", "", "comma-separated profile names dataset requests may use (default: every built-in and --profiles-dir profile)")
	fs.StringVar(&c.sourceBuckets, "source-buckets", "", "comma-separated buckets, besides --in-bucket, that submitted jobs and dataset requests may read (never the output or quarantine bucket)")
	fs.StringVar(&c.keyFile, "key-file", "", "project key file; empty: <data>/project.key, generated on first start")
	fs.StringVar(&c.projectsDir, "projects", "", "project store of dataset deliveries (deid project create); empty: <data>/projects")
	// Twice the cores: a job spends much of its time waiting on S3 and NATS.
	fs.IntVar(&c.workers, "workers", 2*runtime.NumCPU(), "jobs processed at once by this process")
	fs.IntVar(&c.replicas, "replicas", 1, "JetStream replicas of the streams (3 on a cluster)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "address of /healthz, /readyz and /metrics")
	fs.DurationVar(&c.studySettle, "study-settle", 30*time.Second, "publish study.done after a study saw no new instance for this long")
	fs.DurationVar(&c.ackWait, "ack-wait", 60*time.Second, "redeliver a job not acknowledged or heartbeated within this")
	fs.DurationVar(&c.opTimeout, "op-timeout", 10*time.Second, "timeout of each NATS or S3 operation (retried)")
	fs.DurationVar(&c.startupTimeout, "startup-timeout", time.Minute, "how long the start waits for JetStream and S3 to answer (a cluster electing leaders, a server still starting)")
	fs.DurationVar(&c.topologyCheck, "topology-check", 10*time.Second, "how often to look for a stream, bucket or the work queue's consumer gone missing (recreated, logged, counted); /readyz looks at once")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	def := dicomraw.DefaultLimits()
	fs.Int64Var(&c.maxMemoryMB, "max-memory", 0, "MiB of memory the jobs in flight may hold together (0: 32 per worker, at least 128); half is shared, so one file may hold half of it")
	fs.DurationVar(&c.maxTime, "max-time", dicomraw.DefaultLimits().MaxDuration, "quarantine a file whose de-identification takes longer than this (reading pixels for burned-in text adds two seconds a frame)")
	fs.Int64Var(&c.maxInflatedMB, "max-inflated-mb", def.MaxInflated>>20, "quarantine a deflated file whose dataset inflates past this many MiB (on disk, in --data/tmp)")
	fs.IntVar(&c.maxInflateRatio, "max-inflate-ratio", def.MaxInflateRatio, "quarantine a deflated file that inflates (past 8 MiB) to more than this many times its size (0: no ratio limit)")
	limitFlags(&c.limits, fs)
}

// limitFlags are the size limits of the streams and buckets. When one is
// full, new work is refused (the upload is answered 503, the job is not
// acknowledged) and nothing accepted is dropped.
func limitFlags(l *ingest.Limits, fs *flag.FlagSet) {
	d := ingest.DefaultLimits()
	*l = d
	fs.Int64Var(&l.QueueMsgs, "queue-max-msgs", d.QueueMsgs, "jobs the work queue (DEID_INGEST) holds at most")
	fs.Int64Var(&l.QueueBytes, "queue-max-bytes", d.QueueBytes, "bytes the work queue holds at most")
	fs.Int64Var(&l.EventsBytes, "events-max-bytes", d.EventsBytes, "bytes of public events (DEID_EVENTS, 30 days) kept at most")
	fs.Int64Var(&l.AuditBytes, "audit-max-bytes", d.AuditBytes, "bytes of audit records (DEID_AUDIT, 90 days) kept at most")
	fs.Int64Var(&l.DLQBytes, "dlq-max-bytes", d.DLQBytes, "bytes of dead-lettered jobs (DEID_DLQ) kept at most")
	fs.Int64Var(&l.IndexBytes, "index-max-bytes", d.IndexBytes, "bytes of the study index (DEID_INDEX) at most")
	fs.Int64Var(&l.JobsBytes, "jobs-max-bytes", d.JobsBytes, "bytes of job records and marks (DEID_JOBS) at most")
	fs.Int64Var(&l.StudiesBytes, "studies-max-bytes", d.StudiesBytes, "bytes of study marks (DEID_STUDIES) at most")
}

// envDefaults lets every flag not given on the command line come from
// DEID_<FLAG> (dashes as underscores), for containers.
func envDefaults(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "DEID_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.EncodeTime = "time", zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), lvl)
	return zap.New(core), nil
}

func serveCmd(args []string, stdout, stderr io.Writer) int {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serveFlags(&c, fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "deid serve: unexpected arguments")
		return exitUsage
	}
	if err := envDefaults(fs); err != nil {
		fmt.Fprintln(stderr, "deid serve:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := startService(ctx, c, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "deid serve:", err)
		return exitRejected
	}
	err = srv.wait()
	if err != nil {
		fmt.Fprintln(stderr, "deid serve:", err)
		return exitRejected
	}
	return exitOK
}

// service is a running `deid serve`: what it started, to stop it in order.
type service struct {
	log      *zap.Logger
	text     *textOCR // the OCR of burned-in text, closed last
	cancel   context.CancelFunc
	done     chan error
	waitOnce sync.Once
	err      error
	nats     *embed.NATS
	s3       *embed.S3
	nc       *nats.Conn
	// notifyConn announces the embedded endpoint's uploads (notifier role).
	notifyConn *nats.Conn
	// natsCredDir holds the embedded server's credentials.
	natsCredDir string
	http        *http.Server
	httpAddr    string
	s3Addr      string
	natsURL     string
	creds       [2]string // the service's own S3 credentials (embedded: the operator's)
	s3Roles     embed.RoleCredentials
	store       ingest.MinioStore
	cfg         serveConfig
	gc          func() // restores the collector settings
}

// startService starts everything and returns once the workers run.
func startService(parent context.Context, c serveConfig, stdout, stderr io.Writer) (*service, error) {
	log, err := newLogger(c.logLevel, stderr)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// The spool of jobs in flight: what a killed process left there is
	// redelivered and redone, so it goes.
	tmp := filepath.Join(c.data, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	key, err := serviceKey(c, log)
	if err != nil {
		return nil, err
	}
	prof, err := (&profiles.Loader{}).Load(c.profile)
	if err != nil {
		return nil, err
	}
	// The profiles dataset requests may name, fixed now: a message names
	// one of these, never a file.
	registry, err := (&profiles.Loader{}).NewRegistry(profiles.RegistryConfig{Dir: c.profilesDir, Extra: []string{c.profile},
		Allow: splitList(c.datasetProfiles)})
	if err != nil {
		return nil, err
	}
	sources := splitList(c.sourceBuckets)
	for _, b := range sources {
		if !s3name.ValidBucket(b) {
			return nil, fmt.Errorf("--source-buckets: %q is not a valid S3 bucket name", b)
		}
		if b == c.outBucket || b == c.quarantine {
			return nil, fmt.Errorf("--source-buckets: %s holds this service's outputs", b)
		}
	}
	for _, b := range []string{c.inBucket, c.outBucket, c.quarantine} {
		if !s3name.ValidBucket(b) {
			return nil, fmt.Errorf("bucket %q is not a valid S3 bucket name", b)
		}
	}
	if c.maxMemoryMB < 0 || c.maxInflatedMB < 0 || c.maxInflateRatio < 0 {
		return nil, errors.New("--max-memory, --max-inflated-mb and --max-inflate-ratio must not be negative")
	}
	// What files in flight hold is charged to one budget shared by every
	// engine of the process; a deflated dataset inflates into the spool
	// folder, never into memory.
	pool := budget.New(budget.Config{Total: c.maxMemoryMB << 20, Workers: c.workers})
	// Burned-in text is read with one OCR engine per worker at most.
	text := openTextOCR(c.workers, false)
	ratio := c.maxInflateRatio
	if ratio == 0 {
		ratio = -1 // no ratio limit (0 is the library's default)
	}
	lim := dicomraw.Limits{MaxInflated: c.maxInflatedMB << 20, MaxInflateRatio: ratio, MaxDuration: c.maxTime,
		Scratch: func() (dicomraw.Scratch, error) { return dicomraw.TempScratch(tmp) }}
	eng, err := deid.New(text.engineConfig(deid.Config{Profile: prof, Key: key, Limits: lim, Memory: pool}))
	if err != nil {
		return nil, err
	}
	index, err := pseudonym.NewIndexer(key)
	if err != nil {
		return nil, err
	}
	// A long-running worker holds the embedded NATS server's caches and a
	// few jobs' spools: the heap may grow 300% between collections
	// (measured on the small bench workload: ~12% more instances/s than
	// the default 100%), under a soft limit of the memory budget and 64 MiB
	// for the rest, so that a process whose files hold all of the budget
	// collects rather than growing (docs/limits.md).
	s := &service{log: log, cfg: c, text: text, done: make(chan error, 1), gc: tuneGC(300, pool.Total()+64<<20)}
	ok := false
	defer func() {
		if !ok {
			s.shutdown()
		}
	}()

	// NATS: embedded unless --nats-url. Every connection authenticates,
	// the workers' in-process one too, and gets its role's permissions.
	top := ingest.DefaultTopology()
	top.Replicas, top.AckWait, top.Limits, top.Log = c.replicas, c.ackWait, c.limits, log.Named("topology")
	if c.natsURL == "" {
		dir := filepath.Join(c.data, natsauth.DirName)
		cr, created, err := natsauth.Ensure(dir)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: %w", err)
		}
		keys, err := cr.Keys(true)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: %w", err)
		}
		s.nats, err = embed.StartNATS(embed.NATSConfig{StoreDir: filepath.Join(c.data, "nats"), Listen: c.natsListen,
			Auth: natsauth.AuthConfig(keys), MaxStore: top.Limits.Budget(), GlobalTo: natsauth.ServiceAccount, Logger: log.Named("nats")})
		if err != nil {
			return nil, fmt.Errorf("embedded NATS: %w", err)
		}
		s.natsURL, s.natsCredDir = s.nats.ClientURL(), dir
		printNATSCredentials(stdout, dir, created, s.natsURL)
		log.Info("embedded NATS credentials", zap.String("dir", dir))
		s.nc, err = s.connectAs(natsauth.Worker, nats.Name("deid serve"))
	} else {
		s.natsURL = c.natsURL
		var cl *natsauth.Client
		if cl, err = natsauth.ClientFor(natsauth.Worker, c.natsCreds, c.data); err != nil {
			return nil, err
		}
		opts := append(cl.Opts, nats.Name("deid serve"), nats.MaxReconnects(-1),
			nats.ReconnectWait(500*time.Millisecond), nats.Timeout(5*time.Second),
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				if !nc.IsClosed() { // closing is not a disconnect
					log.Warn("NATS disconnected; reconnecting", zap.Error(err))
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", zap.String("server", redactURL(nc.ConnectedUrl()))) }),
			nats.ErrorHandler(natsErrors(log)))
		s.nc, err = nats.Connect(c.natsURL, opts...)
		if isAuthError(err) {
			err = fmt.Errorf("%w (%s)", err, cl.Hint())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w", redactURL(s.natsURL), err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := ingest.NewMetrics(reg)
	// Startup waits out a NATS leader election or a node still starting
	// (it has no JetStream API yet), within --startup-timeout; past it the
	// error is reported.
	setupCtx, cancelSetup := context.WithTimeout(parent, c.startupTimeout)
	defer cancelSetup()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return nil, err
	}
	if _, err := ingest.SetupRetrying(setupCtx, js, top, c.opTimeout); err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
			errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("NATS at %s has no JetStream for this account (start nats-server with -js, or enable jetstream in its configuration): %w",
				redactURL(s.natsURL), err)
		}
		return nil, fmt.Errorf("NATS JetStream setup: %w", err)
	}

	// S3: embedded unless --s3-endpoint; the embedded endpoint announces
	// every object created in the input bucket on deid.ingest.objects, as
	// MinIO's bucket notifications would.
	endpoint, access, secret := c.s3Endpoint, c.s3Access, c.s3Secret
	if endpoint == "" {
		roles, err := embeddedS3Credentials(c, stdout, log)
		if err != nil {
			return nil, err
		}
		s.s3Roles = roles
		s3Limits := c.s3Limits // the flags' limits; timeouts and connections at their defaults
		s3Limits.MaxObjectSize, s3Limits.UploadExpiry = int64(c.maxObjectSize), c.uploadExpiry
		op := roles[embed.RoleOperator]
		access, secret = op.AccessKey, op.SecretKey // the service's own requests
		// The embedded endpoint announces uploads as the notifier role
		// (its own account), as MinIO would: the workers' permissions do
		// not include announcing objects.
		var notifyJS jetstream.JetStream
		if s.nats != nil {
			if s.notifyConn, err = s.connectAs(natsauth.Notifier, nats.Name("deid serve: embedded S3 notifications")); err != nil {
				return nil, fmt.Errorf("embedded S3 notifications: %w", err)
			}
			notifyJS, _ = jetstream.New(s.notifyConn)
		} else {
			// External NATS: the worker's connection (its account) announces.
			notifyJS = js
		}
		s.s3, err = embed.StartS3(embed.S3Config{Dir: filepath.Join(c.data, "s3"), Listen: c.s3Listen,
			Credentials: roles, Buckets: embed.Buckets{Input: c.inBucket, Output: c.outBucket, Quarantine: c.quarantine},
			Limits:        s3Limits,
			NotifyBuckets: []string{c.inBucket}, Logger: log.Named("s3"),
			Notify: func(ctx context.Context, n embed.Notification) error {
				// One job per object version: a repeated notification of the
				// same bytes is dropped by JetStream's deduplication.
				_, err := notifyJS.Publish(ctx, ingest.SubjectObjects, n.Event,
					jetstream.WithMsgID("s3/"+string(hashKey(n.Bucket+"/"+n.Key+"/"+n.ETag))))
				return err
			}})
		if err != nil {
			return nil, fmt.Errorf("embedded S3: %w", err)
		}
		endpoint = s.s3.Endpoint()
	}
	s.s3Addr, s.creds = endpoint, [2]string{access, secret}
	if access == "" || secret == "" {
		return nil, errors.New("--s3-endpoint needs --s3-access-key and --s3-secret-key (or DEID_S3_ACCESS_KEY, DEID_S3_SECRET_KEY)")
	}
	mc, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: c.s3TLS, Region: c.s3Region})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", endpoint, err)
	}
	s.store = ingest.MinioStore{C: mc, Waiting: func(err error) {
		log.Warn("S3 does not answer yet; waiting within --startup-timeout", zap.String("endpoint", endpoint), zap.Error(err))
	}}
	if err := s.store.EnsureBuckets(setupCtx, c.inBucket, c.outBucket, c.quarantine); err != nil {
		return nil, fmt.Errorf("cannot use S3 at %s: %w", endpoint, err)
	}
	if c.minioNotifyARN != "" {
		if err := s.store.NotifyOnCreate(setupCtx, c.inBucket, c.minioNotifyARN); err != nil {
			return nil, fmt.Errorf("bucket notification %s -> %s: %w", c.inBucket, c.minioNotifyARN, err)
		}
	}

	projDir := c.projectsDir
	if projDir == "" {
		projDir = filepath.Join(c.data, "projects")
	}
	engines := &projectEngines{store: projects.DirStore{Dir: projDir}, registry: registry, limits: lim, memory: pool, text: text}
	// Workers beside the embedded endpoint use its objects directly; with
	// an external store they go through S3.
	var work ingest.Store = s.store
	if s.s3 != nil {
		work = localStore{s.s3.Local()}
	}
	svc, err := ingest.New(setupCtx, s.nc, work, ingest.Config{InBucket: c.inBucket, OutBucket: c.outBucket, Projects: engines,
		SourceBuckets: sources, QuarantineBucket: c.quarantine, Engine: eng, Index: index, Workers: c.workers, TempDir: tmp, Topology: top,
		MaxObjectSize: int64(c.maxObjectSize), SpoolMemory: spoolMemory(pool),
		StudySettle: c.studySettle, OpTimeout: c.opTimeout, TopologyCheck: c.topologyCheck, Logger: log.Named("ingest"), Metrics: metrics})
	if err != nil {
		return nil, err
	}

	// HTTP: health, readiness, metrics.
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !s.nc.IsConnected() {
			http.Error(w, "NATS not connected", http.StatusServiceUnavailable)
			return
		}
		if _, err := mc.BucketExists(ctx, c.inBucket); err != nil {
			http.Error(w, "S3 not reachable", http.StatusServiceUnavailable)
			return
		}
		// The work queue's consumer, the streams and the buckets: without
		// them uploads are accepted and never processed.
		if err := svc.Ready(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", c.httpAddr, err)
	}
	s.httpAddr = ln.Addr().String()
	// Health and metrics answers are small and quick: a client that holds
	// a connection without asking, or asks slowly, is cut off, and a flood
	// of connections is refused past a few dozen.
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: stdlog.New(io.Discard, "", 0)}
	go s.http.Serve(connlimit.Listen(ln, httpMaxConns))

	runCtx, cancel := context.WithCancel(parent)
	s.cancel = cancel
	go func() {
		err := svc.Run(runCtx)
		s.shutdown()
		s.done <- err
	}()
	log.Info("deid serve running", zap.String("nats", s.natsURL), zap.String("s3", endpoint),
		zap.String("in_bucket", c.inBucket), zap.String("out_bucket", c.outBucket), zap.String("profile", prof.Name),
		zap.Int("workers", c.workers), zap.String("http", s.httpAddr), zap.String("pixel_codecs", codec.Default().Summary()), zap.String("ocr", text.Describe()))
	fmt.Fprintf(stdout, "deid serve: NATS %s, S3 %s (buckets %s -> %s, quarantine %s), profile %s, http://%s/metrics\n",
		s.natsURL, endpoint, c.inBucket, c.outBucket, c.quarantine, prof.Name, s.httpAddr)
	fmt.Fprintf(stdout, "deid serve: pixel codecs: %s%s\n", codec.Default().Summary(), codecNote())
	fmt.Fprintf(stdout, "deid serve: burned-in text OCR: %s\n", text.Describe())
	ok = true
	return s, nil
}

// spoolMemory is how large a job's input or output may be and still be
// held in memory: a quarter of a worker's own part of the budget (a job
// holds up to three spools: its input, its output, and the previous
// job's output while it is stored), between 1 and 16 MiB. Larger ones
// are files in --data/tmp.
func spoolMemory(p *budget.Pool) int {
	return int(min(max(p.Own()/4, 1<<20), 16<<20))
}

// wait blocks until the service stopped (signal or Stop); it can be
// called any number of times.
func (s *service) wait() error {
	s.waitOnce.Do(func() { s.err = <-s.done })
	return s.err
}

// Stop asks the service to finish its jobs in flight and stop.
func (s *service) Stop() error {
	if s.cancel != nil {
		s.cancel()
	}
	return s.wait()
}

// shutdown stops what was started, in reverse order. The embedded NATS
// server goes last, after the client drained.
func (s *service) shutdown() {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.http.Shutdown(ctx)
		cancel()
	}
	if s.s3 != nil {
		s.s3.Close()
	}
	if s.notifyConn != nil {
		s.notifyConn.Drain()
	}
	if s.nc != nil {
		s.nc.Drain()
		for i := 0; i < 50 && !s.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if s.nats != nil {
		s.nats.Shutdown()
	}
	s.log.Sync()
	if s.gc != nil {
		s.gc()
	}
	s.text.Close()
}

// serviceKey loads the project key, or on the embedded default generates
// one into the data directory (with a warning: back it up).
func serviceKey(c serveConfig, log *zap.Logger) (pseudonym.Key, error) {
	path := c.keyFile
	if path == "" {
		if v := os.Getenv("DEID_KEY"); v != "" {
			return pseudonym.ParseKey([]byte(v))
		}
		path = filepath.Join(c.data, "project.key")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			k, err := pseudonym.GenerateKey()
			if err != nil {
				return pseudonym.Key{}, err
			}
			if err := pseudonym.WriteKeyFile(path, k); err != nil {
				return pseudonym.Key{}, fmt.Errorf("write project key: %w", err)
			}
			log.Warn("generated a new project key; back it up: without it pseudonyms cannot be reproduced", zap.String("path", path))
		}
	}
	k, err := pseudonym.LoadKeyFile(path)
	if err != nil {
		return pseudonym.Key{}, fmt.Errorf("project key: %w", err)
	}
	return k, nil
}

// connectAs opens an in-process connection to the embedded server as one
// of the roles, with its generated credentials.
func (s *service) connectAs(r natsauth.Role, opts ...nats.Option) (*nats.Conn, error) {
	cl, err := natsauth.ClientFor(r, natsauth.File(s.natsCredDir, r), "")
	if err != nil {
		return nil, err
	}
	return s.nats.Connect(append(cl.Opts, append(opts, nats.ErrorHandler(natsErrors(s.log)))...)...)
}

// printNATSCredentials says where each role's credentials are when they
// were just made (later starts log the directory).
func printNATSCredentials(w io.Writer, dir string, created []natsauth.Role, url string) {
	if len(created) == 0 {
		return
	}
	fmt.Fprintf(w, "embedded NATS %s requires credentials; generated (mode 0600, keep them private):\n", url)
	for _, r := range natsauth.Roles() {
		fmt.Fprintf(w, "  %-9s %s\n", r, natsauth.File(dir, r))
	}
	fmt.Fprintf(w, "  (notifier's password for URL-only object stores: %s)\n", natsauth.PasswordFile(dir))
	fmt.Fprintf(w, "  e.g. deid submit --nats-creds %s ...; nats --nkey %s --js-api-prefix '%s' ...\n",
		natsauth.File(dir, natsauth.Submitter), natsauth.File(dir, natsauth.Events), natsauth.ImportedAPIPrefix)
}

// natsErrors logs what the server refused a connection (a permission
// violation is a bug of the role's permissions, or an attack).
func natsErrors(log *zap.Logger) nats.ErrHandler {
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		log.Error("NATS refused an operation", zap.Error(err))
	}
}

// isAuthError reports the server refusing the credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		err != nil && strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// httpMaxConns bounds the connections of the /healthz, /readyz and
// /metrics listener: a monitoring system needs a handful.
const httpMaxConns = 32

// embeddedS3Credentials reads or creates the embedded endpoint's
// credentials, one file per role, and says where they are when they were
// just made. --s3-access-key and --s3-secret-key, given with the
// embedded endpoint, are the uploader's (as the single credential of
// earlier versions is, once migrated).
func embeddedS3Credentials(c serveConfig, stdout io.Writer, log *zap.Logger) (embed.RoleCredentials, error) {
	roles, setup, err := embed.EnsureRoleCredentials(c.data)
	if err != nil {
		return nil, fmt.Errorf("embedded S3 credentials: %w", err)
	}
	if c.s3Access != "" || c.s3Secret != "" {
		if c.s3Access == "" || c.s3Secret == "" {
			return nil, errors.New("--s3-access-key and --s3-secret-key go together")
		}
		roles[embed.RoleUploader] = embed.Credentials{AccessKey: c.s3Access, SecretKey: c.s3Secret}
	}
	if len(setup.Created) > 0 || setup.Migrated {
		fmt.Fprintln(stdout, "embedded S3 credentials, one file per role (mode 0600; give each role's file only to whom needs it):")
		for _, r := range embed.Roles {
			fmt.Fprintf(stdout, "  %-8s %s: %s\n", r, embed.CredentialsFile(c.data, r), r.Describe(c.inBucket, c.outBucket))
		}
		if setup.Migrated {
			fmt.Fprintf(stdout, "  the single credential of earlier versions (%s) is now the uploader's and nothing more: readers and operators use the new files\n",
				filepath.Join(c.data, "s3-credentials.json"))
		}
	}
	log.Info("embedded S3 credentials", zap.String("uploader", embed.CredentialsFile(c.data, embed.RoleUploader)),
		zap.String("reader", embed.CredentialsFile(c.data, embed.RoleReader)),
		zap.String("operator", embed.CredentialsFile(c.data, embed.RoleOperator)), zap.Bool("migrated", setup.Migrated))
	return roles, nil
}

// redactURL drops user and password from a server URL before it is shown.
func redactURL(u string) string {
	var parts []string
	for _, one := range strings.Split(u, ",") {
		if p, err := url.Parse(strings.TrimSpace(one)); err == nil && p.User != nil {
			p.User = nil
			one = p.String()
		}
		parts = append(parts, one)
	}
	return strings.Join(parts, ",")
}

// hashKey is an opaque id for a name that may identify (an object key).
func hashKey(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return []byte(hex.EncodeToString(h[:12]))
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
