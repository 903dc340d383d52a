package deid

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Hostile inputs reach the engine as refusals: a *Rejection whose reason
// carries no value of the file, never a panic and never a Job.

func hostileHdr(t testing.TB, b []byte, tag dicomraw.Tag, vr string, length uint32) []byte {
	t.Helper()
	out, err := dicomraw.AppendHeader(b, tag, vr, length, dicomraw.Encoding{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hostileBase is a valid explicit VR LE CT whose dataset the cases extend.
func hostileBase(t testing.TB) []byte {
	return buildFile(t, false, sampleCT("PID-HOSTILE-0001", "1.2.826.0.1.999.1.2.9"))
}

// deflatedFile rewrites a built file in the deflated transfer syntax.
func deflatedFile(t testing.TB, in []byte) []byte {
	t.Helper()
	f := parse(t, in).f
	syn, _ := dicomraw.LookupSyntax(dicomraw.DeflatedExplicitVRLE)
	f.Syntax = syn
	var out bytes.Buffer
	if err := dicomraw.Write(&out, f, []dicomraw.MetaElement{
		{Tag: 0x00020002, VR: "UI", Value: []byte(ctClass)},
		{Tag: 0x00020003, VR: "UI", Value: []byte("1.2.826.0.1.999.1.2.9")},
		{Tag: 0x00020010, VR: "UI", Value: []byte(dicomraw.DeflatedExplicitVRLE)},
	}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func checkRejection(t *testing.T, e *Engine, in []byte, kind string) {
	t.Helper()
	var j *Job
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Plan panicked: %v", r)
			}
		}()
		j, err = e.Plan(bytes.NewReader(in), int64(len(in)))
	}()
	if err == nil || j != nil {
		t.Fatalf("planned (job %v, err %v), want a %s rejection", j != nil, err, kind)
	}
	var rj *Rejection
	if !errors.As(err, &rj) {
		t.Fatalf("refusal %T is not a *Rejection: %v", err, err)
	}
	if kind != "" && rj.Kind != kind {
		t.Fatalf("rejection kind %s (%v), want %s", rj.Kind, err, kind)
	}
	for _, v := range []string{"PID-HOSTILE", "Wojciechowska", "Aleksandra", "Hartmann", "ACC12345", "1.2.826.0.1.999"} {
		if strings.Contains(rj.Reason, v) {
			t.Fatalf("rejection %q carries a value of the file", rj.Reason)
		}
	}
}

func TestPlanRejectsHostileInputs(t *testing.T) {
	base := hostileBase(t)
	if _, err := newEngine(t, builtinProfile(t, "research"), 3).Plan(bytes.NewReader(base), int64(len(base))); err != nil {
		t.Fatalf("the base file itself is refused: %v", err)
	}
	with := func(tail []byte) []byte { return append(append([]byte(nil), base...), tail...) }

	var deep []byte
	for i := 0; i < 100_000; i++ {
		deep = hostileHdr(t, deep, 0x00400275, "SQ", dicomraw.Undefined)
		deep = hostileHdr(t, deep, dicomraw.TagItem, "", dicomraw.Undefined)
	}
	for i := 0; i < 100_000; i++ {
		deep = hostileHdr(t, deep, dicomraw.TagItemDelimitation, "", 0)
		deep = hostileHdr(t, deep, dicomraw.TagSequenceDelimiter, "", 0)
	}
	absurd := append(hostileHdr(t, nil, 0x00091010, "OB", 0xFFFFFFF0), make([]byte, 64)...)
	items := hostileHdr(t, nil, 0x00400275, "SQ", dicomraw.Undefined)
	for i := 0; i < 5000; i++ {
		items = hostileHdr(t, items, dicomraw.TagItem, "", 0)
	}
	items = hostileHdr(t, items, dicomraw.TagSequenceDelimiter, "", 0)
	bomb := deflatedFile(t, with(append(hostileHdr(t, nil, 0x00091010, "OB", 4<<20), make([]byte, 4<<20)...)))
	many := sampleCT("PID-HOSTILE-0001", "1.2.826.0.1.999.1.2.9")
	for i := 0; i < 5000; i++ {
		many = append(many, s(0x00091000+uint32(i%0xE000)+0x1000, "LO", "X"))
	}

	cases := []struct {
		name string
		in   []byte
		lim  dicomraw.Limits
		kind string
	}{
		{"not DICOM", []byte("Wojciechowska^Aleksandra PID-HOSTILE-0001"), dicomraw.Limits{}, "not-dicom"},
		{"deep nesting", with(deep), dicomraw.Limits{}, "limit"},
		{"absurd length", with(absurd), dicomraw.Limits{}, "truncated"},
		{"bogus VR ZZ", with([]byte{0x10, 0x00, 0x30, 0x00, 'Z', 'Z', 2, 0, 'A', 'B'}), dicomraw.Limits{}, "malformed"},
		{"bogus VR NUL", with([]byte{0x10, 0x00, 0x30, 0x00, 0, 0, 2, 0, 'A', 'B'}), dicomraw.Limits{}, "malformed"},
		{"many items", with(items), dicomraw.Limits{MaxElements: 1000}, "limit"},
		{"deflate bomb", bomb, dicomraw.Limits{MaxInflated: 1 << 20}, "limit"},
		{"value over MaxValueLength", with(append(hostileHdr(t, nil, 0x00091010, "OB", 4096), make([]byte, 4096)...)), dicomraw.Limits{MaxValueLength: 1024}, "limit"},
		{"time limit", buildFile(t, false, many), dicomraw.Limits{MaxDuration: time.Nanosecond}, "limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := New(Config{Profile: builtinProfile(t, "research"), Key: testKey(t, 3), Limits: c.lim, OCR: blindReader{}})
			if err != nil {
				t.Fatal(err)
			}
			checkRejection(t, e, c.in, c.kind)
		})
	}

	t.Run("truncated", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(corpusDir(t), "ct_small_explicit_le.dcm"))
		if err != nil {
			t.Fatal(err)
		}
		full := parse(t, data).f
		// A cut between two top-level elements leaves a shorter, complete
		// dataset: nothing says it was cut. Every other cut is refused.
		boundary := map[int]bool{}
		for _, el := range full.Elements {
			boundary[int(el.End)] = true
		}
		for _, el := range full.Meta {
			boundary[int(el.End)] = true
		}
		e := newEngine(t, builtinProfile(t, "research"), 3)
		n := 0
		for cut := 0; cut < len(data); cut += 7 {
			if boundary[cut] {
				continue
			}
			checkRejection(t, e, data[:cut], "")
			n++
		}
		t.Logf("%d cuts refused", n)
	})

	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewSource(7))
		prefix := buildFile(t, false, nil)
		e := newEngine(t, builtinProfile(t, "research"), 3)
		for i := 0; i < 500; i++ {
			in := make([]byte, rng.Intn(4097))
			rng.Read(in)
			if i%2 == 1 {
				in = append(append([]byte(nil), prefix...), in...)
			}
			checkRejection(t, e, in, "")
		}
	})
}

// The walk stops at the deadline, so Plan refuses a file whose planning
// (not only its parsing) runs out of time.
func TestJobOvertime(t *testing.T) {
	j := &Job{deadline: time.Now().Add(time.Hour)}
	for i := 0; i < 5000; i++ {
		if j.overtime() {
			t.Fatal("overtime before the deadline")
		}
	}
	j.deadline = time.Now().Add(-time.Second)
	late := false
	for i := 0; i < 1024 && !late; i++ {
		late = j.overtime()
	}
	if !late || !j.overtime() {
		t.Fatal("deadline passed but the walk goes on")
	}
}
