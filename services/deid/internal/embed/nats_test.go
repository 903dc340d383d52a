package embed

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// A data directory of an earlier version (JetStream without accounts:
// everything in $G) keeps its streams and their messages when the server
// starts with accounts: they belong to the service's account.
func TestStartNATSAdoptsGlobalAccountData(t *testing.T) {
	store := t.TempDir()
	old, err := StartNATS(NATSConfig{StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := old.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := js.Publish(ctx, "work.x", []byte("job")); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	old.Shutdown()

	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	auth := "accounts { SVC { jetstream: enabled, users: [{nkey: " + pub + "}] } }\n"
	n, err := StartNATS(NATSConfig{StoreDir: store, Auth: auth, GlobalTo: "SVC"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	// In process too (the server answers it only after its auth timeout).
	if _, err := n.Connect(); err == nil {
		t.Error("an in-process connection without credentials was let in")
	}
	nc, err = n.Connect(nats.Nkey(pub, kp.Sign))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	st, err := js.Stream(ctx, "WORK")
	if err != nil {
		t.Fatalf("the earlier version's stream: %v", err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 3 {
		t.Errorf("the earlier version's messages: %v %+v", err, info)
	}
}

// Without accounts the embedded server does not listen.
func TestStartNATSRefusesToListenUnauthenticated(t *testing.T) {
	if n, err := StartNATS(NATSConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}); err == nil {
		n.Shutdown()
		t.Fatal("an embedded server listens without accounts")
	}
}
