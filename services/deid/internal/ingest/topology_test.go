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
