// Package budget shares a memory budget among the workers of a process.
//
// What a file makes the engine hold grows with the file: the parsed tree
// (every element and item), the values read into memory, the identifying
// values the verifier looks for. A hostile file of a few kilobytes can
// hold millions of elements; a few such files processed at once would
// exhaust the process. Each file being processed has an Account that the
// parser and the engine charge as they allocate; a file whose charges go
// past what one file may hold is refused.
//
// The budget is split in two. Each worker has its own part (Total/2
// divided by Workers): a file within it never waits. The other half is
// shared: one file at a time may grow into it, and a second file that
// needs it waits until the first is done. Most files are small and never
// wait; a large file (a slide or an enhanced multi-frame with many
// thousand per-frame items) can still use half the process's budget; and
// however the files come, the charges of all files together stay within
// Total.
//
// Why a file is refused depends only on the file and the configuration
// (Total and Workers), never on what else is running: the same input is
// accepted or refused the same way by every worker. Waiting instead of
// refusing is what keeps that true when two large files come together.
// A file waits for the shared part at most MaxWait (a deadlock breaker:
// a caller that holds something another waiter needs while its own file
// holds the shared part); past it the charge fails with an ExceededError
// whose Wait is set, which the engine reports as an error worth another
// try, not as a refusal of the file.
package budget

import (
	"fmt"
	"sync"
	"time"
)

// Config sizes a Pool.
type Config struct {
	// Total is the most all accounts together may hold, in bytes.
	Total int64
	// Workers is how many files are processed at once (accounts open at
	// the same time).
	Workers int
	// MaxWait bounds the wait for the shared part (default one minute).
	MaxWait time.Duration
}

// DefaultTotal is the default budget for a number of workers: 32 MiB per
// worker, at least 128 MiB.
func DefaultTotal(workers int) int64 {
	return max(128<<20, int64(workers)*32<<20)
}

// Pool is a process's memory budget. It is safe for concurrent use.
type Pool struct {
	total   int64
	own     int64 // what one account holds without the shared part
	perFile int64 // what one account may hold at most
	maxWait time.Duration
	lane    chan struct{} // a token while one account uses the shared part
}

// New returns a pool; a Total of 0 or less takes DefaultTotal.
func New(c Config) *Pool {
	if c.Workers < 1 {
		c.Workers = 1
	}
	if c.Total <= 0 {
		c.Total = DefaultTotal(c.Workers)
	}
	if c.MaxWait <= 0 {
		c.MaxWait = time.Minute
	}
	shared := c.Total / 2
	own := (c.Total - shared) / int64(c.Workers)
	return &Pool{total: c.Total, own: own, perFile: own + shared, maxWait: c.MaxWait, lane: make(chan struct{}, 1)}
}

// Total is the budget of all files together.
func (p *Pool) Total() int64 { return p.total }

// PerFile is the most one file may hold: its worker's part and the
// shared part.
func (p *Pool) PerFile() int64 { return p.perFile }

// Own is what a file holds without waiting.
func (p *Pool) Own() int64 { return p.own }

// Account opens the account of one file; Close it when the file is done.
func (p *Pool) Account() *Account { return &Account{pool: p} }

// Account is what one file holds. Its methods may be called from any
// goroutine, one at a time or not.
type Account struct {
	pool   *Pool
	mu     sync.Mutex
	used   int64
	shared bool // holds the pool's shared part
	err    error
	closed bool
}

// ExceededError is the refusal of a file that would hold more than it
// may. Its text names the limit, never the file's content.
type ExceededError struct {
	Limit int64 // bytes
	Wait  bool  // refused for waiting too long, not for its own size
}

func (e *ExceededError) Error() string {
	if e.Wait {
		return fmt.Sprintf("the file needs more than its worker's %d MiB of the memory budget, and waited too long for the shared part", e.Limit>>20)
	}
	return fmt.Sprintf("the file needs more than the %d MiB of memory one file may hold", e.Limit>>20)
}

// Charge adds n bytes to what the file holds. It fails, for good, once
// the file would hold more than PerFile; it waits while another file
// holds the shared part and this one needs it. A nil account charges
// nothing.
func (a *Account) Charge(n int64) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if a.closed {
		a.err = fmt.Errorf("budget: charge to a closed account")
		return a.err
	}
	a.used += n
	if a.used > a.pool.perFile {
		a.err = &ExceededError{Limit: a.pool.perFile}
		return a.err
	}
	if a.used > a.pool.own && !a.shared {
		t := time.NewTimer(a.pool.maxWait)
		defer t.Stop()
		select {
		case a.pool.lane <- struct{}{}:
			a.shared = true
		case <-t.C:
			a.err = &ExceededError{Limit: a.pool.own, Wait: true}
			return a.err
		}
	}
	return nil
}

// Used is what the file holds, in bytes.
func (a *Account) Used() int64 {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.used
}

// Close ends the account: what it held is given back (the memory itself
// is the collector's to reclaim). Close can be called more than once.
func (a *Account) Close() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	if a.shared {
		<-a.pool.lane
		a.shared = false
	}
}
