package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"

	"github.com/dicomdeid/dicomdeid/services/deid/internal/ingest"
	"github.com/dicomdeid/dicomdeid/services/deid/internal/natsauth"
)

// Integration tests run the service against the servers users deploy:
// nats-server v2.15.2, versitygw v1.8.0 and MinIO (its bucket
// notifications into JetStream). scripts/test installs them with go
// install and sets DEID_REQUIRE_SERVERS=1, so in CI they run or fail;
// elsewhere they are skipped when a binary is missing.

// serverBinary finds an installed server binary.
func serverBinary(t *testing.T, name string) string {
	t.Helper()
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("DEID_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s is not installed (scripts/test installs it with go install)", name)
	}
	t.Skipf("%s is not installed; scripts/test installs it", name)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// startProcess runs a server on loopback and stops it (by its PID) when
// the test ends. Its output is kept for failure messages.
func startProcess(t *testing.T, env []string, bin string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), tail(out.String(), 3000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 60 s", url)
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not listening within 60 s", addr)
}

// testNATS is a nats-server a test runs: its client URL and the
// directory of its roles' credentials (natsauth.Ensure).
type testNATS struct{ url, creds string }

// file is the seed file of a role.
func (n testNATS) file(r natsauth.Role) string { return natsauth.File(n.creds, r) }

// connect connects as a role; the JetStream context uses the role's API
// prefix.
func (n testNATS) connect(t testing.TB, r natsauth.Role, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connectRole(t, n.url, n.creds, r, opts...)
}

// notifierURL is the URL versitygw is given: the notifier's password user.
func (n testNATS) notifierURL(t testing.TB) string {
	t.Helper()
	pw, err := os.ReadFile(natsauth.PasswordFile(n.creds))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(n.url, "nats://", "nats://"+natsauth.NotifierUser+":"+strings.TrimSpace(string(pw))+"@", 1)
}

func connectRole(t testing.TB, url, credDir string, r natsauth.Role, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	cl, err := natsauth.ClientFor(r, natsauth.File(credDir, r), "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, append(cl.Opts, opts...)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", r, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.NewWithAPIPrefix(nc, cl.APIPrefix())
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// startNATSServer runs nats-server with JetStream and the shipped
// accounts configuration (deploy/compose/nats-auth.conf, the roles' keys
// in its environment).
func startNATSServer(t *testing.T) testNATS {
	t.Helper()
	return startNATSServerIn(t, t.TempDir(), "", false)
}

// shippedAuth is the accounts configuration shipped for nats-server.
func shippedAuth(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/compose/nats-auth.conf")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startNATSServerIn starts nats-server with JetStream stored in dir,
// restricted to the listed CPUs ("1", "2,3") when cpus is set: taskset
// execs it, so every thread it starts is pinned and its PID is the
// server's. Clients must authenticate: the shipped accounts configuration,
// or with notifierPassword the same rendered with the notifier's password
// user (for versitygw, which takes only a URL).
func startNATSServerIn(t *testing.T, dir, cpus string, notifierPassword bool) testNATS {
	t.Helper()
	addr, mon := freePort(t), freePort(t)
	creds := filepath.Join(dir, "credentials")
	cr, _, err := natsauth.Ensure(creds)
	if err != nil {
		t.Fatal(err)
	}
	auth := shippedAuth(t)
	if notifierPassword {
		k, err := cr.Keys(true)
		if err != nil {
			t.Fatal(err)
		}
		k.NKeys = nil // from the environment, as the shipped file
		auth = natsauth.AuthConfig(k)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats-auth.conf"), []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	body := fmt.Sprintf("server_name: it\nlisten: %s\nhttp: %s\njetstream { store_dir: %q }\ninclude nats-auth.conf\n",
		addr, mon, filepath.Join(dir, "js"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, args := serverBinary(t, "nats-server"), []string{"-c", conf}
	if cpus != "" {
		bin, args = "taskset", append([]string{"-c", cpus, bin}, args...)
	}
	startProcess(t, cr.Env(), bin, args...)
	waitHTTP(t, "http://"+mon+"/healthz")
	return testNATS{url: "nats://" + addr, creds: creds}
}

const itAccess, itSecret = "deidintegration", "integration-secret-0123456789"

// startVersityGW runs versitygw over a directory; with natsURL its
// object-created events go to deid.ingest.objects.
func startVersityGW(t *testing.T, natsURL string) string {
	t.Helper()
	return startVersityGWIn(t, natsURL, t.TempDir())
}

// startVersityGWIn is startVersityGW keeping its objects under dir.
func startVersityGWIn(t *testing.T, natsURL, dir string) string {
	t.Helper()
	bin := serverBinary(t, "versitygw")
	addr := freePort(t)
	// Not "objects" and "objects-meta": versitygw refuses a sidecar path
	// that merely starts with the root path.
	root, meta := filepath.Join(dir, "objects"), filepath.Join(dir, "metadata")
	for _, d := range []string{root, meta} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--access", itAccess, "--secret", itSecret, "--port", addr, "--quiet"}
	if natsURL != "" {
		args = append(args, "--event-nats-url", natsURL, "--event-nats-topic", ingest.SubjectObjects)
	}
	// versitygw's own default, metadata in extended attributes, where the
	// filesystem has them (as deployed); else a sidecar directory.
	if xattrsWork(root) {
		args = append(args, "posix", root)
	} else {
		args = append(args, "posix", "--sidecar", meta, root)
	}
	startProcess(t, nil, bin, args...)
	waitTCP(t, addr)
	return addr
}

// An output is PUT signed with its SHA-256, computed once by the worker:
// the S3 server checks the bytes against it, so a digest that is not the
// bytes' is refused, and the right one stores them.
func TestIntegrationPutSignedWithDigest(t *testing.T) {
	addr := startVersityGW(t, "")
	mc, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(itAccess, itSecret, "")})
	if err != nil {
		t.Fatal(err)
	}
	st := ingest.MinioStore{C: mc}
	ctx := context.Background()
	if err := st.EnsureBuckets(ctx, "out"); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("dicom "), 50000)
	sum := sha256.Sum256(body)
	other := sha256.Sum256([]byte("other bytes"))
	err = st.Put(ctx, "out", "wrong.dcm", bytes.NewReader(body), int64(len(body)), ingest.PutOptions{Create: true, SHA256: hex.EncodeToString(other[:])})
	if err == nil {
		t.Fatal("a PUT signed with another digest was stored")
	}
	if err := st.Put(ctx, "out", "right.dcm", bytes.NewReader(body), int64(len(body)),
		ingest.PutOptions{Create: true, SHA256: hex.EncodeToString(sum[:]), Meta: map[string]string{"deid-sha256": hex.EncodeToString(sum[:])}}); err != nil {
		t.Fatalf("PUT signed with the bytes' digest: %v", err)
	}
	var got bytes.Buffer
	if _, _, err := st.Get(ctx, "out", "right.dcm", &got); err != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got.Bytes(), body))
	}
	if m, err := st.Metadata(ctx, "out", "right.dcm"); err != nil || m["deid-sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("metadata %v %v", m, err)
	}
	// Written once: the conditional create holds on this path too.
	err = st.Put(ctx, "out", "right.dcm", bytes.NewReader(body), int64(len(body)), ingest.PutOptions{Create: true, SHA256: hex.EncodeToString(sum[:])})
	if !errors.Is(err, ingest.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
}

