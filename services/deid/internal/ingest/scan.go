package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// scanStream reads the messages of a stream whose subjects match filter,
// in order, with batched direct gets: no consumer, which is all a reader
// in another account may use (a consumer in the service's account could
// be made to deliver copies anywhere). fn gets each message's subject,
// headers and data.
func scanStream(ctx context.Context, js jetstream.JetStream, stream, filter string, fn func(subject string, h nats.Header, data []byte)) error {
	nc := js.Conn()
	prefix := strings.TrimSuffix(js.Options().APIPrefix, ".")
	if prefix == "" {
		prefix = "$JS.API"
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	seq := uint64(1)
	for {
		req, _ := json.Marshal(map[string]any{"seq": seq, "next_by_subj": filter, "batch": 256})
		subject := prefix + ".DIRECT.GET." + stream
		if err := nc.PublishRequest(subject, inbox, req); err != nil {
			return err
		}
		// A refused request is never answered: the server says so before
		// the flush's answer.
		if err := nc.Flush(); err != nil {
			return err
		}
		if le := nc.LastError(); errors.Is(le, nats.ErrPermissionViolation) && strings.Contains(le.Error(), strconv.Quote(subject)) {
			return fmt.Errorf("read %s: %w", stream, le)
		}
		for {
			m, err := sub.NextMsgWithContext(ctx)
			if err != nil {
				return fmt.Errorf("read %s: %w", stream, err)
			}
			switch m.Header.Get("Status") {
			case "":
			case "404": // nothing (more) matches
				return nil
			case "204": // end of the batch
				pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
				last, _ := strconv.ParseUint(m.Header.Get("Nats-Last-Sequence"), 10, 64)
				if pending == 0 || last < seq {
					return nil
				}
				seq = last + 1
			default:
				return fmt.Errorf("read %s: %s %s", stream, m.Header.Get("Status"), m.Header.Get("Description"))
			}
			if m.Header.Get("Status") == "204" {
				break
			}
			fn(m.Header.Get("Nats-Subject"), m.Header, m.Data)
		}
	}
}

// scanBucket reads the current values of a key-value bucket's keys that
// match filter (deleted keys skipped).
func scanBucket(ctx context.Context, js jetstream.JetStream, bucket, filter string, fn func(key string, value []byte)) error {
	pre := "$KV." + bucket + "."
	return scanStream(ctx, js, "KV_"+bucket, pre+filter, func(subject string, h nats.Header, data []byte) {
		if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			return
		}
		fn(strings.TrimPrefix(subject, pre), data)
	})
}
