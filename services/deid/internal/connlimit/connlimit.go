// Package connlimit bounds the connections a listener serves at once.
package connlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listener serves at most a fixed number of connections at once; one
// more is closed as soon as it is accepted. Closing at once, rather than
// leaving the connection waiting in the kernel's queue (as
// golang.org/x/net/netutil does), tells a client at once to retry, and
// keeps a flood of idle connections from queueing up behind the ones
// being served.
type Listener struct {
	net.Listener
	slots   chan struct{}
	refused atomic.Int64
}

// Listen limits ln to max connections at once.
func Listen(ln net.Listener, max int) *Listener {
	if max < 1 {
		max = 1
	}
	return &Listener{Listener: ln, slots: make(chan struct{}, max)}
}

// Accept returns the next connection there is room for.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &conn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refused.Add(1)
			c.Close()
		}
	}
}

// Open is the number of connections being served.
func (l *Listener) Open() int { return len(l.slots) }

// Refused is the number of connections closed for want of room.
func (l *Listener) Refused() int64 { return l.refused.Load() }

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
