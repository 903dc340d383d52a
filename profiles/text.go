package profiles

import (
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"gopkg.in/yaml.v3"
)

// A profile's burned_in_text section: how text read in the pixels (OCR)
// is masked. Every profile has it on, whether or not it says so:
//
//	burned_in_text:
//	  mode: all-but-allowed   # identifying | all-but-allowed | all | off
//	  allow: [L, R, cm, ...]  # replaces the built-in annotation words
//	  allow_more: [LIVER]     # adds to the inherited (or built-in) list
//
// Each key is inherited on its own: the nearest file that sets mode
// decides the mode, the nearest that sets allow decides the list, and
// allow_more adds up along the chain.
type textSection struct {
	mode      string
	modeSet   bool
	allow     []string
	allowSet  bool
	allowMore []string
}

var textModes = []string{"identifying", "all-but-allowed", "all", "off"}

func (p *parser) text(l *layer, n *yaml.Node) {
	f := p.fields(n, "burned_in_text", "mode", "allow", "allow_more")
	if f == nil {
		return
	}
	s := &textSection{}
	if v, ok := f["mode"]; ok {
		if m, ok := p.str("burned_in_text.mode", v.val); ok {
			good := false
			for _, x := range textModes {
				good = good || m == x
			}
			if !good {
				p.c.at(p.file, v.val, "burned_in_text.mode: %q is not a mode (identifying, all-but-allowed, all, off)", m)
			} else {
				s.mode, s.modeSet = m, true
			}
		}
	}
	words := func(key string) ([]string, bool) {
		v, ok := f[key]
		if !ok {
			return nil, false
		}
		if v.val.Kind != yaml.SequenceNode {
			p.c.at(p.file, v.val, "burned_in_text.%s: want a list of words", key)
			return nil, false
		}
		out := []string{}
		for _, it := range v.val.Content {
			if w, ok := p.str("burned_in_text."+key, deref(it)); ok && w != "" {
				out = append(out, w)
			}
		}
		return out, true
	}
	s.allow, s.allowSet = words("allow")
	s.allowMore, _ = words("allow_more")
	l.text = s
}

// textPolicy resolves the burned_in_text sections of a chain (most
// derived first).
func textPolicy(chain []*layer) rules.TextPolicy {
	var t rules.TextPolicy
	modeDone, allowDone := false, false
	for _, ly := range chain {
		s := ly.text
		if s == nil {
			continue
		}
		if s.modeSet && !modeDone {
			t.Mode, t.Source, modeDone = s.mode, ly.ref.display, true
		}
		if s.allowSet && !allowDone {
			t.Allow, allowDone = s.allow, true
		}
		t.AllowMore = append(t.AllowMore, s.allowMore...)
	}
	return t
}
