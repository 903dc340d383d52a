package uidreg

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		uid, name, typ string
		ok             bool
	}{
		{"1.2.840.10008.1.2", "Implicit VR Little Endian", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.1", "Explicit VR Little Endian", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.1\x00", "Explicit VR Little Endian", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.1 ", "Explicit VR Little Endian", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.2", "Explicit VR Big Endian", TypeTransferSyntax, true},
		{"1.2.840.10008.5.1.4.1.1.2", "CT Image Storage", TypeSOPClass, true},
		{"1.2.840.10008.5.1.4.1.1.7", "Secondary Capture Image Storage", TypeSOPClass, true},
		{"1.2.840.10008.1.1", "Verification SOP Class", TypeSOPClass, true},
		{"1.2.840.10008.2.16.4", "DICOM Controlled Terminology", TypeCodingScheme, true},
		{"1.2.840.10008.3.1.1.1", "DICOM Application Context Name", TypeApplicationContextName, true},
		{"1.2.840.10008.1.4.1.1", "Talairach Brain Atlas Frame of Reference", TypeWellKnownFrameOfRef, true},
		{"1.2.840.10008.1.5.1", "Hot Iron Color Palette SOP Instance", TypeWellKnownSOPInstance, true},
		// Required by the brief: HTJ2K, JPEG XL, Deflated Image Frame
		// Compression and Microscopy Bulk Simple Annotations.
		{"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.4.110", "JPEG XL Lossless", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.4.112", "JPEG XL", TypeTransferSyntax, true},
		{"1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression", TypeTransferSyntax, true},
		{"1.2.840.10008.5.1.4.1.1.91.1", "Microscopy Bulk Simple Annotations Storage", TypeSOPClass, true},
		// Not registered: instance UIDs, private roots, prefixes.
		{"2.25.152752519834663263826301420581341174218", "", "", false},
		{"1.2.276.0.7230010.3.1.0.1", "", "", false},
		{"1.3.46.670589.5.0.1.1", "", "", false},
		{"1.2.840.10008.5.1.4.1.1", "", "", false},
		{"1.2.840.10008.1.2.1.0", "", "", false},
		{"", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.uid, func(t *testing.T) {
			info, ok := Lookup(tc.uid)
			if ok != tc.ok || IsRegistered(tc.uid) != tc.ok {
				t.Fatalf("Lookup(%q) ok=%v, IsRegistered=%v, want %v", tc.uid, ok, IsRegistered(tc.uid), tc.ok)
			}
			if ok && (info.Name != tc.name || info.Type != tc.typ || info.UID != strings.TrimRight(tc.uid, "\x00 ")) {
				t.Errorf("Lookup(%q) = %+v, want %q %q", tc.uid, info, tc.name, tc.typ)
			}
		})
	}
}

func TestIsDICOMRoot(t *testing.T) {
	for uid, want := range map[string]bool{
		"1.2.840.10008.6.1.1":        true, // a Context Group UID: standard, not in Table A-1
		"1.2.840.10008.1.2":          true,
		"1.2.840.100081.2":           false,
		"2.25.1":                     false,
		"1.2.840.10008.1.2\x00":      true,  // padded
		"1.2.840.10008.0A0000000000": false, // a letter: not a UID
		"1.2.840.10008.1 Kowalczyk":  false,
	} {
		if got := IsDICOMRoot(uid); got != want {
			t.Errorf("IsDICOMRoot(%q) = %v", uid, got)
		}
	}
}

// TestAllMatchesCSV checks the generated registry against data/uids.csv
// read independently.
func TestAllMatchesCSV(t *testing.T) {
	f, err := os.Open("data/uids.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	recs = recs[1:]
	all := All()
	if len(recs) != 490 || len(all) < len(recs) {
		t.Fatalf("csv has %d rows (want 490), registry %d", len(recs), len(all))
	}
	types := map[string]int{}
	for i, rec := range recs {
		if all[i] != (Info{rec[0], rec[1], rec[2]}) {
			t.Errorf("row %d: %+v, csv %q", i, all[i], rec)
		}
		if got, ok := Lookup(rec[0]); !ok || got != all[i] {
			t.Errorf("Lookup(%s) = %+v, %v", rec[0], got, ok)
		}
		if !IsDICOMRoot(rec[0]) {
			t.Errorf("%s is not under the DICOM root", rec[0])
		}
		types[rec[2]]++
	}
	if types[TypeSOPClass] != 308 || types[TypeTransferSyntax] != 63 || types[TypeWellKnownFrameOfRef] != 28 {
		t.Errorf("type counts %v", types)
	}
	all[0].Name = "changed"
	if All()[0].Name == "changed" {
		t.Error("All() exposes the package table")
	}
}

// TestCorpusManifest checks that every standard transfer syntax and SOP class
// UID used by the shared test corpus is registered.
func TestCorpusManifest(t *testing.T) {
	const manifest = "/work/shared/corpus/MANIFEST.tsv"
	f, err := os.Open(manifest)
	if err != nil {
		t.Skipf("corpus manifest not available: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for line := 0; sc.Scan(); line++ {
		cols := strings.Split(sc.Text(), "\t")
		if line == 0 {
			if len(cols) < 7 || cols[4] != "transfer_syntax_uid" || cols[6] != "sop_class_uid" {
				t.Fatalf("unexpected manifest header %q", cols)
			}
			continue
		}
		if len(cols) < 7 {
			t.Fatalf("line %d: %d columns", line+1, len(cols))
		}
		for _, uid := range []string{cols[4], cols[6]} {
			if !IsDICOMRoot(uid) {
				continue
			}
			n++
			if !IsRegistered(uid) {
				t.Errorf("%s (%s) is a standard UID but not registered", uid, cols[0])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no standard UIDs found in the manifest")
	}
}

// TestGeneratedUpToDate runs the generator into a temporary file and checks
// that uids_gen.go is what it produces.
func TestGeneratedUpToDate(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out := filepath.Join(t.TempDir(), "uids_gen.go")
	cmd := exec.Command(goTool, "run", "./internal/gen", "-data", "data", "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator failed: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("uids_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, have) {
		t.Fatal("uids_gen.go is stale: run `go generate ./pipeline/uidreg`")
	}
}
