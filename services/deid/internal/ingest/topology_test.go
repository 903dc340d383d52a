package ingest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startTestCluster starts three in-process JetStream nodes routed to each
// other on 127.0.0.1 and waits until they have a meta leader.
func startTestCluster(t *testing.T) ([]*server.Server, []*server.Options) {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	nodes, opts := make([]*server.Server, 3), make([]*server.Options, 3)
	for i := range nodes {
		opts[i] = &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), NoSigs: true, Routes: routes,
			Cluster: server.ClusterOpts{Name: "deid-test", Host: "127.0.0.1", Port: ports[i]}}
		nodes[i] = startNode(t, opts[i])
	}
	// Formed when every node answers a JetStream API request (which needs
	// a meta leader).
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range nodes {
		for !formed(s) {
			if time.Now().After(deadline) {
				t.Fatal("cluster did not form")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nodes, opts
}

func startNode(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	return s
}

func formed(s *server.Server) bool {
	if !s.ReadyForConnections(100 * time.Millisecond) {
		return false
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		return false
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// A worker restarted while one node of an R3 cluster is down must get
// going: the streams, buckets and consumer exist, and finding them needs
// no placement (creating them again would: "no suitable peers for
// placement, peer offline", which stopped a restarted worker in
// scripts/faults).
func TestSetupWithANodeDown(t *testing.T) {
	nodes, _ := startTestCluster(t)
	top := DefaultTopology()
	top.Replicas = 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := SetupRetrying(ctx, connectJS(t, nodes[0]), top, 5*time.Second); err != nil {
		t.Fatalf("first setup: %v", err)
	}
	nodes[2].Shutdown()
	nodes[2].WaitForShutdown()
	cons, err := SetupRetrying(ctx, connectJS(t, nodes[1]), top, 5*time.Second)
	if err != nil {
		t.Fatalf("setup with a node down: %v", err)
	}
	if info, err := cons.Info(ctx); err != nil || info.Config.MaxDeliver != top.MaxDeliver {
		t.Fatalf("consumer after setup: %v %+v", err, info)
	}
}

func connectJS(t *testing.T, s *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}

// Startup waits out what a cluster says while it elects leaders or a node
// is away, and reports at once what waiting cannot fix.
func TestElectionError(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"unanswered request", fmt.Errorf("stream X: %w", context.DeadlineExceeded), true},
		{"nats timeout", nats.ErrTimeout, true},
		{"no JetStream API yet", fmt.Errorf("stream X: %w", nats.ErrNoResponders), true},
		{"temporarily unavailable", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"no peers while a node is away", fmt.Errorf("key-value X: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}), true},
		{"JetStream not enabled", jetstream.ErrJetStreamNotEnabled, false},
		{"JetStream not enabled for the account", fmt.Errorf("stream X: %w", jetstream.ErrJetStreamNotEnabledForAccount), false},
		{"conflicting configuration", jetstream.ErrStreamNameAlreadyInUse, false},
		{"no servers", nats.ErrNoServers, false},
	} {
		if got := electionError(c.err); got != c.want {
			t.Errorf("%s: electionError = %v, want %v", c.name, got, c.want)
		}
	}
}

// Readiness names what is missing: a stream, a bucket or the work queue's
// consumer deleted by an administrator; a service that is not running
// recreates nothing, so each stays missing until Setup runs.
func TestMissing(t *testing.T) {
	s := startNode(t, &server.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if m, err := Missing(ctx, js); err != nil || len(m) != len(Objects()) {
		t.Fatalf("before setup: %v %v", m, err)
	}
	if _, err := Setup(ctx, js, DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	if m, err := Missing(ctx, js); err != nil || len(m) != 0 {
		t.Fatalf("after setup: %v %v", m, err)
	}
	for _, c := range []struct {
		del  func() error
		want []string
	}{
		{func() error { return js.DeleteConsumer(ctx, StreamIngest, ConsumerName) }, []string{"consumer " + ConsumerName}},
		{func() error { return js.DeleteKeyValue(ctx, KVIndex) }, []string{"bucket " + KVIndex}},
		{func() error { return js.DeleteStream(ctx, StreamAudit) }, []string{"stream " + StreamAudit}},
		{func() error { return js.DeleteStream(ctx, StreamIngest) }, []string{"stream " + StreamIngest, "consumer " + ConsumerName}},
	} {
		if err := c.del(); err != nil {
			t.Fatal(err)
		}
		m, err := Missing(ctx, js)
		if err != nil || fmt.Sprint(m) != fmt.Sprint(c.want) {
			t.Errorf("missing %v (%v), want %v", m, err, c.want)
		}
		_, created, err := setup(ctx, js, DefaultTopology())
		if err != nil || fmt.Sprint(created) != fmt.Sprint(c.want) {
			t.Errorf("setup created %v (%v), want %v", created, err, c.want)
		}
	}
}

// Streams made by an older version (no limits, discard old, deletes and
// purges allowed) are brought to this version's safe settings in place,
// and what an operator set is kept.
func TestSetupUpdatesExistingStreams(t *testing.T) {
	s := startNode(t, &server.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := DefaultTopology()
	for _, sc := range old.streams() {
		sc.MaxBytes, sc.MaxMsgs, sc.Discard, sc.DenyDelete, sc.DenyPurge, sc.AllowDirect = 0, 0, jetstream.DiscardOld, false, false, false
		if sc.Name == StreamEvents {
			sc.MaxBytes = 12345 // an operator's choice
		}
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Setup(ctx, js, DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	want := map[string]jetstream.StreamConfig{}
	for _, sc := range DefaultTopology().streams() {
		want[sc.Name] = sc
	}
	for name, w := range want {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		got := st.CachedInfo().Config
		wantBytes := w.MaxBytes
		if name == StreamEvents {
			wantBytes = 12345
		}
		if got.MaxBytes != wantBytes || got.Discard != jetstream.DiscardNew || got.DenyPurge != w.DenyPurge ||
			got.DenyDelete != w.DenyDelete || got.AllowDirect != w.AllowDirect || w.MaxMsgs > 0 && got.MaxMsgs != w.MaxMsgs {
			t.Errorf("%s after setup: max_bytes %d, max_msgs %d, discard %v, deny delete %v, deny purge %v, direct %v",
				name, got.MaxBytes, got.MaxMsgs, got.Discard, got.DenyDelete, got.DenyPurge, got.AllowDirect)
		}
	}
}
