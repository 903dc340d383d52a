package ocr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// maxTSV bounds what Read takes from the command's standard output: a
// page of text is tens of kB.
const maxTSV = 16 << 20

// cliBackend runs the tesseract command, one process per Read.
type cliBackend struct {
	path    string
	version string // "5.3.0"
	args    []string
}

// newCLIPool finds tesseract on PATH and checks its languages.
func newCLIPool(cfg Config) (*Pool, error) {
	b, err := newCLIBackend(cfg)
	if err != nil {
		return nil, err
	}
	return newPool(b, cfg, nil), nil
}

func newCLIBackend(cfg Config) (*cliBackend, error) {
	path, err := exec.LookPath("tesseract")
	if err != nil {
		return nil, fmt.Errorf("%w: no tesseract command on PATH", ErrUnavailable)
	}
	b := &cliBackend{path: path}
	if cfg.DataDir != "" {
		b.args = append(b.args, "--tessdata-dir", cfg.DataDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := b.command(ctx, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: tesseract --version: %v", ErrUnavailable, err)
	}
	b.version = parseVersion(string(out))
	if b.version == "" {
		return nil, fmt.Errorf("%w: tesseract --version printed no version", ErrUnavailable)
	}
	out, err = b.command(ctx, append(append([]string{}, b.args...), "--list-langs")...).Output()
	if err != nil {
		return nil, fmt.Errorf("%w: tesseract --list-langs: %v", ErrUnavailable, err)
	}
	if !hasLang(string(out), cfg.lang()) {
		return nil, fmt.Errorf("%w: tesseract has no language data %q", ErrUnavailable, cfg.lang())
	}
	b.args = append(b.args, "-l", cfg.lang(), "--oem", "1", "-c", "debug_file=/dev/null")
	return b, nil
}

// parseVersion takes "5.3.0" from "tesseract 5.3.0\n leptonica-...".
func parseVersion(out string) string {
	first, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(first)
	if len(f) >= 2 && f[0] == "tesseract" {
		return strings.TrimPrefix(f[1], "v")
	}
	return ""
}

// hasLang reads `tesseract --list-langs`: a heading, then one a line.
func hasLang(out, lang string) bool {
	for i, l := range strings.Split(out, "\n") {
		if i > 0 && strings.TrimSpace(l) == lang {
			return true
		}
	}
	return false
}

// command runs tesseract quietly, one core, killed when ctx ends.
func (b *cliBackend) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.path, args...)
	// One process, one core (see the package doc); the environment of a
	// child is read when it starts, so this takes effect.
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	cmd.Stderr = nil // discarded: /dev/null
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

func (b *cliBackend) describe() string {
	return "tesseract " + b.version + " (command line " + b.path + ")"
}

// open: the command has nothing to keep loaded; the Pool's slots bound
// the processes.
func (b *cliBackend) open() (engine, error) { return cliEngine{b}, nil }

type cliEngine struct{ b *cliBackend }

func (cliEngine) close() {}

func (e cliEngine) read(ctx context.Context, img *image.Gray, psm PSM) ([]Line, error) {
	var in bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&in, img); err != nil {
		return nil, fmt.Errorf("ocr: encoding the image: %w", err)
	}
	args := append(append([]string{"stdin", "stdout"}, e.b.args...), "--psm", strconv.Itoa(int(psm)), "tsv")
	cmd := e.b.command(ctx, args...)
	cmd.Stdin = &in
	out := &limitedBuffer{max: maxTSV}
	cmd.Stdout = out
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("ocr: %w", ctx.Err())
	}
	if out.over {
		return nil, fmt.Errorf("ocr: tesseract printed more than %d bytes", maxTSV)
	}
	if err != nil {
		return nil, fmt.Errorf("ocr: tesseract: %w", err)
	}
	return parseTSV(out.Bytes())
}

// limitedBuffer keeps up to max bytes and then fails the writes.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > l.max {
		l.over = true
		return 0, errors.New("output over its bound")
	}
	return l.Buffer.Write(p)
}

// parseTSV reads Tesseract's TSV: a heading, then one row a page
// element: level page block par line word left top width height conf
// text. Level 4 is a line, level 5 a word of the last line; the other
// levels (conf -1) are structure.
func parseTSV(b []byte) ([]Line, error) {
	type key struct{ page, block, par, line int }
	var lines []Line
	idx := map[key]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), maxTSV)
	first := true
	for sc.Scan() {
		row := strings.TrimRight(sc.Text(), "\r")
		if first {
			first = false
			if strings.HasPrefix(row, "level") {
				continue
			}
		}
		if row == "" {
			continue
		}
		f := strings.SplitN(row, "\t", 12)
		if len(f) < 11 {
			return nil, fmt.Errorf("ocr: tesseract TSV row of %d fields", len(f))
		}
		var n [10]int
		for i := range n {
			v, err := strconv.Atoi(f[i])
			if err != nil {
				return nil, fmt.Errorf("ocr: tesseract TSV field %d is not a number", i+1)
			}
			n[i] = v
		}
		k := key{n[1], n[2], n[3], n[4]}
		box := image.Rect(n[6], n[7], n[6]+n[8], n[7]+n[9])
		switch n[0] {
		case 4:
			idx[k] = len(lines)
			lines = append(lines, Line{Box: box})
		case 5:
			conf, err := strconv.ParseFloat(f[10], 64)
			if err != nil {
				return nil, fmt.Errorf("ocr: tesseract TSV confidence is not a number")
			}
			text := ""
			if len(f) == 12 {
				text = f[11]
			}
			i, ok := idx[k]
			if !ok {
				return nil, fmt.Errorf("ocr: tesseract TSV word outside a line")
			}
			lines[i].Words = append(lines[i].Words, Word{Text: text, Box: box, Conf: conf})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ocr: reading tesseract TSV: %w", err)
	}
	return lines, nil
}
