package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/suyashkumar/dicom/pkg/tag"
	"gopkg.in/yaml.v3"
)

// maxShiftDays bounds date_shift: a century is more than any study spans,
// and a bound keeps shifted dates far from the limits of DA (year 0000).
const maxShiftDays = 36500

// layer is one profile file as written, before extends is applied. Fields
// a file leaves out stay unset so that the parent's value shows through.
type layer struct {
	ref         ref
	name        string
	description string
	extends     string
	extendsAt   *yaml.Node
	options     []optionSet
	minDays     intSet
	maxDays     intSet
	dateAt      *yaml.Node
	patientID   strSet
	patientName strSet
	other       strSet
	rules       []parsedRule
	pixels      *pixelSection
	text        *textSection
}

type optionSet struct {
	opt ps315.Option
	on  bool
	at  *yaml.Node
}

type intSet struct {
	set bool
	v   int
}

type strSet struct {
	set bool
	v   string
	at  *yaml.Node
}

// parsedRule is a rule with what later checks need to report on it.
type parsedRule struct {
	rule     rules.Rule
	path     string     // "rules[3]", for messages
	label    string     // "PatientName (0010,0010)", for messages
	vrs      []string   // dictionary VRs; nil for private or unknown tags
	actionAt *yaml.Node // where the action is written
}

// parser reads one file's YAML into a layer, reporting every problem.
type parser struct {
	file string
	c    *collector
}

// parseLayer parses a profile file. It returns nil when the YAML itself
// cannot be read; otherwise a layer with every valid part, the problems
// being in c.
func parseLayer(r ref, data []byte, c *collector) *layer {
	p := &parser{file: r.display, c: c}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			c.add(r.display, 0, 0, "empty file: a profile needs at least a name")
		} else {
			p.syntax(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		c.at(r.display, &extra, "a profile file holds one YAML document; found a second one")
		return nil
	} else if !errors.Is(err, io.EOF) {
		p.syntax(err)
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			c.add(r.display, 0, 0, "empty file: a profile needs at least a name")
			return nil
		}
		root = root.Content[0]
	}
	l := &layer{ref: r}
	f := p.fields(root, "", "name", "description", "extends", "options", "date_shift", "pseudonyms", "rules", "clean_pixel_data", "burned_in_text")
	if f == nil {
		return l
	}
	if v, ok := f["name"]; !ok {
		c.at(p.file, root, "name: required")
	} else if s, ok := p.str("name", v.val); ok {
		if !validName(s) {
			c.at(p.file, v.val, "name: %q is not a valid profile name (want [a-z0-9][a-z0-9._-]*)", s)
		} else if r.builtin && s != r.name {
			c.at(p.file, v.val, "name: built-in %s.yaml must be named %q, not %q", r.name, r.name, s)
		}
		l.name = s
	}
	if v, ok := f["description"]; ok {
		l.description, _ = p.str("description", v.val)
	}
	if v, ok := f["extends"]; ok {
		if s, ok := p.str("extends", v.val); ok {
			l.extends, l.extendsAt = s, v.val
		}
	}
	if v, ok := f["options"]; ok {
		p.options(l, v.val)
	}
	if v, ok := f["date_shift"]; ok {
		p.dateShift(l, v.val)
	}
	if v, ok := f["pseudonyms"]; ok {
		p.pseudonyms(l, v.val)
	}
	if v, ok := f["rules"]; ok {
		p.rules(l, v.val)
	}
	if v, ok := f["clean_pixel_data"]; ok {
		p.pixels(l, v.val)
	}
	if v, ok := f["burned_in_text"]; ok {
		p.text(l, v.val)
	}
	return l
}

// syntax reports a YAML syntax error. yaml.v3 puts the line into the text
// ("yaml: line 3: ..."); it leaves it out for the first line.
func (p *parser) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, text
			}
		}
	}
	p.c.add(p.file, line, 0, "YAML syntax error: %s", msg)
}

