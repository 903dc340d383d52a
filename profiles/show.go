package profiles

import (
	"fmt"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// Show renders a resolved profile for people: every option on or off,
// pseudonym formats, the date shift, the rules in the order they apply
// (marking those a later rule overrides) and the files it came from (its
// own and those its rules come from). The output depends only on p, so it
// can be compared between versions.
func Show(p *rules.Profile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %s\n", p.Name)
	if d := strings.TrimSpace(p.Description); d != "" {
		for _, line := range strings.Split(d, "\n") {
			fmt.Fprintf(&b, "  %s\n", strings.TrimRight(line, " \t"))
		}
	}

	fmt.Fprintf(&b, "\nPS3.15 Annex E (edition %s)\n", ps315.Edition)
	fmt.Fprintf(&b, "  %-6s %-31s %s (%s)\n", "always", "basic", ps315.BasicProfileName, ps315.BasicProfileCode)
	for i := ps315.Option(0); i < ps315.NumOptions; i++ {
		state := "off"
		if p.Options[i] {
			state = "on"
		}
		fmt.Fprintf(&b, "  %-6s %-31s %s (%s)\n", state, i.Key(), i.Name(), i.Code())
	}

	b.WriteString("\npseudonyms\n")
	for _, f := range []struct{ key, tmpl string }{
		{"patient_id", p.Pseudonyms.PatientID},
		{"patient_name", p.Pseudonyms.PatientName},
		{"other", p.Pseudonyms.Other},
	} {
		n := "?"
		if t, err := parseTemplate(f.tmpl); err == nil {
			n = fmt.Sprint(t.maxLen())
		}
		fmt.Fprintf(&b, "  %-13s %-24q up to %s characters\n", f.key, f.tmpl, n)
	}

	b.WriteString("\ndate shift\n")
	fmt.Fprintf(&b, "  %d to %d days back, one keyed amount per patient\n", p.DateShift.MinDays, p.DateShift.MaxDays)

	b.WriteString("\nburned-in text (pixels)\n")
	if px := p.Pixels; px == nil {
		b.WriteString("  no Clean Pixel Data; images declaring Burned In Annotation YES are held back\n")
	} else {
		fmt.Fprintf(&b, "  Clean Pixel Data: %d masking rules from %s\n", len(px.Rules), strings.Join(px.Sources, ", "))
		for _, r := range px.Rules {
			fmt.Fprintf(&b, "    %s (%d rectangles; %s)\n", r.Name, len(r.Rects), r.Source)
		}
		fmt.Fprintf(&b, "  ultrasound, secondary captures and SECONDARY images without a rule: %s\n",
			map[bool]string{true: "held back", false: "passed unmasked"}[px.ScreenRisky && !px.AcceptUnmatched])
		fmt.Fprintf(&b, "  Burned In Annotation YES without a rule: %s\n",
			map[bool]string{true: "passed unmasked", false: "held back"}[px.AcceptBurnedIn])
	}

	b.WriteString("\nrules (a later rule overrides an earlier one for the same attribute)\n")
	if len(p.Rules) == 0 {
		b.WriteString("  none\n")
	}
	labels := make([]string, len(p.Rules))
	actions := make([]string, len(p.Rules))
	lw, aw := 0, 0
	for i, r := range p.Rules {
		labels[i] = selectorLabel(r.Selector)
		actions[i] = string(r.Action)
		if r.Action == rules.Replace {
			actions[i] += fmt.Sprintf(" %q", r.Value)
		}
		lw, aw = max(lw, len(labels[i])), max(aw, len(actions[i]))
	}
	for i, r := range p.Rules {
		fmt.Fprintf(&b, "  %2d  %-*s  %-*s  %s\n", i+1, lw, labels[i], aw, actions[i], ruleSource(r))
		for j := len(p.Rules) - 1; j > i; j-- {
			if sameSelector(p.Rules[j].Selector, r.Selector) {
				fmt.Fprintf(&b, "      overridden by rule %d\n", j+1)
				break
			}
		}
	}

	// The profile's own file, then every file a rule comes from (parents
	// first). rules.Profile does not record an extends chain, so a parent
	// that adds no rule is not listed.
	b.WriteString("\nsources\n")
	seen := map[string]bool{}
	for _, s := range append([]string{p.Source}, ruleSources(p)...) {
		if s != "" && !seen[s] {
			seen[s] = true
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	return b.String()
}

func ruleSources(p *rules.Profile) []string {
	s := make([]string, len(p.Rules))
	for i, r := range p.Rules {
		s[i] = r.Source
	}
	return s
}

func ruleSource(r rules.Rule) string {
	switch {
	case r.Source == "":
		return "(built in code)"
	case r.Line == 0:
		return r.Source
	}
	return fmt.Sprintf("%s:%d", r.Source, r.Line)
}

func selectorLabel(s rules.Selector) string {
	if s.Private != nil {
		return privateLabel(*s.Private)
	}
	return tagLabel(s.Tag)
}
