package deid

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestActionTableGolden renders the resolved action of every Table E.1-1
// row for the Basic Profile and for each option alone, for a plain
// attribute and for a sequence, and compares it with the golden file. A
// change of the table or of the resolution of its codes shows up here.
func TestActionTableGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# tag | name | basic(value,sequence) | option=action where it differs from basic\n")
	for _, row := range ps315.Rows() {
		j := &Job{eng: &Engine{prof: basicProfile()}}
		av, _ := j.tableAction(j.iodBasic(row.Tag, row.Basic, 0), row.Option, false)
		as, _ := j.tableAction(j.iodBasic(row.Tag, row.Basic, 0), row.Option, true)
		fmt.Fprintf(&b, "%s | %s | %s %s,%s", row.TagText, row.Name, row.Basic, av, as)
		for o := ps315.Option(0); o < ps315.NumOptions; o++ {
			jo := &Job{eng: &Engine{prof: profileWith("t", o)}}
			ov, _ := jo.tableAction(jo.iodBasic(row.Tag, row.Basic, 0), row.Option, false)
			os, _ := jo.tableAction(jo.iodBasic(row.Tag, row.Basic, 0), row.Option, true)
			if ov != av || os != as {
				fmt.Fprintf(&b, " | %s=%s,%s", o.Key(), ov, os)
			}
		}
		b.WriteString("\n")
	}
	got := b.String()
	const path = "testdata/actions.golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestActionTableGolden -update)", err)
	}
	if string(want) != got {
		t.Errorf("resolved actions differ from %s; run with -update and review the diff", path)
	}
	if n := strings.Count(got, "\n") - 1; n != 623 {
		t.Errorf("%d rows, want 623", n)
	}
}

// TestCompoundResolution pins the choice made for each compound code.
func TestCompoundResolution(t *testing.T) {
	cases := []struct {
		code       ps315.Code
		value, seq string
	}{
		{ps315.CodeX, "remove", "remove"},
		{ps315.CodeZ, "empty", "empty"},
		{ps315.CodeD, "dummy", "dummy"},
		{ps315.CodeK, "keep", "keep"},
		{ps315.CodeC, "clean", "clean"},
		{ps315.CodeU, "uid", "uid"},
		{ps315.CodeXZ, "empty", "dummy"},
		{ps315.CodeXD, "dummy", "remove"},
		{ps315.CodeXZD, "dummy", "dummy"},
		{ps315.CodeZD, "dummy", "dummy"},
		{ps315.CodeXZUStar, "uid", "uid"},
		{ps315.Code("??"), "remove", "remove"},
	}
	for _, c := range cases {
		if v, s := resolveCode(c.code, false), resolveCode(c.code, true); string(v) != c.value || string(s) != c.seq {
			t.Errorf("%s: got %s,%s want %s,%s", c.code, v, s, c.value, c.seq)
		}
	}
}
