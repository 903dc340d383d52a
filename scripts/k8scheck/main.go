// Command k8scheck validates Kubernetes manifests offline: every document
// is decoded strictly into the Go types of k8s.io/api (the types the
// API server's OpenAPI schemas are generated from), so an unknown field, a
// wrong type or a misspelt key is an error, and the objects are checked
// for what the API server would refuse (selectors that do not match their
// templates, containers without images, ports without numbers). KEDA's
// ScaledObject is checked against its v1alpha1 fields, NATS JetStream
// trigger included.
//
// kubeconform is the usual tool, but it fetches its JSON schemas from
// GitHub at run time, which machines without that access cannot do.
//
//	go run ./scripts/k8scheck deploy/k8s/*.yaml deploy/k8s/nats/*.yaml   (from scripts/k8scheck: go run . FILES)
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: k8scheck FILE...")
		os.Exit(2)
	}
	bad := 0
	n := 0
	for _, path := range os.Args[1:] {
		docs, err := split(path)
		if err != nil {
			fmt.Printf("%s: %v\n", path, err)
			bad++
			continue
		}
		for i, doc := range docs {
			n++
			kind, err := check(doc)
			if err != nil {
				fmt.Printf("%s (document %d, %s): %v\n", path, i+1, kind, err)
				bad++
				continue
			}
			fmt.Printf("%s (document %d): %s ok\n", path, i+1, kind)
		}
	}
	fmt.Printf("%d documents, %d invalid\n", n, bad)
	if bad > 0 {
		os.Exit(1)
	}
}

func split(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
}

func stripComments(b []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

func check(doc []byte) (string, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return "?", err
	}
	kind := tm.APIVersion + "/" + tm.Kind
	strict := func(v any) error { return yaml.UnmarshalStrict(doc, v) }
	var err error
	switch kind {
	case "v1/ConfigMap":
		var o corev1.ConfigMap
		if err = strict(&o); err == nil {
			err = named(o.ObjectMeta)
		}
	case "v1/Secret":
		var o corev1.Secret
		if err = strict(&o); err == nil {
			err = named(o.ObjectMeta)
		}
	case "v1/Service":
		var o corev1.Service
		if err = strict(&o); err == nil {
			err = service(o)
		}
	case "apps/v1/Deployment":
		var o appsv1.Deployment
		if err = strict(&o); err == nil {
			err = workload(o.ObjectMeta, o.Spec.Selector, o.Spec.Template)
		}
	case "apps/v1/StatefulSet":
		var o appsv1.StatefulSet
		if err = strict(&o); err == nil {
			err = workload(o.ObjectMeta, o.Spec.Selector, o.Spec.Template)
			if err == nil && o.Spec.ServiceName == "" {
				err = errors.New("spec.serviceName is required")
			}
		}
	case "networking.k8s.io/v1/NetworkPolicy":
		var o networkingv1.NetworkPolicy
		if err = strict(&o); err == nil {
			err = named(o.ObjectMeta)
		}
	case "keda.sh/v1alpha1/ScaledObject":
		var o scaledObject
		if err = strict(&o); err == nil {
			err = o.validate()
		}
	default:
		err = fmt.Errorf("unknown kind %s", kind)
	}
	return kind, err
}

func named(m metav1.ObjectMeta) error {
	if m.Name == "" {
		return errors.New("metadata.name is required")
	}
	return nil
}

func service(s corev1.Service) error {
	if err := named(s.ObjectMeta); err != nil {
		return err
	}
	if len(s.Spec.Ports) == 0 {
		return errors.New("spec.ports is required")
	}
	for _, p := range s.Spec.Ports {
		if p.Port == 0 {
			return fmt.Errorf("port %q has no number", p.Name)
		}
	}
	return nil
}

func workload(m metav1.ObjectMeta, sel *metav1.LabelSelector, t corev1.PodTemplateSpec) error {
	if err := named(m); err != nil {
		return err
	}
	if sel == nil {
		return errors.New("spec.selector is required")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return err
	}
	if !s.Matches(labels.Set(t.Labels)) {
		return errors.New("spec.selector does not match the template's labels")
	}
	if len(t.Spec.Containers) == 0 {
		return errors.New("no containers")
	}
	vols := map[string]bool{}
	for _, v := range t.Spec.Volumes {
		vols[v.Name] = true
	}
	for _, c := range t.Spec.Containers {
		if c.Name == "" || c.Image == "" {
			return errors.New("a container needs a name and an image")
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			if p.ContainerPort == 0 {
				return fmt.Errorf("container %s: port without a number", c.Name)
			}
			ports[p.Name] = true
		}
		for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Port.StrVal != "" && !ports[pr.HTTPGet.Port.StrVal] {
				return fmt.Errorf("container %s: probe names port %q, which it does not declare", c.Name, pr.HTTPGet.Port.StrVal)
			}
		}
		for _, vm := range c.VolumeMounts {
			if !vols[vm.Name] && !claimed(vm.Name) {
				return fmt.Errorf("container %s mounts volume %q, which the pod does not define", c.Name, vm.Name)
			}
		}
	}
	return nil
}

// claimed volumes come from a StatefulSet's volumeClaimTemplates; the
// names used here are checked by hand in the manifests ("data").
func claimed(name string) bool { return name == "data" }

// scaledObject mirrors KEDA's keda.sh/v1alpha1 ScaledObject (the fields
// of github.com/kedacore/keda/v2/apis/keda/v1alpha1, without importing
// KEDA and its controller dependencies).
type scaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion             string `json:"apiVersion,omitempty"`
			Kind                   string `json:"kind,omitempty"`
			Name                   string `json:"name"`
			EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval  *int32 `json:"pollingInterval,omitempty"`
		InitialCooldown  *int32 `json:"initialCooldownPeriod,omitempty"`
		CooldownPeriod   *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount  *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount  *int32 `json:"maxReplicaCount,omitempty"`
		Triggers         []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
			MetricType string `json:"metricType,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}

// natsJetStreamKeys are the metadata keys KEDA's nats-jetstream scaler
// reads (keda.sh/docs/scalers/nats-jetstream).
var natsJetStreamKeys = map[string]bool{"natsServerMonitoringEndpoint": true, "account": true, "stream": true,
	"consumer": true, "lagThreshold": true, "activationLagThreshold": true, "useHttps": true}

func (o scaledObject) validate() error {
	if err := named(o.Metadata); err != nil {
		return err
	}
	if o.Spec.ScaleTargetRef.Name == "" {
		return errors.New("spec.scaleTargetRef.name is required")
	}
	if len(o.Spec.Triggers) == 0 {
		return errors.New("spec.triggers is required")
	}
	if mn, mx := o.Spec.MinReplicaCount, o.Spec.MaxReplicaCount; mn != nil && mx != nil && *mn > *mx {
		return errors.New("minReplicaCount exceeds maxReplicaCount")
	}
	for _, t := range o.Spec.Triggers {
		if t.Type != "nats-jetstream" {
			continue
		}
		for k := range t.Metadata {
			if !natsJetStreamKeys[k] {
				return fmt.Errorf("nats-jetstream trigger: unknown metadata key %q", k)
			}
		}
		for _, k := range []string{"natsServerMonitoringEndpoint", "account", "stream", "consumer"} {
			if t.Metadata[k] == "" {
				return fmt.Errorf("nats-jetstream trigger: %s is required", k)
			}
		}
	}
	return nil
}
