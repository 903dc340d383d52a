package profiles

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"gopkg.in/yaml.v3"
)

// Pixel rule sets: YAML files listing, per kind of image, the rectangles
// that hold burned-in text. The built-in ones are pixels/*.yaml.
//
//	rules:
//	  - name: Philips CX50 ultrasound, 800 wide: top banner
//	    source: where the region comes from
//	    match:                      # every key given must match
//	      modality: US              # a string or a list; '*' matches any run, case ignored
//	      manufacturer: "Philips*"
//	      manufacturer_model_name: CX50
//	      image_type: "ORIGINAL*"   # values joined by backslashes
//	      sop_class_uid: 1.2.840.10008.5.1.4.1.1.6.1
//	      rows: 600                 # exact, when given
//	      columns: 800
//	    mask:                       # [x, y, width, height] in pixels, every frame
//	      - [0, 0, 800, 60]
//
//go:embed pixels/*.yaml
var pixelFS embed.FS

// pixelSection is a profile's clean_pixel_data, as written.
type pixelSection struct {
	at              *yaml.Node
	sets            []string // rule set names or paths, as written
	setsAt          []*yaml.Node
	screen          bool
	acceptUnmatched bool
	acceptBurnedIn  bool
}

func (p *parser) pixels(l *layer, n *yaml.Node) {
	if isNull(n) {
		return
	}
	f := p.fields(n, "clean_pixel_data", "rules", "screen", "accept_unmatched", "accept_burned_in")
	if f == nil {
		return
	}
	s := &pixelSection{at: n, screen: true}
	if v, ok := f["rules"]; ok {
		switch v.val.Kind {
		case yaml.ScalarNode:
			s.sets, s.setsAt = []string{v.val.Value}, []*yaml.Node{v.val}
		case yaml.SequenceNode:
			for _, it := range v.val.Content {
				if name, ok := p.str("clean_pixel_data.rules", deref(it)); ok {
					s.sets, s.setsAt = append(s.sets, name), append(s.setsAt, it)
				}
			}
		default:
			p.c.at(p.file, v.val, "clean_pixel_data.rules: want a rule set name or file, or a list of them")
		}
	}
	flag := func(key string, dst *bool) {
		v, ok := f[key]
		if !ok {
			return
		}
		if v.val.Kind != yaml.ScalarNode || v.val.ShortTag() != "!!bool" {
			p.c.at(p.file, v.val, "clean_pixel_data.%s: want true or false", key)
			return
		}
		*dst = v.val.Value == "true"
	}
	flag("screen", &s.screen)
	flag("accept_unmatched", &s.acceptUnmatched)
	flag("accept_burned_in", &s.acceptBurnedIn)
	l.pixels = s
}

// pixelPolicy resolves a profile's section: its rule sets read and parsed.
func (l *Loader) pixelPolicy(ly *layer, c *collector) *rules.PixelPolicy {
	s := ly.pixels
	pol := &rules.PixelPolicy{ScreenRisky: s.screen, AcceptUnmatched: s.acceptUnmatched, AcceptBurnedIn: s.acceptBurnedIn}
	for i, name := range s.sets {
		var data []byte
		var display string
		var err error
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			display = "pixels/" + name + ".yaml"
			data, err = pixelFS.ReadFile(path.Join("pixels", name+".yaml"))
			if err != nil {
				c.at(ly.ref.display, s.setsAt[i], "clean_pixel_data.rules: no built-in rule set %q (built-ins: %s; give a file as a path ending in .yaml)",
					name, strings.Join(BuiltinPixelRules(), ", "))
				continue
			}
		} else {
			if ly.ref.builtin {
				c.at(ly.ref.display, s.setsAt[i], "clean_pixel_data.rules: a built-in profile can only use built-in rule sets")
				continue
			}
			p := name
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(ly.ref.path), p)
			}
			display = p
			data, err = l.read(ref{path: p, display: p})
			if err != nil {
				c.at(ly.ref.display, s.setsAt[i], "clean_pixel_data.rules: cannot read %s: %s", p, readError(err))
				continue
			}
		}
		rs := parsePixelRules(display, data, c)
		pol.Rules = append(pol.Rules, rs...)
		pol.Sources = append(pol.Sources, display)
	}
	return pol
}