// field is one key: value pair of a mapping.
type field struct {
	key, val *yaml.Node
}

// deref follows YAML aliases (*name) to their anchors.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// prefix joins a path and a key for messages ("rules[2]" + "action").
func prefix(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pairs returns the key: value pairs of a mapping in file order,
// reporting a non-mapping node and duplicate keys (which yaml.v3 accepts
// when decoding into a Node, silently keeping both).
func (p *parser) pairs(n *yaml.Node, path string) ([]field, bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if path != "" {
			what = path
		}
		p.c.at(p.file, n, "%s: want a mapping (key: value lines)", what)
		return nil, false
	}
	var out []field
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.c.at(p.file, k, "%s: keys must be plain words", orFile(path))
			continue
		}
		if seen[k.Value] {
			p.c.at(p.file, k, "%s: duplicate key %q", prefix(path, k.Value), k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, field{key: k, val: v})
	}
	return out, true
}

func orFile(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// fields returns the values of a mapping with a fixed set of keys. Unknown
// keys are errors because a misspelt key would otherwise silently leave a
// setting at its default, which in de-identification can mean leaking.
func (p *parser) fields(n *yaml.Node, path string, allowed ...string) map[string]field {
	ps, ok := p.pairs(n, path)
	if !ok {
		return nil
	}
	out := map[string]field{}
	for _, f := range ps {
		known := false
		for _, a := range allowed {
			known = known || a == f.key.Value
		}
		if !known {
			where := ""
			if path != "" {
				where = path + ": "
			}
			p.c.at(p.file, f.key, "%sunknown key %q (want one of %s)", where, f.key.Value, strings.Join(allowed, ", "))
			continue
		}
		out[f.key.Value] = f
	}
	return out
}

// str reads a scalar as text.
func (p *parser) str(path string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.c.at(p.file, n, "%s: want a string", path)
		return "", false
	}
	return n.Value, true
}

