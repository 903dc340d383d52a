package profiles

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a profile file.
type Problem struct {
	File string // the file as named to the user ("research.yaml" for built-ins)
	Line int    // 1-based; 0 when the problem concerns the whole file
	Col  int    // 1-based; 0 when unknown
	Msg  string
}

// String formats the problem as file:line:col: msg, the form editors and
// terminals turn into links.
func (p Problem) String() string {
	switch {
	case p.Line == 0:
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	case p.Col == 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Msg)
}

// Error is every problem found while loading a profile and its extends
// chain. All of them are reported at once so that a user fixes a file in
// one pass instead of one error per run.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers the problems of one load.
type collector struct {
	ps []Problem
}

func (c *collector) add(file string, line, col int, format string, args ...any) {
	c.ps = append(c.ps, Problem{File: file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// at reports a problem at a YAML node; n may be nil for whole-file problems.
func (c *collector) at(file string, n *yaml.Node, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		line, col = n.Line, n.Column
	}
	c.add(file, line, col, format, args...)
}

// err returns the collected problems as an *Error, or nil. Problems are
// grouped by file in the order files were first mentioned (the loaded file
// first, then its ancestors) and sorted by position within a file.
func (c *collector) err() error {
	if len(c.ps) == 0 {
		return nil
	}
	order := map[string]int{}
	for _, p := range c.ps {
		if _, ok := order[p.File]; !ok {
			order[p.File] = len(order)
		}
	}
	ps := append([]Problem(nil), c.ps...)
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if order[a.File] != order[b.File] {
			return order[a.File] < order[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return &Error{Problems: ps}
}
