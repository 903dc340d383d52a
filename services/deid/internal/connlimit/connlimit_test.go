package connlimit

import (
	"io"
	"net"
	"testing"
	"time"
)

// At most max connections are served at once; one more is closed as it
// arrives; a slot freed by a closed connection serves the next one.
func TestListenerServesAtMostMax(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, 3)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var served []net.Conn
	for i := 0; i < 3; i++ {
		dial()
		served = append(served, <-accepted)
	}
	extra := dial()
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, extra); err != nil {
		t.Fatalf("the fourth connection was not closed: %v", err)
	}
	if l.Open() != 3 || l.Refused() != 1 {
		t.Fatalf("open %d refused %d, want 3 and 1", l.Open(), l.Refused())
	}
	served[0].Close()
	served[0].Close() // closing twice frees one slot, not two
	next := dial()
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("a freed slot did not serve the next connection")
	}
	if l.Open() != 3 {
		t.Fatalf("open %d, want 3", l.Open())
	}
	_ = next
	dial2 := dial()
	dial2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, dial2); err != nil || l.Refused() != 2 {
		t.Fatalf("past the limit again: %v, refused %d", err, l.Refused())
	}
}