func validName(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		case i > 0 && (r == '.' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return s != ""
}

func (p *parser) options(l *layer, n *yaml.Node) {
	if isNull(n) {
		return
	}
	ps, ok := p.pairs(n, "options")
	if !ok {
		return
	}
	for _, f := range ps {
		path := prefix("options", f.key.Value)
		o, ok := ps315.OptionByKey(f.key.Value)
		if !ok {
			p.c.at(p.file, f.key, "options: unknown option %q (want one of %s)", f.key.Value, optionKeyList())
			continue
		}
		if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() != "!!bool" {
			p.c.at(p.file, f.val, "%s: want true or false", path)
			continue
		}
		var on bool
		if err := f.val.Decode(&on); err != nil {
			p.c.at(p.file, f.val, "%s: want true or false", path)
			continue
		}
		l.options = append(l.options, optionSet{opt: o, on: on, at: f.key})
	}
}

func optionKeyList() string {
	keys := make([]string, ps315.NumOptions)
	for i := range keys {
		keys[i] = ps315.Option(i).Key()
	}
	return strings.Join(keys, ", ")
}

func (p *parser) dateShift(l *layer, n *yaml.Node) {
	if isNull(n) {
		return
	}
	f := p.fields(n, "date_shift", "min_days", "max_days")
	if f == nil {
		return
	}
	l.dateAt = n
	read := func(key string, dst *intSet) {
		v, ok := f[key]
		if !ok {
			return
		}
		path := prefix("date_shift", key)
		if v.val.Kind != yaml.ScalarNode || v.val.ShortTag() != "!!int" {
			p.c.at(p.file, v.val, "%s: want a whole number of days", path)
			return
		}
		d, err := strconv.Atoi(v.val.Value)
		if err != nil || d < 0 || d > maxShiftDays {
			p.c.at(p.file, v.val, "%s: %s is out of range (want 0..%d)", path, v.val.Value, maxShiftDays)
			return
		}
		*dst = intSet{set: true, v: d}
	}
	read("min_days", &l.minDays)
	read("max_days", &l.maxDays)
	if l.minDays.set && l.maxDays.set && l.minDays.v > l.maxDays.v {
		p.c.at(p.file, n, "date_shift: min_days %d is greater than max_days %d", l.minDays.v, l.maxDays.v)
	}
}

func (p *parser) pseudonyms(l *layer, n *yaml.Node) {
	if isNull(n) {
		return
	}
	f := p.fields(n, "pseudonyms", "patient_id", "patient_name", "other")
	if f == nil {
		return
	}
	// The VR each format must fit: Patient ID is LO, Patient's Name PN;
	// "other" goes into attributes of many VRs, LO being the widest the
	// engine writes a pseudonym into without truncating it.
	read := func(key, vr string, dst *strSet) {
		v, ok := f[key]
		if !ok {
			return
		}
		path := prefix("pseudonyms", key)
		s, ok := p.str(path, v.val)
		if !ok {
			return
		}
		t, err := parseTemplate(s)
		switch {
		case err != nil:
			p.c.at(p.file, v.val, "%s: bad template %q: %v", path, s, err)
			return
		case t.placeholders == 0:
			p.c.at(p.file, v.val, "%s: template %q has no {hash:N} or {digits:N}: every value would get the same pseudonym", path, s)
			return
		}
		if msg := t.fitsVR(vr); msg != "" {
			p.c.at(p.file, v.val, "%s: template %q is too long or invalid for %s: %s", path, s, vr, msg)
			return
		}
		*dst = strSet{set: true, v: s, at: v.val}
	}
	read("patient_id", "LO", &l.patientID)
	read("patient_name", "PN", &l.patientName)
	read("other", "LO", &l.other)
}

func (p *parser) rules(l *layer, n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.c.at(p.file, n, "rules: want a list (lines starting with \"- \")")
		return
	}
	for i, item := range n.Content {
		if r, ok := p.rule(fmt.Sprintf("rules[%d]", i), deref(item)); ok {
			r.rule.Source = l.ref.key()
			l.rules = append(l.rules, r)
		}
	}
}

