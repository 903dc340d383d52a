package ingest

import (
	"bytes"
	"io"
	"testing"
)

// A spool told how much it will hold keeps a large object in a file from
// the first byte (memory stays flat) and a small one in memory sized at
// once; what it reads back is what was written either way.
func TestSpoolExpect(t *testing.T) {
	const limit = 1 << 10
	cases := []struct {
		name     string
		expect   int64
		write    int
		inFile   bool
		minCap   int
		afterPut bool // Expect called after the first write: no effect
	}{
		{name: "unknown size, small", expect: 0, write: 100, inFile: false},
		{name: "unknown size, large: spilled past the limit", expect: 0, write: 3 * limit, inFile: true},
		{name: "large: a file from the first byte", expect: 2 * limit, write: 10, inFile: true},
		{name: "small: memory sized at once", expect: 600, write: 600, inFile: false, minCap: 600},
		{name: "told after writing: no change", expect: 2 * limit, write: 10, inFile: false, afterPut: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sp := &spool{dir: t.TempDir(), limit: limit}
			defer sp.Close()
			data := bytes.Repeat([]byte("0123456789abcdef"), c.write/16+1)[:c.write]
			if c.afterPut {
				sp.Write(data[:1])
				sp.Expect(c.expect)
				sp.Write(data[1:])
			} else {
				sp.Expect(c.expect)
				if c.minCap > 0 && cap(sp.buf) < c.minCap {
					t.Fatalf("memory for %d bytes: cap %d", c.expect, cap(sp.buf))
				}
				if _, err := sp.Write(data); err != nil {
					t.Fatal(err)
				}
			}
			if (sp.f != nil) != c.inFile {
				t.Errorf("in a file: %v, want %v", sp.f != nil, c.inFile)
			}
			got, err := io.ReadAll(sp.Reader())
			if err != nil || !bytes.Equal(got, data) || sp.Size() != int64(len(data)) {
				t.Errorf("read back %d bytes (size %d, err %v), wrote %d", len(got), sp.Size(), err, len(data))
			}
		})
	}
}
