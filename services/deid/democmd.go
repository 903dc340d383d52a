package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/embed"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/synth"
)

const demoUsage = `deid demo [--instances N] [--profile NAME] [--data DIR] [--keep]

Shows the main job with nothing installed: generates a small synthetic CT
study with fake identifiers, starts the whole service in this process
(embedded NATS JetStream and S3 endpoint, on loopback), uploads the study
to the input bucket as a hospital would, waits for the events, and prints
what happened: a before/after table of the identifying attributes, where
the outputs went, and the events published.
`

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage) }
	n := fs.Int("instances", 5, "slices in the synthetic study")
	profile := fs.String("profile", "research", "profile to de-identify with")
	data := fs.String("data", "", "data directory (default: a temporary one, removed at the end)")
	keep := fs.Bool("keep", false, "keep the data directory")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *n < 1 || fs.NArg() > 0 {
		fmt.Fprint(stderr, demoUsage)
		return exitUsage
	}
	dir := *data
	if dir == "" {
		d, err := os.MkdirTemp("", "deid-demo-")
		if err != nil {
			fmt.Fprintln(stderr, "deid demo:", err)
			return exitRejected
		}
		dir = d
		if !*keep {
			defer os.RemoveAll(dir)
		}
	}
	if err := runDemo(dir, *n, *profile, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "deid demo:", err)
		return exitRejected
	}
	return exitOK
}