func actionList() string {
	s := make([]string, len(rules.Actions))
	for i, a := range rules.Actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// rule parses one rule; ok is false when it has any problem.
func (p *parser) rule(path string, n *yaml.Node) (parsedRule, bool) {
	pr := parsedRule{path: path}
	f := p.fields(n, path, "tag", "private", "action", "value")
	if f == nil {
		return pr, false
	}
	pr.rule.Line = n.Line
	ok := true
	tg, hasTag := f["tag"]
	pv, hasPriv := f["private"]
	switch {
	case hasTag && hasPriv:
		p.c.at(p.file, pv.key, "%s: give either tag or private, not both", path)
		ok = false
	case hasTag:
		ok = p.tagSelector(&pr, prefix(path, "tag"), tg.val) && ok
	case hasPriv:
		ok = p.privateSelector(&pr, prefix(path, "private"), pv.val) && ok
	default:
		p.c.at(p.file, n, "%s: needs tag or private to say which attribute it applies to", path)
		ok = false
	}
	act, hasAct := f["action"]
	if !hasAct {
		p.c.at(p.file, n, "%s: action is required (one of %s)", path, actionList())
		return pr, false
	}
	s, sok := p.str(prefix(path, "action"), act.val)
	if !sok {
		return pr, false
	}
	valid := false
	for _, a := range rules.Actions {
		valid = valid || string(a) == s
	}
	if !valid {
		p.c.at(p.file, act.val, "%s: unknown action %q (want one of %s)", prefix(path, "action"), s, actionList())
		return pr, false
	}
	pr.rule.Action, pr.actionAt = rules.Action(s), act.val
	val, hasVal := f["value"]
	switch {
	case pr.rule.Action == rules.Replace && !hasVal:
		p.c.at(p.file, n, "%s: action replace needs a value (the replacement template)", path)
		ok = false
	case pr.rule.Action != rules.Replace && hasVal:
		p.c.at(p.file, val.key, "%s: value is only allowed with action replace (this rule's action is %s)", prefix(path, "value"), s)
		ok = false
	case hasVal:
		ok = p.replaceValue(&pr, prefix(path, "value"), val.val) && ok
	}
	if ok && pr.vrs != nil {
		ok = p.checkActionVR(pr, act.val)
	}
	return pr, ok
}

// Text VRs by what an action can write into them.
func isTextVR(vr string) bool {
	switch vr {
	case "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT":
		return true
	}
	return false
}

// isNameVR is a text VR that holds names or free text, the only kind a
// pseudonym (letters and digits) is a valid value for.
func isNameVR(vr string) bool {
	switch vr {
	case "AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT":
		return true
	}
	return false
}

func anyVR(vrs []string, f func(string) bool) bool {
	for _, v := range vrs {
		if f(v) {
			return true
		}
	}
	return false
}

// checkActionVR rejects actions that cannot produce a valid value for the
// attribute's VR: the engine would otherwise write an invalid element or
// fall back to another action the user did not ask for.
func (p *parser) checkActionVR(pr parsedRule, at *yaml.Node) bool {
	vrs := strings.Join(pr.vrs, " or ")
	path := prefix(pr.path, "action")
	switch pr.rule.Action {
	case rules.Shift:
		if !anyVR(pr.vrs, func(v string) bool { return v == "DA" || v == "DT" || v == "TM" }) {
			p.c.at(p.file, at, "%s: shift needs a date or time attribute (VR DA, DT or TM); %s has VR %s", path, pr.label, vrs)
			return false
		}
	case rules.UID:
		if !anyVR(pr.vrs, func(v string) bool { return v == "UI" }) {
			p.c.at(p.file, at, "%s: uid needs a UID attribute (VR UI); %s has VR %s", path, pr.label, vrs)
			return false
		}
	case rules.Pseudonym:
		if !anyVR(pr.vrs, isNameVR) {
			hint := ""
			switch {
			case anyVR(pr.vrs, func(v string) bool { return v == "UI" }):
				hint = " (use uid)"
			case anyVR(pr.vrs, func(v string) bool { return v == "DA" || v == "DT" || v == "TM" }):
				hint = " (use shift)"
			}
			p.c.at(p.file, at, "%s: pseudonym needs a text attribute (VR AE, CS, LO, LT, PN, SH, ST, UC or UT); %s has VR %s%s", path, pr.label, vrs, hint)
			return false
		}
	case rules.Replace:
		if !anyVR(pr.vrs, isTextVR) {
			p.c.at(p.file, at, "%s: replace needs a text attribute; %s has VR %s", path, pr.label, vrs)
			return false
		}
	}
	return true
}

// replaceValue checks a replace template, and that it fits the VR when
// the attribute is a public one.
func (p *parser) replaceValue(pr *parsedRule, path string, n *yaml.Node) bool {
	s, ok := p.str(path, n)
	if !ok {
		return false
	}
	if s == "" {
		p.c.at(p.file, n, "%s: empty replacement (use action empty for a zero-length value)", path)
		return false
	}
	t, err := parseTemplate(s)
	if err != nil {
		p.c.at(p.file, n, "%s: bad template %q: %v", path, s, err)
		return false
	}
	pr.rule.Value = s
	for _, vr := range pr.vrs {
		if !isTextVR(vr) {
			continue
		}
		if msg := t.fitsVR(vr); msg != "" {
			p.c.at(p.file, n, "%s: template %q does not fit %s: %s", path, s, pr.label, msg)
			return false
		}
		break
	}
	return true
}

// tagSelector reads "tag:": a keyword or a tag number.
func (p *parser) tagSelector(pr *parsedRule, path string, n *yaml.Node) bool {
	s, ok := p.str(path, n)
	if !ok {
		return false
	}
	t, isKeyword, err := parseTagText(s)
	if err != nil {
		p.c.at(p.file, n, "%s: bad tag %q: want a keyword such as PatientName, or (gggg,eeee), gggg,eeee or ggggeeee in hex", path, s)
		return false
	}
	if isKeyword {
		info, err := tag.FindByKeyword(s)
		if err != nil || info.Keyword != s {
			// FindByKeyword also matches names; only keywords are
			// accepted so that a profile reads the same everywhere.
			hint := ""
			if err == nil {
				hint = fmt.Sprintf(" (did you mean %s?)", info.Keyword)
			}
			p.c.at(p.file, n, "%s: unknown keyword %q%s", path, s, hint)
			return false
		}
		t = info.Tag.Uint32()
	}
	if msg := targetProblem(t); msg != "" {
		p.c.at(p.file, n, "%s: %s", path, msg)
		return false
	}
	pr.rule.Selector.Tag = t
	pr.label = tagLabel(t)
	if t>>16&1 == 0 {
		if info, ok := lookupTag(t); ok {
			pr.vrs = info.VRs
		}
	}
	return true
}

// parseTagText parses (gggg,eeee), gggg,eeee or ggggeeee; anything that
// looks like a word is returned as a keyword to look up.
func parseTagText(s string) (t uint32, isKeyword bool, err error) {
	bad := errors.New("bad tag")
	hexForm := strings.HasPrefix(s, "(") || strings.Contains(s, ",") || (len(s) == 8 && isHex(s))
	if !hexForm {
		if s == "" || !(s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z') {
			return 0, false, bad
		}
		for _, r := range s {
			if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				return 0, false, bad
			}
		}
		return 0, true, nil
	}
	body := s
	if strings.HasPrefix(s, "(") {
		if !strings.HasSuffix(s, ")") {
			return 0, false, bad
		}
		body = s[1 : len(s)-1]
	}
	g, e, found := strings.Cut(body, ",")
	if !found {
		if len(body) != 8 {
			return 0, false, bad
		}
		g, e = body[:4], body[4:]
	}
	e = strings.TrimPrefix(e, " ")
	if len(g) != 4 || len(e) != 4 || !isHex(g) || !isHex(e) {
		return 0, false, bad
	}
	v, _ := strconv.ParseUint(g+e, 16, 32)
	return uint32(v), false, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return s != ""
}