// xattrsWork reports whether files under dir can carry user extended
// attributes.
func xattrsWork(dir string) bool {
	const probe = "user.deid-probe"
	if err := unix.Setxattr(dir, probe, []byte("1"), 0); err != nil {
		return false
	}
	unix.Removexattr(dir, probe)
	return true
}

// startMinIO runs MinIO with a NATS JetStream notification target that
// publishes on deid.ingest.objects, as the notifier role (its NKey seed).
func startMinIO(t *testing.T, n testNATS) string {
	t.Helper()
	bin := serverBinary(t, "minio")
	addr, console := freePort(t), freePort(t)
	env := []string{"MINIO_ROOT_USER=" + itAccess, "MINIO_ROOT_PASSWORD=" + itSecret, "MINIO_BROWSER=off",
		"MINIO_NOTIFY_NATS_ENABLE_PRIMARY=on", "MINIO_NOTIFY_NATS_ADDRESS_PRIMARY=" + strings.TrimPrefix(n.url, "nats://"),
		"MINIO_NOTIFY_NATS_NKEY_SEED_PRIMARY=" + n.file(natsauth.Notifier),
		"MINIO_NOTIFY_NATS_SUBJECT_PRIMARY=" + ingest.SubjectObjects, "MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY=on",
		"MINIO_NOTIFY_NATS_QUEUE_DIR_PRIMARY=" + t.TempDir(), "MINIO_UPDATE=off"}
	startProcess(t, env, bin, "server", "--address", addr, "--console-address", console, "--quiet", t.TempDir())
	waitHTTP(t, "http://"+addr+"/minio/health/ready")
	return addr
}

