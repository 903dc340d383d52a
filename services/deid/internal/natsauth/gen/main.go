// Command gen writes the shipped copies of the NATS accounts
// configuration: deploy/compose/nats-auth.conf, and the auth.conf key of
// the ConfigMap in deploy/k8s/nats/nats.yaml. Run by go generate in
// services/deid/internal/natsauth; TestShippedConfigs fails when they
// differ from natsauth.AuthConfig.
package main

import (
	"fmt"
	"os"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen COMPOSE_AUTH_CONF K8S_NATS_YAML")
		os.Exit(2)
	}
	conf := natsauth.AuthConfig(natsauth.Keys{})
	if err := os.WriteFile(os.Args[1], []byte(conf), 0o644); err != nil {
		fail(err)
	}
	y, err := os.ReadFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	out, err := natsauth.ReplaceConfigMapKey(string(y), "auth.conf", conf)
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(os.Args[2], []byte(out), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(1)
}