// lookupTag finds a public tag in the dictionary, mapping the repeating
// groups 50xx (curves) and 60xx (overlays) to their first group, which is
// the only one the dictionary lists.
func lookupTag(t uint32) (tag.Info, bool) {
	g, e := uint16(t>>16), uint16(t)
	info, err := tag.Find(tag.Tag{Group: g, Element: e})
	if err != nil && (g&0xFF00 == 0x5000 || g&0xFF00 == 0x6000) {
		info, err = tag.Find(tag.Tag{Group: g & 0xFF00, Element: e})
	}
	return info, err == nil
}

// tagLabel names a tag in messages and in Show: keyword and number.
func tagLabel(t uint32) string {
	num := fmt.Sprintf("(%04X,%04X)", t>>16, t&0xFFFF)
	if t>>16&1 == 1 {
		return "private " + num
	}
	if info, ok := lookupTag(t); ok {
		return info.Keyword + " " + num
	}
	return num
}

// targetProblem says why a rule may not act on t, or "" if it may.
func targetProblem(t uint32) string {
	g, e := uint16(t>>16), uint16(t)
	switch {
	case g == 0x0002:
		return fmt.Sprintf("(%04X,%04X) is File Meta Information (group 0002), which the engine writes itself; rules cannot target it", g, e)
	case t == 0x7FE00010:
		return "Pixel Data (7FE0,0010) is handled by the engine (it is never read into memory); rules cannot target it"
	case g == 0xFFFE:
		return fmt.Sprintf("(%04X,%04X) is an item or delimitation tag, not an attribute", g, e)
	case g == 0x0000:
		return fmt.Sprintf("(%04X,%04X) is a command (group 0000) element, which does not occur in files", g, e)
	case e == 0x0000:
		return fmt.Sprintf("(%04X,0000) is a group length, which the writer drops or recomputes; rules cannot target it", g)
	case g&1 == 1 && (g <= 0x0007 || g == 0xFFFF):
		return fmt.Sprintf("group %04X is not a valid private group (PS3.5 7.8.1 reserves 0001, 0003, 0005, 0007 and FFFF)", g)
	}
	return ""
}