// externalService starts deid serve against external NATS (as the
// worker role) and S3.
func externalService(t *testing.T, n testNATS, s3 string, extra func(*serveConfig)) *service {
	t.Helper()
	c := serveConfigForTest(t)
	c.natsURL, c.natsCreds, c.s3Endpoint, c.s3Access, c.s3Secret = n.url, n.file(natsauth.Worker), s3, itAccess, itSecret
	if extra != nil {
		extra(&c)
	}
	srv := startForTest(t, c, io.Discard)
	srv.creds, srv.natsCredDir = [2]string{itAccess, itSecret}, n.creds
	return srv
}

// uploadAndAwait uploads corpus files to the input bucket and waits for
// each to be finished (audit events), then checks outputs against events.
func uploadAndAwait(t *testing.T, srv *service, files []string) (written, failed int) {
	t.Helper()
	nc, _ := srv.natsAs(t, natsauth.Admin)
	audits := auditFeed(t, nc)
	mc := srv.s3Client(t)
	ctx := context.Background()
	keys := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(corpusDir(t), f))
		if err != nil {
			t.Fatal(err)
		}
		key := "Doe Jane 1970/" + f
		if _, err := mc.PutObject(ctx, srv.cfg.inBucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		keys[key] = true
	}
	awaitInputs(t, nc, audits, keys, 2*time.Minute)
	js, _ := jetstream.New(nc)
	awaitDrained(t, js, time.Minute)
	for _, m := range streamMessages(t, js, ingest.StreamEvents) {
		switch m.Subject() {
		case ingest.SubjectInstanceDone:
			var ev ingest.InstanceDone
			json.Unmarshal(m.Data(), &ev)
			st, err := mc.StatObject(ctx, srv.cfg.outBucket, ev.Key, minio.StatObjectOptions{})
			if err != nil || st.Size != ev.Size {
				t.Errorf("done event without its output: %v", err)
			}
			if strings.Contains(string(m.Data()), "Doe") {
				t.Error("public event names the input")
			}
			written++
		case ingest.SubjectInstanceFailed:
			failed++
		}
	}
	return written, failed
}

var itFiles = []string{"ct_small_explicit_le.dcm", "mr_small_explicit_be.dcm", "rtplan_small.dcm", "sc_rgb_jpeg_baseline.dcm",
	"charset_japanese_ir87.dcm", "malformed_mr_truncated.dcm"}

// TestIntegrationVersityGW: real nats-server and versitygw; versitygw's
// own NATS events trigger the workers, and a submitted prefix runs too.
func TestIntegrationVersityGW(t *testing.T) {
	n := startNATSServerIn(t, t.TempDir(), "", true)
	// versitygw must be up for the service's bucket setup; it publishes
	// its events with core NATS (as the notifier's password user), which
	// the stream captures once the service has created it.
	vgw := startVersityGW(t, n.notifierURL(t))
	srv := externalService(t, n, vgw, nil)
	written, failed := uploadAndAwait(t, srv, itFiles)
	if written != 5 || failed != 1 {
		t.Errorf("versitygw events: %d written, %d failed; want 5 and 1", written, failed)
	}
	// A batch over existing data in another bucket.
	mc := srv.s3Client(t)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "archive", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(corpusDir(t), "nm_multiframe_heart.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "archive", "old/Doe Jane/nm.dcm", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runDeid(t, "submit", "--bucket", "archive", "--prefix", "old/", "--nats-url", n.url,
		"--nats-creds", n.file(natsauth.Submitter), "--wait")
	if code != 0 || !strings.Contains(out, "1 of 1 objects finished (1 written, 0 failed)") {
		t.Errorf("submit --wait against versitygw: %d\n%s%s", code, out, errOut)
	}
}

// TestIntegrationMinIO: real nats-server and MinIO; MinIO publishes its
// bucket notifications into JetStream (the service configures the input
// bucket to send them), and the workers read and write MinIO.
func TestIntegrationMinIO(t *testing.T) {
	n := startNATSServer(t)
	// MinIO's JetStream target needs the stream: a first service start
	// creates it (and every later start keeps it as it is).
	nc, js := n.connect(t, natsauth.Worker)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ingest.Setup(ctx, js, ingest.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	minioAddr := startMinIO(t, n)
	srv := externalService(t, n, minioAddr, func(c *serveConfig) { c.minioNotifyARN = "arn:minio:sqs::PRIMARY:nats" })
	written, failed := uploadAndAwait(t, srv, itFiles)
	if written != 5 || failed != 1 {
		t.Errorf("MinIO notifications: %d written, %d failed; want 5 and 1", written, failed)
	}
	q := 0
	for range srv.s3Client(t).ListObjects(context.Background(), srv.cfg.quarantine, minio.ListObjectsOptions{Recursive: true}) {
		q++
	}
	if q != 2 {
		t.Errorf("quarantine holds %d objects, want the failed input and its note", q)
	}
}
