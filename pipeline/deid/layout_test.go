package deid

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFieldLayoutsWritten: files that pydicom and dcmtk both read though
// they are not well-formed Part 10 files (the 128-byte preamble and DICM
// followed directly by the dataset, a dataset alone, NUL padding at the
// end) are de-identified and written: valid (dcmdump reads the output,
// dciodvfy finds no error the input did not have) and free of the file's
// identifiers. pipeline/dicomraw's TestLayoutsAgreeWithReaders checks that
// the two readers read these layouts.
func TestFieldLayoutsWritten(t *testing.T) {
	requireTool(t, "dcmdump")
	requireTool(t, "dciodvfy")
	els := sampleCT("PID-LAYOUT-77", "1.2.826.0.1.999.7.7")
	body := appendEls(t, nil, els, enc(false))
	implicitBody := appendEls(t, nil, els, enc(true))
	pre := append(make([]byte, 128), "DICM"...)
	cases := map[string][]byte{
		"DICM at 128 without File Meta":           append(append([]byte(nil), pre...), body...),
		"DICM at 128 without File Meta, implicit": append(append([]byte(nil), pre...), implicitBody...),
		"dataset alone":                           body,
		"NUL padding after the dataset":           append(buildFile(t, false, els), make([]byte, 32)...),
	}
	dir := t.TempDir()
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			inPath := filepath.Join(dir, "in.dcm")
			outPath := filepath.Join(dir, "out.dcm")
			if err := os.WriteFile(inPath, in, 0o600); err != nil {
				t.Fatal(err)
			}
			_, out := writeVerified(t, newEngine(t, builtinProfile(t, "research"), 3), in)
			if err := os.WriteFile(outPath, out, 0o600); err != nil {
				t.Fatal(err)
			}
			if msg := dcmdumpErrors(t, outPath); msg != "" {
				t.Errorf("dcmdump: %s", msg)
			}
			before := iodErrors(t, inPath)
			for e := range iodErrors(t, outPath) {
				if !before[e] {
					t.Errorf("new dciodvfy error: %s", e)
				}
			}
			for _, v := range []string{"PID-LAYOUT-77", "Wojciechowska", "Hartmann", "St. Nowhere", "19450321", "1.2.826.0.1.999"} {
				if bytes.Contains(out, []byte(v)) {
					t.Errorf("%q left in the output", v)
				}
			}
			if p := parse(t, out); p.metaStr(0x00020010) == "" || !p.f.HasPreamble {
				t.Error("output is not a Part 10 file with File Meta")
			}
		})
	}
}