// BuiltinPixelRules names the built-in pixel rule sets.
func BuiltinPixelRules() []string {
	ents, _ := pixelFS.ReadDir("pixels")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// parsePixelRules reads a rule set, reporting every problem with its line.
func parsePixelRules(file string, data []byte, c *collector) []rules.PixelRule {
	p := &parser{file: file, c: c}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			c.add(file, 0, 0, "empty rule set")
		} else {
			p.syntax(err)
		}
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	f := p.fields(root, "", "rules")
	v, ok := f["rules"]
	if !ok || v.val.Kind != yaml.SequenceNode {
		c.at(file, root, "rules: want a list of rules")
		return nil
	}
	var out []rules.PixelRule
	for i, item := range v.val.Content {
		where := fmt.Sprintf("rules[%d]", i)
		rf := p.fields(deref(item), where, "name", "source", "match", "mask")
		if rf == nil {
			continue
		}
		r := rules.PixelRule{Source: fmt.Sprintf("%s:%d", file, item.Line)}
		good := true
		if n, ok := rf["name"]; ok {
			r.Name, _ = p.str(where+".name", n.val)
		}
		m, ok := rf["match"]
		if !ok {
			c.at(file, item, "%s: match is required (a rule for every image would blank them all)", where)
			good = false
		} else if !p.pixelMatch(where+".match", m.val, &r.Match) {
			good = false
		}
		mk, ok := rf["mask"]
		if !ok || mk.val.Kind != yaml.SequenceNode || len(mk.val.Content) == 0 {
			c.at(file, item, "%s.mask: want a list of [x, y, width, height]", where)
			good = false
		} else {
			for j, rect := range mk.val.Content {
				rect = deref(rect)
				if rect.Kind != yaml.SequenceNode || len(rect.Content) != 4 {
					c.at(file, rect, "%s.mask[%d]: want [x, y, width, height]", where, j)
					good = false
					continue
				}
				var xs [4]int
				for k, n := range rect.Content {
					x, err := strconv.Atoi(n.Value)
					if err != nil || x < 0 || x > 1<<16 || k >= 2 && x == 0 {
						c.at(file, n, "%s.mask[%d]: %q is not a valid %s", where, j, n.Value, []string{"x", "y", "width", "height"}[k])
						good = false
					}
					xs[k] = x
				}
				r.Rects = append(r.Rects, rules.PixelRect{X: xs[0], Y: xs[1], W: xs[2], H: xs[3]})
			}
		}
		if good {
			out = append(out, r)
		}
	}
	return out
}

func (p *parser) pixelMatch(where string, n *yaml.Node, m *rules.PixelMatch) bool {
	f := p.fields(n, where, "modality", "manufacturer", "manufacturer_model_name", "image_type", "sop_class_uid", "rows", "columns")
	if f == nil {
		return false
	}
	if len(f) == 0 {
		p.c.at(p.file, n, "%s: name at least one attribute to match", where)
		return false
	}
	good := true
	list := func(key string, dst *[]string) {
		v, ok := f[key]
		if !ok {
			return
		}
		switch v.val.Kind {
		case yaml.ScalarNode:
			*dst = []string{v.val.Value}
		case yaml.SequenceNode:
			for _, it := range v.val.Content {
				*dst = append(*dst, deref(it).Value)
			}
		default:
			p.c.at(p.file, v.val, "%s.%s: want a string or a list of strings", where, key)
			good = false
		}
	}
	list("modality", &m.Modality)
	list("manufacturer", &m.Manufacturer)
	list("manufacturer_model_name", &m.ManufacturerModelName)
	list("image_type", &m.ImageType)
	list("sop_class_uid", &m.SOPClassUID)
	num := func(key string, dst *int) {
		v, ok := f[key]
		if !ok {
			return
		}
		x, err := strconv.Atoi(v.val.Value)
		if err != nil || x <= 0 || x > 1<<16 {
			p.c.at(p.file, v.val, "%s.%s: want a positive whole number", where, key)
			good = false
			return
		}
		*dst = x
	}
	num("rows", &m.Rows)
	num("columns", &m.Columns)
	return good
}
