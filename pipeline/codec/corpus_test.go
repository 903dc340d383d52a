package codec

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Every image of the shared corpus decodes to the pixel values pydicom
// gets with GDCM or with Pillow (testdata/reference.py, run at test
// time): exactly for lossless frames, within ±1 for lossy ones. The
// pure-Go build decodes the native, RLE and deflated ones the same way
// and refuses the rest as unsupported, never with wrong pixels.

func corpusDir(t testing.TB) string {
	d, _ := filepath.Abs("../../../shared/corpus")
	if _, err := os.Stat(filepath.Join(d, "MANIFEST.tsv")); err != nil {
		t.Fatalf("shared corpus not found at %s", d)
	}
	return d
}

type refEntry struct {
	Dtype     string `json:"dtype"`
	Shape     []int  `json:"shape"`
	Error     string `json:"error"`
	Converted bool   `json:"converted"`
}

// references runs the reference script over files into a temporary
// directory.
func references(t *testing.T, files []string) (string, map[string]map[string]refEntry) {
	dir := t.TempDir()
	cmd := exec.Command("/usr/bin/python3", append([]string{"testdata/reference.py", dir}, files...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference.py: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]map[string]refEntry{}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	return dir, idx
}

// decodeAll decodes every frame, interleaved (planar 0), little endian.
func decodeAll(set *Set, f *dicomraw.File) (Image, []byte, bool, error) {
	src, err := FromFile(f)
	if err != nil {
		return Image{}, nil, false, err
	}
	fr, err := set.Open(src)
	if err != nil {
		return src.Image, nil, false, err
	}
	out := fr.Output()
	lossy := false
	if isEncapsulated(src.Image.Syntax) {
		b, err := src.FrameData(0, nil)
		if err != nil {
			return out, nil, false, err
		}
		lossy = StreamLossy(src.Image.Syntax, b)
	}
	buf := make([]byte, out.FrameBytes())
	var all []byte
	for i := 0; i < out.Frames; i++ {
		if err := fr.Frame(i, buf); err != nil {
			return out, nil, lossy, err
		}
		all = append(all, interleave(buf, out)...)
	}
	return out, all, lossy, nil
}

func interleave(frame []byte, im Image) []byte {
	if im.PlanarConfiguration == 0 || im.SamplesPerPixel == 1 {
		return append([]byte(nil), frame...)
	}
	bps, n, spp := im.BitsAllocated/8, im.Rows*im.Columns, im.SamplesPerPixel
	out := make([]byte, len(frame))
	for s := 0; s < spp; s++ {
		for p := 0; p < n; p++ {
			copy(out[(p*spp+s)*bps:(p*spp+s+1)*bps], frame[(s*n+p)*bps:(s*n+p+1)*bps])
		}
	}
	return out
}

// compare returns the largest difference of stored bits and how many
// samples differ.
func compare(ours []byte, im Image, ref []byte, refBytes int) (maxd uint64, ndiff int, err error) {
	ob := max(im.BitsAllocated/8, 1)
	if len(ours)/ob != len(ref)/refBytes {
		return 0, 0, fmt.Errorf("%d samples, the reference has %d", len(ours)/ob, len(ref)/refBytes)
	}
	bits := im.BitsStored
	mask := uint64(1)<<bits - 1
	get := func(b []byte, w, i int) uint64 {
		switch w {
		case 1:
			return uint64(b[i])
		case 2:
			return uint64(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return uint64(binary.LittleEndian.Uint32(b[4*i:]))
	}
	for i := 0; i < len(ref)/refBytes; i++ {
		a, b := get(ours, ob, i)&mask, get(ref, refBytes, i)&mask
		if a == b {
			continue
		}
		ndiff++
		d := (a - b) & mask
		d = min(d, (b-a)&mask)
		maxd = max(maxd, d)
	}
	return maxd, ndiff, nil
}

func TestCorpusMatchesReferences(t *testing.T) {
	dir := corpusDir(t)
	names, _ := filepath.Glob(filepath.Join(dir, "*.dcm"))
	refDir, idx := references(t, names)
	set := Default()
	var summary []string
	for _, path := range names {
		name := filepath.Base(path)
		refs := idx[name]
		var good []string
		for h, r := range refs {
			if r.Error == "" {
				good = append(good, h)
			}
		}
		sort.Strings(good)
		t.Run(name, func(t *testing.T) {
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			st, _ := fh.Stat()
			f, err := dicomraw.Parse(fh, st.Size(), dicomraw.DefaultLimits())
			if err != nil {
				if len(good) > 0 {
					t.Fatalf("does not parse, but %v decode it: %v", good, err)
				}
				return
			}
			out, ours, lossy, err := decodeAll(set, f)
			switch {
			case errors.Is(err, ErrNoPixels):
				if len(good) > 0 {
					t.Fatalf("no pixel data found, but %v decode it", good)
				}
				return
			case err != nil && len(good) == 0:
				summary = append(summary, fmt.Sprintf("%s: refused (%v); the references refuse it too", name, err))
				return
			case errors.Is(err, ErrUnsupported) && !CGO:
				summary = append(summary, fmt.Sprintf("%s: not in the pure-Go build (%v)", name, err))
				return
			case err != nil:
				t.Fatalf("%v decode it, we fail: %v", good, err)
			case len(good) == 0:
				summary = append(summary, fmt.Sprintf("%s: decoded here; no reference decodes it (%s)", name, refs["gdcm"].Error))
				return
			}
			var verdicts []string
			matched := false
			for _, h := range good {
				r := refs[h]
				ref, err := os.ReadFile(filepath.Join(refDir, name+"."+h+".raw"))
				if err != nil {
					t.Fatal(err)
				}
				w := int(r.Dtype[2] - '0')
				maxd, nd, err := compare(ours, out, ref, w)
				switch {
				case err != nil:
					verdicts = append(verdicts, h+": "+err.Error())
				case nd == 0:
					matched = true
					verdicts = append(verdicts, h+": identical")
				case lossy && maxd <= 1:
					matched = true
					verdicts = append(verdicts, fmt.Sprintf("%s: within ±1 (%d samples differ by 1)", h, nd))
				default:
					verdicts = append(verdicts, fmt.Sprintf("%s: %d samples differ, by up to %d", h, nd, maxd))
				}
			}
			line := fmt.Sprintf("%s [%s%s]: %s", name, f.Syntax.UID, map[bool]string{true: ", lossy"}[lossy], strings.Join(verdicts, "; "))
			summary = append(summary, line)
			if !matched {
				t.Errorf("matches no reference: %s", line)
			}
		})
	}
	sort.Strings(summary)
	t.Logf("%s build, file by file:\n%s", set.Build, strings.Join(summary, "\n"))
}
