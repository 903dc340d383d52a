package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the service's Prometheus metrics. Labels never carry
// identifiers: outcomes and directions only.
type Metrics struct {
	Instances *prometheus.CounterVec // outcome: done, failed, retried
	Bytes     *prometheus.CounterVec // direction: in, out
	Latency   prometheus.Histogram   // seconds per instance, from job start to ack
	Pending   prometheus.Gauge       // jobs waiting in the work queue (consumer lag)
	AckPend   prometheus.Gauge       // jobs delivered and not yet acknowledged
	DLQ       prometheus.Counter     // jobs dead-lettered
	Studies   prometheus.Counter     // study.done events published
	Jobs      *prometheus.CounterVec // kind: study (prefix submissions expanded)
	// Recreated counts what the service found missing in JetStream and
	// created again (object: "stream DEID_INGEST", "consumer
	// deid-workers"...): someone deleted it; alert on any increase.
	Recreated *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Instances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_instances_total",
			Help: "Instances processed, by outcome (done, failed, retried)."}, []string{"outcome"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_bytes_total",
			Help: "Bytes read from the input bucket and written to the anonymised bucket."}, []string{"direction"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "deid_instance_seconds",
			Help: "Time from job delivery to acknowledgement.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "deid_consumer_pending",
			Help: "Jobs waiting in the work queue for the shared consumer (lag)."}),
		AckPend: prometheus.NewGauge(prometheus.GaugeOpts{Name: "deid_consumer_ack_pending",
			Help: "Jobs delivered to workers and not yet acknowledged."}),
		DLQ: prometheus.NewCounter(prometheus.CounterOpts{Name: "deid_dead_lettered_total",
			Help: "Jobs moved to the dead-letter stream after MaxDeliver attempts."}),
		Studies: prometheus.NewCounter(prometheus.CounterOpts{Name: "deid_studies_done_total",
			Help: "study.done events published."}),
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_jobs_total",
			Help: "Submitted jobs expanded into instance jobs."}, []string{"kind"}),
		Recreated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deid_topology_recreated_total",
			Help: "Streams, buckets and the work queue's consumer found missing and created again."}, []string{"object"}),
	}
	// Every object appears from the start, at 0, so that an alert on an
	// increase fires at the first recreation.
	for _, o := range Objects() {
		m.Recreated.WithLabelValues(o)
	}
	reg.MustRegister(m.Instances, m.Bytes, m.Latency, m.Pending, m.AckPend, m.DLQ, m.Studies, m.Jobs, m.Recreated)
	return m
}
