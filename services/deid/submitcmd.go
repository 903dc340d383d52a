package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/s3name"
)

const submitUsage = `deid submit --bucket B --prefix P [--nats-url URL] [--nats-creds FILE] [--job-id ID] [--wait]

Asks the running service (deid serve) to de-identify every object under a
prefix of a bucket: a study, or any batch over existing data. The job is
published on deid.jobs.study with a Msg-Id, so submitting the same prefix
twice runs it once; give another --job-id to run it again. When every
object is finished, deid.events.study.done is published for each study
written and deid.events.job.done for the job.

With --wait, progress is printed until the job is finished; the exit
status is 0 when every object was written, 1 otherwise.

It connects as the submitter role: ` + natsFlagsHelp + `.
`

func submitCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, submitUsage) }
	bucket := fs.String("bucket", "", "bucket holding the inputs")
	prefix := fs.String("prefix", "", "key prefix of the objects to de-identify (empty: the whole bucket)")
	url := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server of the service")
	creds := fs.String("nats-creds", "", "NATS credentials (the submitter role's seed file)")
	data := fs.String("data", "./data", "data directory of a local deid serve, where its credentials are")
	jobID := fs.String("job-id", "", "job id: letters, digits, - and _ (default: derived from bucket and prefix)")
	wait := fs.Bool("wait", false, "wait until the job is finished, printing progress")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to try to reach NATS")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if err := envDefaults(fs); err != nil {
		fmt.Fprintln(stderr, "deid submit:", err)
		return exitUsage
	}
	if *bucket == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, submitUsage)
		return exitUsage
	}
	if !s3name.ValidBucket(*bucket) || !s3name.ValidPrefix(*prefix) {
		fmt.Fprintln(stderr, "deid submit: --bucket must be an S3 bucket name and --prefix an object key prefix (no . or .. segments)")
		return exitUsage
	}
	id := *jobID
	if id == "" {
		id = "job-" + string(hashKey(*bucket+"/"+*prefix))
	}
	if !ingest.ValidJobID(id) {
		fmt.Fprintln(stderr, "deid submit: --job-id takes letters, digits, - and _ (at most 64)")
		return exitUsage
	}
	cl, ok := connectNATS("deid submit", natsauth.Submitter, *url, *creds, *data, *timeout, stderr)
	if !ok {
		return exitRejected
	}
	defer cl.nc.Close()
	js := cl.js
	b, _ := json.Marshal(ingest.StudyJob{JobID: id, Bucket: *bucket, Prefix: *prefix})
	var ack *jetstream.PubAck
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout/2)
		ack, err = js.Publish(ctx, ingest.SubjectStudyJobs, b, jetstream.WithMsgID("study/"+id))
		cancel()
		if le := cl.nc.LastError(); err == nil || errors.Is(le, nats.ErrPermissionViolation) {
			break // done, or refused: trying again changes nothing
		}
		time.Sleep(time.Duration(attempt+1) * 300 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintf(stderr, "deid submit: publish: %s\n", cl.explain(err))
		return exitRejected
	}
	if ack.Duplicate {
		fmt.Fprintf(stdout, "job %s was already submitted (the duplicate is ignored; use another --job-id to run it again)\n", id)
	} else {
		fmt.Fprintf(stdout, "submitted job %s\n", id)
	}
	if !*wait {
		return exitOK
	}
	return waitJob(cl.nc, id, stdout, stderr)
}

// waitJob prints a job's progress until it is complete.
func waitJob(nc *nats.Conn, id string, stdout, stderr io.Writer) int {
	last := ""
	for {
		st, err := ingest.RequestJobStatus(nc, id, 5*time.Second)
		switch {
		case errors.Is(err, ingest.ErrNoSuchJob):
			// Not expanded yet.
		case err != nil:
			fmt.Fprintln(stderr, "deid submit: job status:", err)
		default:
			line := fmt.Sprintf("job %s: %d of %d objects finished (%d written, %d failed)", id, st.Done+st.Failed, st.Expected, st.Done, st.Failed)
			if line != last {
				fmt.Fprintln(stdout, line)
				last = line
			}
			if st.Complete {
				if st.JobError != "" {
					fmt.Fprintf(stdout, "job %s could not run: %s\n", id, st.JobError)
					return exitRejected
				}
				fmt.Fprintf(stdout, "job %s complete: %d studies written\n", id, st.Studies)
				if st.Failed > 0 {
					fmt.Fprintf(stdout, "%d objects failed: they are in the quarantine bucket, each with a note of why (events on deid.events.instance.failed)\n", st.Failed)
					return exitRejected
				}
				return exitOK
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}
