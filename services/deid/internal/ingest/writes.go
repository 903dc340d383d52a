package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// jsWrite is one JetStream write that a finished instance needs: its
// event, its audit record, its progress mark, its index entries.
type jsWrite struct {
	subject string
	data    []byte
	msgID   string // deduplication id ("" for key-value puts, which are idempotent)
	// create: a key-value create (the subject must hold no value yet);
	// when it already does, exists is set instead of an error.
	create bool
	exists bool
	err    error
}

// kvSubject is the subject a key-value bucket stores key under.
func kvSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// writeAll sends the writes together and waits for every acknowledgement:
// one round trip for all of them instead of a request and reply each, and
// no goroutine per write. A write not acknowledged (an error, or no answer
// within OpTimeout) is sent again synchronously with retries; the Msg-Id
// makes a repeat of one that was stored after all a no-op, and a
// key-value put or create is idempotent. Each write's outcome is in its
// err (and exists) fields.
func (s *Service) writeAll(ctx context.Context, ws []*jsWrite) {
	futs := make([]jetstream.PubAckFuture, len(ws))
	for i, w := range ws {
		f, err := s.js.PublishMsgAsync(&nats.Msg{Subject: w.subject, Data: w.data}, w.opts()...)
		if err == nil {
			futs[i] = f
		}
	}
	// One deadline for the round: once it passes, every write still
	// unanswered is sent again.
	wctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	for i, w := range ws {
		f := futs[i]
		if f == nil {
			w.err = errors.New("not sent")
		} else {
			select {
			case <-f.Ok():
				continue
			case err := <-f.Err():
				w.err = err
			case <-wctx.Done():
				w.err = wctx.Err()
			}
		}
		if w.create && isWrongLastSequence(w.err) {
			w.err, w.exists = nil, true
			continue
		}
		s.writeSync(ctx, w) // again, on its own
	}
}

// writeSync sends one write synchronously, retrying timeouts (a few
// times, each bounded by OpTimeout), and records its outcome in w.
func (s *Service) writeSync(ctx context.Context, w *jsWrite) {
	w.err = retry(ctx, s.cfg.OpTimeout, 5, func(ctx context.Context) error {
		_, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: w.subject, Data: w.data}, w.opts()...)
		if w.create && isWrongLastSequence(err) {
			w.exists = true
			return nil
		}
		return err
	})
}

func (w *jsWrite) opts() []jetstream.PublishOpt {
	var o []jetstream.PublishOpt
	if w.msgID != "" {
		o = append(o, jetstream.WithMsgID(w.msgID))
	}
	if w.create {
		o = append(o, jetstream.WithExpectLastSequencePerSubject(0))
	}
	return o
}

// isWrongLastSequence is the answer to a create whose subject already
// holds a message.
func isWrongLastSequence(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// recentKeys remembers key-value entries this process wrote lately, so
// that one written for every instance of a study (the accession number's
// index entry) is written once per study, not once per instance.
type recentKeys struct {
	mu   sync.Mutex
	seen map[string]time.Time
	ttl  time.Duration
	max  int
}

// fresh reports whether key was recorded within the TTL; if not, it
// records it now (the caller then writes it).
func (r *recentKeys) fresh(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if t, ok := r.seen[key]; ok && now.Sub(t) < r.ttl {
		return true
	}
	if r.seen == nil || len(r.seen) >= r.max {
		r.seen = map[string]time.Time{}
	}
	r.seen[key] = now
	return false
}

// forget drops a key whose write failed, so the next instance writes it.
func (r *recentKeys) forget(key string) {
	r.mu.Lock()
	delete(r.seen, key)
	r.mu.Unlock()
}

// logFailed logs the writes that failed for good (those whose failure
// does not fail the job).
func (s *Service) logFailed(what string, ws ...*jsWrite) {
	for _, w := range ws {
		if w.err != nil {
			s.log.Warn(what+" not recorded", zap.Error(w.err))
		}
	}
}