// privateSelector reads "private: {group, creator, element}".
func (p *parser) privateSelector(pr *parsedRule, path string, n *yaml.Node) bool {
	f := p.fields(n, path, "group", "creator", "element")
	if f == nil {
		return false
	}
	ok := true
	for _, k := range []string{"group", "creator", "element"} {
		if _, has := f[k]; !has {
			p.c.at(p.file, n, "%s: %s is required", path, k)
			ok = false
		}
	}
	if !ok {
		return false
	}
	var sel rules.PrivateSelector
	gp := prefix(path, "group")
	if g, gok := p.str(gp, f["group"].val); !gok {
		ok = false
	} else if len(g) != 4 || !isHex(g) {
		p.c.at(p.file, f["group"].val, "%s: %q is not a group: want 4 hex digits such as \"0019\"", gp, g)
		ok = false
	} else {
		v, _ := strconv.ParseUint(g, 16, 16)
		sel.Group = uint16(v)
		switch {
		case v&1 == 0:
			p.c.at(p.file, f["group"].val, "%s: group %s is even, so public; private groups are odd (use tag: for public attributes)", gp, strings.ToUpper(g))
			ok = false
		case v <= 0x0007 || v == 0xFFFF:
			p.c.at(p.file, f["group"].val, "%s: %s", gp, targetProblem(uint32(v)<<16|0x1000))
			ok = false
		}
	}
	cp := prefix(path, "creator")
	if c, cok := p.str(cp, f["creator"].val); !cok {
		ok = false
	} else if msg := creatorProblem(c); msg != "" {
		p.c.at(p.file, f["creator"].val, "%s: %s", cp, msg)
		ok = false
	} else {
		sel.Creator = c
	}
	ep := prefix(path, "element")
	if e, eok := p.str(ep, f["element"].val); !eok {
		ok = false
	} else if len(e) == 4 && isHex(e) {
		p.c.at(p.file, f["element"].val, "%s: give only the low byte, %q: the block byte (xx in (gggg,xxee)) is wherever the file's creator put it", ep, strings.ToUpper(e[2:]))
		ok = false
	} else if len(e) < 1 || len(e) > 2 || !isHex(e) {
		p.c.at(p.file, f["element"].val, "%s: %q is not an element byte: want 2 hex digits 00-FF", ep, e)
		ok = false
	} else {
		v, _ := strconv.ParseUint(e, 16, 8)
		sel.Element = uint8(v)
	}
	if !ok {
		return false
	}
	pr.rule.Selector.Private = &sel
	pr.label = privateLabel(sel)
	return true
}

// creatorProblem checks a Private Creator (LO: at most 64 characters).
func creatorProblem(c string) string {
	if strings.TrimSpace(c) == "" {
		return "empty private creator"
	}
	if len(c) > 64 {
		return fmt.Sprintf("private creator is %d characters long; LO allows 64", len(c))
	}
	for _, r := range c {
		if r < 0x20 || r > 0x7E || r == '\\' {
			return fmt.Sprintf("character %q not allowed in a private creator", r)
		}
	}
	return ""
}

func privateLabel(s rules.PrivateSelector) string {
	return fmt.Sprintf("(%04X,xx%02X) %q", s.Group, s.Element, s.Creator)
}
