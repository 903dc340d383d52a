// Package embed runs the servers `deid serve` needs when none are given:
// a NATS server with JetStream and an S3-compatible endpoint, both in the
// process, both storing under the data directory, both on loopback. They
// are the same software users run in production (nats-server, versitygw),
// so the embedded default behaves as a deployment does.
package embed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// NATSConfig configures an embedded NATS server.
type NATSConfig struct {
	// StoreDir holds the JetStream file store.
	StoreDir string
	// Listen is host:port for clients (deid submit, MinIO, tools); empty:
	// no TCP listener, in-process connections only.
	Listen string
	// Auth is the accounts block of the configuration (natsauth.AuthConfig
	// with the deployment's keys): every connection, TCP or in-process,
	// authenticates as one of its users and gets that user's permissions.
	// It is required with a listener; without one (in-process only, for
	// tests of the pipeline) it may be empty.
	Auth string
	// MaxStore is the JetStream file store's budget in bytes (0: the
	// server's default, three quarters of the free disk). Streams with a
	// size limit reserve it from this budget when they are created.
	MaxStore int64
	// GlobalTo names the account that takes over the JetStream data a
	// server without accounts stored (account $G: an earlier version's
	// data directory), so that its streams, consumers and buckets are
	// found, not created empty beside the old ones.
	GlobalTo string
	Logger   *zap.Logger
}

// NATS is a running embedded NATS server.
type NATS struct {
	srv *server.Server
}

// StartNATS starts the server and returns once it accepts connections.
func StartNATS(c NATSConfig) (*NATS, error) {
	if c.Auth == "" && c.Listen != "" {
		return nil, errors.New("no accounts configured: the embedded server does not listen unauthenticated")
	}
	opts := &server.Options{}
	if c.Auth != "" {
		if err := opts.ProcessConfigString(c.Auth); err != nil {
			return nil, fmt.Errorf("accounts configuration: %w", err)
		}
	}
	opts.ServerName, opts.JetStream, opts.StoreDir, opts.NoSigs = "deid-embedded", true, c.StoreDir, true
	opts.JetStreamMaxStore = c.MaxStore
	// No monitoring, cluster, leaf node or websocket listener: clients only.
	opts.HTTPPort, opts.Cluster.Port, opts.LeafNode.Port, opts.Websocket.Port = 0, 0, 0, 0
	if c.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w", c.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: bad port", c.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	if c.GlobalTo != "" && c.StoreDir != "" {
		moved, err := adoptGlobal(c.StoreDir, c.GlobalTo)
		if err != nil {
			return nil, fmt.Errorf("JetStream data of the data directory's earlier version: %w", err)
		}
		if moved && c.Logger != nil {
			c.Logger.Warn("JetStream data stored without accounts (account $G) moved to the service's account",
				zap.String("account", c.GlobalTo))
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	if c.Logger != nil {
		srv.SetLoggerV2(natsLog{c.Logger.Sugar()}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		if c.Listen != "" {
			return nil, fmt.Errorf("not ready within 10 s (is %s already in use?)", c.Listen)
		}
		return nil, errors.New("not ready within 10 s")
	}
	return &NATS{srv: srv}, nil
}

// adoptGlobal moves <store>/jetstream/$G to <store>/jetstream/<account>
// when the account has no data yet. A server keeps an account's streams
// under a directory named after it; nothing in them names the account.
func adoptGlobal(store, account string) (bool, error) {
	js := filepath.Join(store, "jetstream")
	old, dst := filepath.Join(js, server.DEFAULT_GLOBAL_ACCOUNT), filepath.Join(js, account)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if _, err := os.Stat(dst); err == nil {
		return false, nil // the account's own data wins; $G stays as it is
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, os.Rename(old, dst)
}

// ClientURL is the nats:// URL clients connect to ("" without a listener).
func (n *NATS) ClientURL() string {
	if n.srv.Addr() == nil {
		return ""
	}
	return n.srv.ClientURL()
}

// Connect opens an in-process connection (no TCP). It authenticates like
// any other: opts must carry a user's credentials.
func (n *NATS) Connect(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect("", append(opts, nats.InProcessServer(n.srv))...)
}

// Shutdown stops the server; JetStream data stays on disk.
func (n *NATS) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// natsLog sends the server's log to zap. Its notices (banner, JetStream
// layout) are debug detail for a service that embeds it.
type natsLog struct{ l *zap.SugaredLogger }

func (n natsLog) Noticef(f string, v ...any) { n.l.Debugf(f, v...) }
func (n natsLog) Warnf(f string, v ...any)   { n.l.Warnf(f, v...) }
func (n natsLog) Fatalf(f string, v ...any)  { n.l.Errorf(f, v...) }
func (n natsLog) Errorf(f string, v ...any)  { n.l.Errorf(f, v...) }
func (n natsLog) Debugf(f string, v ...any)  { n.l.Debugf(f, v...) }
func (n natsLog) Tracef(f string, v ...any)  { n.l.Debugf(f, v...) }