func runDemo(dir string, n int, profile string, stdout, stderr io.Writer) error {
	var c serveConfig
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	serveFlags(&c, fs)
	c.data, c.profile, c.workers = dir, profile, 2
	c.natsListen, c.s3Listen, c.httpAddr = "", "127.0.0.1:0", "127.0.0.1:0" // nothing fixed: the demo never clashes with a running serve
	c.studySettle, c.logLevel = 2*time.Second, "error"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fmt.Fprintln(stdout, "1. starting the service: embedded NATS JetStream + S3 endpoint, profile", profile)
	srv, err := startService(ctx, c, io.Discard, stderr)
	if err != nil {
		return err
	}
	defer srv.Stop()

	// Listen to every event, public and audit: as the administrator, the
	// one role that sees both on core subjects.
	nc, err := srv.connectAs(natsauth.Admin, nats.Name("deid demo"))
	if err != nil {
		return err
	}
	defer nc.Close()
	events := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe("deid.events.>", events); err != nil {
		return err
	}
	audits := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe("deid.audit.>", audits); err != nil {
		return err
	}

	p := synth.DefaultPatient()
	study, err := synth.CTSeries(p, n)
	if err != nil {
		return err
	}
	// As a hospital would: with the uploader's credential, which can
	// put into the input bucket and nothing more; the outputs are read
	// with the reader's.
	up, rd := srv.s3Roles[embed.RoleUploader], srv.s3Roles[embed.RoleReader]
	mc, err := minio.New(srv.s3Addr, &minio.Options{Creds: credentials.NewStaticV4(up.AccessKey, up.SecretKey, "")})
	if err != nil {
		return err
	}
	reader, err := minio.New(srv.s3Addr, &minio.Options{Creds: credentials.NewStaticV4(rd.AccessKey, rd.SecretKey, "")})
	if err != nil {
		return err
	}
	// Hospitals name objects after patients; none of it may reach the outputs.
	prefix := strings.ReplaceAll(p.Name, "^", " ") + "/CT " + p.StudyDate + "/"
	fmt.Fprintf(stdout, "2. uploading a synthetic CT study (%d slices, fake patient) to s3://%s/%s\n", n, c.inBucket, prefix)
	for i, inst := range study {
		key := fmt.Sprintf("%sIM%04d.dcm", prefix, i+1)
		if _, err := mc.PutObject(ctx, c.inBucket, key, bytes.NewReader(inst.Data), int64(len(inst.Data)),
			minio.PutObjectOptions{ContentType: "application/dicom"}); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
	}
	fmt.Fprintln(stdout, "3. the bucket notifies deid.ingest.objects; workers de-identify, verify, store, announce")
	counts := map[string]int{}
	var done []ingest.InstanceDone
	var studyDone *ingest.StudyDone
	var failed []ingest.InstanceFailed
	var audited int
	for studyDone == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for events (%d done, %d failed)", len(done), len(failed))
		case m := <-audits:
			audited++
			_ = m
		case m := <-events:
			counts[m.Subject]++
			switch m.Subject {
			case ingest.SubjectInstanceDone:
				var ev ingest.InstanceDone
				json.Unmarshal(m.Data, &ev)
				done = append(done, ev)
			case ingest.SubjectInstanceFailed:
				var ev ingest.InstanceFailed
				json.Unmarshal(m.Data, &ev)
				failed = append(failed, ev)
			case ingest.SubjectStudyDone:
				var ev ingest.StudyDone
				json.Unmarshal(m.Data, &ev)
				studyDone = &ev
			}
		}
	}
	if len(done) == 0 {
		return fmt.Errorf("no instance was de-identified (%d failed)", len(failed))
	}
	sort.Slice(done, func(a, b int) bool { return done[a].Key < done[b].Key })

	// Before/after of the first slice.
	obj, err := reader.GetObject(ctx, c.outBucket, done[0].Key, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	outBytes, err := io.ReadAll(obj)
	if err != nil {
		return err
	}
	var inBytes []byte
	for _, inst := range study {
		inBytes = inst.Data
		break
	}
	// Find the input whose output is done[0]: compare Instance Number.
	outF, err := dicomraw.Parse(bytes.NewReader(outBytes), int64(len(outBytes)), dicomraw.Limits{})
	if err != nil {
		return err
	}
	num := value(outF, 0x00200013)
	for _, inst := range study {
		f, err := dicomraw.Parse(bytes.NewReader(inst.Data), int64(len(inst.Data)), dicomraw.Limits{})
		if err == nil && value(f, 0x00200013) == num {
			inBytes = inst.Data
		}
	}
	inF, err := dicomraw.Parse(bytes.NewReader(inBytes), int64(len(inBytes)), dicomraw.Limits{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n4. before and after (slice %s):\n\n", num)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTRIBUTE\tINPUT\tOUTPUT")
	rows := []struct {
		name string
		tag  uint32
	}{
		{"Patient's Name", 0x00100010}, {"Patient ID", 0x00100020}, {"Patient's Birth Date", 0x00100030},
		{"Patient's Sex", 0x00100040}, {"Study Date", 0x00080020}, {"Accession Number", 0x00080050},
		{"Institution Name", 0x00080080}, {"Referring Physician", 0x00080090}, {"Study Description", 0x00081030},
		{"Image Comments", 0x00204000}, {"Study Instance UID", 0x0020000D}, {"SOP Instance UID", 0x00080018},
		{"Patient Identity Removed", 0x00120062}, {"De-identification Method", 0x00120063},
		{"Longitudinal Temporal Info", 0x00280303},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, show(inF, r.tag), show(outF, r.tag))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n   pixel data identical: %v\n", samePixels(inF, outF))

	fmt.Fprintf(stdout, "\n5. outputs in s3://%s/ (keys are pseudonymised UIDs only):\n", c.outBucket)
	for _, d := range done {
		fmt.Fprintf(stdout, "   %s  %d bytes  sha256 %s…\n", d.Key, d.Size, d.SHA256[:16])
	}
	fmt.Fprintln(stdout, "\n6. events published:")
	subjects := make([]string, 0, len(counts))
	for s := range counts {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	for _, s := range subjects {
		fmt.Fprintf(stdout, "   %-30s %d\n", s, counts[s])
	}
	fmt.Fprintf(stdout, "   %-30s %d (trusted side: input keys for operators)\n", "deid.audit.>", audited)
	sd, _ := json.MarshalIndent(studyDone, "   ", "  ")
	fmt.Fprintf(stdout, "\n   deid.events.study.done:\n   %s\n", sd)
	if len(failed) > 0 {
		fmt.Fprintf(stdout, "\n   %d instance(s) failed and were quarantined in s3://%s/\n", len(failed), c.quarantine)
	}
	fmt.Fprintf(stdout, "\nRun it yourself: go run ./services/deid serve   (then upload to s3://%s on 127.0.0.1:9000, or deid submit)\n", c.inBucket)
	return nil
}

func value(f *dicomraw.File, tag uint32) string {
	for _, e := range f.Elements {
		if uint32(e.Tag) == tag && e.Loaded {
			return strings.TrimRight(string(e.Value), " \x00")
		}
	}
	return ""
}

func show(f *dicomraw.File, tag uint32) string {
	for _, e := range f.Elements {
		if uint32(e.Tag) == tag {
			if !e.Loaded || len(strings.TrimRight(string(e.Value), " \x00")) == 0 {
				return "(empty)"
			}
			v := value(f, tag)
			if len(v) > 46 {
				v = v[:43] + "..."
			}
			return v
		}
	}
	return "(removed)"
}

func samePixels(a, b *dicomraw.File) bool {
	read := func(f *dicomraw.File) []byte {
		for _, e := range f.Elements {
			if e.Tag == dicomraw.TagPixelData {
				buf := make([]byte, e.End-e.ValueOffset)
				f.Body.ReadAt(buf, e.ValueOffset)
				return buf
			}
		}
		return nil
	}
	pa, pb := read(a), read(b)
	return pa != nil && bytes.Equal(pa, pb)
}
