package deid

import (
	"fmt"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/charset"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/pipeline/uidreg"
)

// Tags the engine treats specially.
const (
	tagSpecificCharacterSet = 0x00080005
	tagSOPClassUID          = 0x00080016
	tagSOPInstanceUID       = 0x00080018
	tagStudyInstanceUID     = 0x0020000D
	tagSeriesInstanceUID    = 0x0020000E
	tagPatientName          = 0x00100010
	tagPatientID            = 0x00100020
	tagPatientIdentityRem   = 0x00120062
	tagDeidMethod           = 0x00120063
	tagDeidMethodCodeSeq    = 0x00120064
	tagLongTemporalModified = 0x00280303
	tagContentSequence      = 0x0040A730
	tagConceptNameCodeSeq   = 0x0040A043
	tagCodeValue            = 0x00080100
	tagCodingSchemeDesig    = 0x00080102
	tagCodeMeaning          = 0x00080104
	mediaStorageDirectory   = "1.2.840.10008.1.3.10"
)

// SR content item value attributes that a Table E.3.4-1 row acts on.
var contentValueTags = map[uint32]bool{
	0x0040A160: true, // Text Value
	0x0040A123: true, // Person Name
	0x0040A121: true, // Date
	0x0040A122: true, // Time
	0x0040A120: true, // DateTime
	0x0040A124: true, // UID
}

// textMode is how free text without a rule of its own is handled inside a
// sequence that Table E.1-1 dummies (D) or cleans (C): SR Content Sequence,
// Graphic Annotation Sequence and the like.
type textMode uint8

const (
	textKeep     textMode = iota
	textDummy             // free text dummied (the SR Content Sequence, D)
	textDummyAll          // every text value dummied, codes' vocabulary kept
	textClean
)

// scope is the context of one dataset or item.
type scope struct {
	cs      *charset.Set
	csErr   bool
	path    string
	mode    textMode
	content bool // the item is an SR content item
	depth   int
}

// whyNotInTable is the reason given for an attribute kept because Table
// E.1-1 does not list it.
const whyNotInTable = "not in Table E.1-1"

// whyClassUID is the reason given for a class UID kept unmapped.
const whyClassUID = "class UID (names a kind of object, not an instance): kept"

// decision is what to do with one element and why.
type decision struct {
	action  rules.Action
	why     string
	vr      string // effective VR
	private bool
	byTable bool   // from Table E.1-1 (or a default), not a user rule
	deflt   bool   // attribute not in the table: kept by default
	unknown bool   // public tag the data dictionary does not know
	value   string // the rule's template, for replace
	class   bool   // a UI attribute naming a class, syntax or scheme (kept unmapped)
	tag     dicomraw.Tag
	creator string // private: the block's normalised creator ("" when none)
}

func (j *Job) run() error {
	f := j.f
	sopClass := j.topString(tagSOPClassUID)
	if sopClass == "" {
		sopClass = j.metaString(0x00020002)
	}
	// A dataset without SOP Instance UID is still named by its File Meta's
	// Media Storage SOP Instance UID (mapped like any UID); with neither it
	// is not a composite instance, and nothing could name the output.
	sopInstance := j.topString(tagSOPInstanceUID)
	if sopInstance == "" {
		sopInstance = j.metaString(0x00020003)
	}
	if sopClass == mediaStorageDirectory {
		return reject("unsupported", "DICOMDIR (Media Storage Directory) is not de-identified: its records point at input files; build a new one from the outputs")
	}
	if sopInstance == "" {
		return reject("missing", "no SOP Instance UID (0008,0018) nor Media Storage SOP Instance UID (0002,0003): not a composite instance that can be named")
	}
	if err := unreadableIdentity(f.Elements); err != nil {
		return err
	}
	p := j.eng.prof
	j.patientID = j.topString(tagPatientID)
	if j.eng.lookup != nil {
		rid, ok := j.eng.lookup.ResearchID(j.patientID, j.topString(0x00100021))
		if !ok {
			return reject("not-in-lookup", "the patient is not in the project's lookup table of research IDs")
		}
		j.researchID = rid
	}
	j.shiftKey = j.patientID
	if j.shiftKey == "" {
		j.shiftKey = "study:" + j.topString(tagStudyInstanceUID)
	}
	j.shift = j.eng.pz.DayShift(j.shiftKey, p.DateShift.MinDays, p.DateShift.MaxDays)

	j.animal = isAnimal(f.Elements)
	top := scope{}
	j.setCharset(&top, f.Elements)
	j.top = top // the needles of cleaning are collected on first need
	j.dataset(f.Elements, nil, top)
	if j.refusal != nil {
		return j.refusal
	}
	j.fixConditions()
	if err := j.planPixels(sopClass); err != nil {
		return err
	}
	if err := j.examineOverlays(); err != nil {
		return err
	}
	if j.res.Pixels != nil {
		j.res.Pixels.Modality = modalityCode(strings.ToUpper(j.topString(0x00080060)))
	}
	j.retain()

	r := j.res
	// The class is the input's, never mapped: the File Meta's Media Storage
	// SOP Class UID stands in for a dataset without SOP Class UID.
	r.SOPClassUID = sopClass
	if v, found := j.outTopValue(tagSOPClassUID); found && v != "" {
		r.SOPClassUID = v
	}
	r.SOPInstanceUID = j.outTopUID(tagSOPInstanceUID, sopInstance)
	r.StudyUID = j.outTopUID(tagStudyInstanceUID, "")
	r.SeriesUID = j.outTopUID(tagSeriesInstanceUID, "")
	r.Name, r.NameHashed = j.eng.outputName(r)
	j.addMarkers()
	j.meta = []dicomraw.MetaElement{
		{Tag: 0x00020001, VR: "OB", Value: []byte{0, 1}},
		{Tag: 0x00020002, VR: "UI", Value: []byte(r.SOPClassUID)},
		{Tag: 0x00020003, VR: "UI", Value: []byte(r.SOPInstanceUID)},
		{Tag: 0x00020010, VR: "UI", Value: []byte(j.outputSyntax())},
		{Tag: 0x00020012, VR: "UI", Value: []byte(ImplementationClassUID)},
		{Tag: 0x00020013, VR: "SH", Value: []byte(ImplementationVersionName)},
	}
	return nil
}

// outputSyntax is the transfer syntax written: the input's, unless
// masked pixels were encoded in another.
func (j *Job) outputSyntax() string {
	if j.outSyntax != "" {
		return j.outSyntax
	}
	return j.f.Syntax.UID
}

// metaString is a File Meta value as stored, without padding.
func (j *Job) metaString(t uint32) string {
	for _, m := range j.f.Meta {
		if uint32(m.Tag) == t && m.Loaded {
			return strings.Trim(string(m.Value), "\x00 ")
		}
	}
	return ""
}

// topString is a top-level value as stored, without padding.
func (j *Job) topString(t uint32) string {
	for _, e := range j.f.Elements {
		if uint32(e.Tag) == t {
			if !e.Loaded {
				return ""
			}
			return strings.Trim(string(e.Value), "\x00 ")
		}
	}
	return ""
}

// outTopUID is a top-level UID as it will be written; without the element,
// fallback (the File Meta's UID) as the output would map it.
func (j *Job) outTopUID(t uint32, fallback string) string {
	if v, found := j.outTopValue(t); found {
		return v
	}
	if fallback != "" && !isStandardUID(fallback) && !j.eng.prof.Options[ps315.RetainUIDs] {
		return j.eng.pz.UID(fallback)
	}
	return fallback
}

// setCharset applies an item's own Specific Character Set, if any.
func (j *Job) setCharset(sc *scope, els []*dicomraw.Element) {
	for _, e := range els {
		if e.Tag != tagSpecificCharacterSet {
			continue
		}
		var terms []string
		if e.Loaded {
			for _, t := range strings.Split(string(e.Value), `\`) {
				terms = append(terms, strings.Trim(t, " \x00"))
			}
		}
		cs, err := charset.Parse(terms)
		if err != nil {
			sc.cs, sc.csErr = nil, true
			return
		}
		sc.cs, sc.csErr = cs, false
		return
	}
	if sc.cs == nil && !sc.csErr {
		cs, _ := charset.Parse(nil)
		sc.cs = cs
	}
}

// creators maps (group, block) to the normalised private creator of a dataset.
func creators(els []*dicomraw.Element) map[uint32]string {
	var m map[uint32]string
	for _, e := range els {
		if e.Tag.IsPrivateCreator() && e.Loaded {
			if m == nil {
				m = map[uint32]string{}
			}
			m[uint32(e.Tag.Group())<<8|uint32(e.Tag.Element())] = normCreator(strings.Trim(string(e.Value), "\x00"))
		}
	}
	return m
}

func blockKey(t dicomraw.Tag) uint32 {
	return uint32(t.Group())<<8 | uint32(t.Element()>>8)
}

// effectiveVR is the VR to interpret a value with: the dictionary's (or
// the safe-private table's) when the file says UN.
func effectiveVR(e *dicomraw.Element, privVR string) string {
	if e.Items != nil {
		return "SQ"
	}
	if e.VR != "UN" {
		return e.VR
	}
	if privVR != "" {
		return privVR
	}
	if v := dicomraw.DictVR(e.Tag); v != "" {
		return v
	}
	return "UN"
}

// keyword names a public tag for paths and reports.
func keyword(t dicomraw.Tag) string {
	if info, ok := dicomraw.Lookup(t); ok && info.Keyword != "" {
		if t.Group() >= 0x5000 && t.Group() <= 0x60FF && t.Group()&0xFF00 != 0x5400 {
			return info.Keyword + "[" + dicomraw.Hex(uint64(t.Group()), 4) + "]"
		}
		return info.Keyword
	}
	return t.String()
}

func privateName(t dicomraw.Tag, creator string) string {
	if creator == "" {
		return "Private(" + dicomraw.Hex(uint64(t.Group()), 4) + "," + dicomraw.Hex(uint64(t.Element()), 4) + ")"
	}
	return "Private(" + dicomraw.Hex(uint64(t.Group()), 4) + "," + printable(creator) + "," + dicomraw.Hex(uint64(t.Element()&0xFF), 2) + ")"
}

// printable keeps report paths readable and bounded whatever a file holds.
func printable(s string) string {
	b := []byte(s)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7E || c == '/' || c == ',' {
			b[i] = '?'
		}
	}
	return string(b)
}

// tableAction resolves a Table E.1-1 row with the profile's options. K
// from any enabled option wins over C; compound codes are resolved toward
// keeping the attribute present, so that no Type 1 or 2 attribute of the
// input disappears (dciodvfy is the judge): X/Z and Z/D empty it (or give a
// dummy where a value is required), X/D and X/Z/D put a dummy value,
// X/Z/U* keeps the sequence with its UIDs replaced.
func (j *Job) tableAction(basic ps315.Code, opts [ps315.NumOptions]ps315.Code, isSeq bool) (rules.Action, string) {
	code := basic
	for o := ps315.Option(0); o < ps315.NumOptions; o++ {
		if !j.eng.prof.Options[o] {
			continue
		}
		switch opts[o] {
		case ps315.CodeK:
			code = ps315.CodeK
		case ps315.CodeC:
			if code != ps315.CodeK {
				code = ps315.CodeC
			}
		}
	}
	return resolveCode(code, isSeq), string(code)
}

func resolveCode(code ps315.Code, isSeq bool) rules.Action {
	switch code {
	case ps315.CodeX:
		return rules.Remove
	case ps315.CodeZ:
		return rules.Empty
	case ps315.CodeD:
		return rules.Dummy
	case ps315.CodeK:
		return rules.Keep
	case ps315.CodeC:
		return rules.Clean
	case ps315.CodeU:
		return rules.UID
	case ps315.CodeXD:
		if isSeq {
			return rules.Remove // only Type 3 sequences carry X/D
		}
		return rules.Dummy
	case ps315.CodeXZ, ps315.CodeXZD, ps315.CodeZD:
		if isSeq {
			// A sequence that may be required (Referenced Study Sequence,
			// Referenced Performed Procedure Step Sequence, Institution Code
			// Sequence) must also keep its items ("1 item shall be present"):
			// the items stay and everything in them is de-identified, with
			// free text replaced by dummies.
			return rules.Dummy
		}
		if code == ps315.CodeXZ {
			return rules.Empty
		}
		return rules.Dummy
	case ps315.CodeXZUStar:
		return rules.UID
	}
	return rules.Remove // an unknown code never keeps anything
}

// domain is the pseudonym domain of the element: its tag, or for a
// private attribute its group, creator and element (independent of the
// block it was written in).
func (d decision) domain() string {
	t := d.tag
	if d.private {
		return "private:" + dicomraw.Hex(uint64(t.Group()), 4) + ":" + d.creator + ":" + dicomraw.Hex(uint64(uint8(t.Element())), 2)
	}
	return "tag:" + t.String()
}

// name is the element's name in attribute paths.
func (d decision) name() string {
	if d.private {
		return privateName(d.tag, d.creator)
	}
	return keyword(d.tag)
}

// decide returns the action for one element of a dataset.
func (j *Job) decide(e *dicomraw.Element, sc scope, crs map[uint32]string) decision {
	t := e.Tag
	eng := j.eng
	if t.IsPrivate() {
		creator := ""
		if t.Element() >= 0x1000 {
			creator = crs[blockKey(t)]
		}
		d := decision{private: true, tag: t, creator: creator}
		privVR, safe := "", false
		if creator != "" {
			var sp ps315.SafePrivate
			if sp, safe = ps315.LookupSafePrivate(t.Group(), creator, uint8(t.Element())); safe && len(sp.VR) == 2 {
				privVR = sp.VR
			}
		}
		if r, ok := eng.byPrivate[privKey{t.Group(), creator, uint8(t.Element())}]; ok && creator != "" {
			d.action, d.why, d.value = r.Action, ruleWhy(r), r.Value
		} else if r, ok := eng.byTag[uint32(t)]; ok {
			d.action, d.why, d.value = r.Action, ruleWhy(r), r.Value
		} else if creator != "" && eng.prof.Options[ps315.RetainSafePrivate] && privVR != "" {
			d.action, d.why, d.byTable = rules.Keep, "safe private attribute (Table E.3.10-1)", true
			if e.Items == nil && e.VR != "UN" && e.VR != privVR {
				// Written as something else than the list's VR: not the
				// attribute the list calls safe, and not interpreted.
				d.action, d.why = rules.Remove, "safe private attribute written with VR "+e.VR+", not "+privVR
			}
		} else if creator != "" && eng.prof.Options[ps315.RetainSafePrivate] {
			if safe {
				d.action, d.why, d.byTable = rules.Keep, "safe private attribute (Table E.3.10-1)", true
			} else {
				d.action, d.why, d.byTable = rules.Remove, "private attribute not in the safe list", true
			}
		} else {
			d.action, d.why, d.byTable = rules.Remove, "private attribute", true
		}
		d.vr = effectiveVR(e, privVR)
		return d
	}
	d := decision{vr: effectiveVR(e, ""), tag: t}
	isSeq := d.vr == "SQ"
	if r, ok := eng.byTag[uint32(t)]; ok {
		d.action, d.why, d.value = r.Action, ruleWhy(r), r.Value
		return d
	}
	if row, ok := ps315.Lookup(uint32(t)); ok {
		a, code := j.tableAction(j.iodBasic(uint32(t), row.Basic, sc.depth), row.Option, isSeq)
		d.action, d.why, d.byTable = a, "Table E.1-1 "+code, true
		if t == tagPatientID || t == tagPatientName {
			if a == rules.Dummy || a == rules.Empty {
				d.action, d.why = rules.Pseudonym, "patient pseudonym (Table E.1-1 "+code+")"
			}
		}
		return d
	}
	if _, known := dicomraw.Lookup(t); !known {
		d.action, d.why, d.byTable, d.unknown = rules.Remove, "public tag not in the PS3.6 dictionary", true, true
		return d
	}
	d.action, d.why, d.byTable, d.deflt = rules.Keep, whyNotInTable, true, true
	if d.vr == "UI" && uidreg.ClassAttribute(uint32(t)) {
		// A SOP class, transfer syntax or coding scheme names a kind of
		// object, the same whoever the patient: registered or private, it
		// stays as it is (a mapped private SOP Class UID names no class).
		d.class, d.why = true, whyClassUID
		return d
	}
	if sc.mode == textDummyAll && isTextVR(d.vr) && !codeVocabulary[uint32(t)] {
		// Inside a sequence the table replaces as a whole (Person
		// Identification Code Sequence, Institution Code Sequence...), the
		// codes themselves identify: a person's ID is a Code Value there.
		d.action, d.why, d.deflt = rules.Dummy, "text inside a dummied sequence", false
		return d
	}
	if g := t.Group(); g >= 0x6000 && g <= 0x60FF && isTextVR(d.vr) {
		// Overlay Description and Label stay with a kept overlay (Clean
		// Graphics) but may name the patient.
		d.action, d.why, d.deflt = rules.Clean, "overlay text: identifying values of the file removed", false
		return d
	}
	if isFreeText(d.vr) {
		switch sc.mode {
		case textDummy:
			d.action, d.why = rules.Dummy, "free text inside a dummied sequence"
		case textClean:
			d.action, d.why = rules.Clean, "free text inside a cleaned sequence"
		default:
			// Free text the table does not list can still repeat what it
			// does (a detector ID in Detector Description, the study
			// description in a waveform annotation): identifying values
			// found elsewhere in the file are taken out of it.
			d.action, d.why = rules.Clean, "free text not in Table E.1-1: identifying values of the file removed"
		}
		d.deflt = false
	}
	return d
}

func ruleWhy(r rules.Rule) string {
	if r.Source != "" {
		return fmt.Sprintf("rule %s:%d", r.Source, r.Line)
	}
	return "rule"
}

func isTextVR(vr string) bool {
	switch vr {
	case "LO", "SH", "PN", "ST", "LT", "UT", "UC", "AE":
		return true
	}
	return false
}

// codeVocabulary are the parts of a code that name its coding scheme and
// context group, not the concept; they identify nobody and readers need
// them to make sense of the rest.
var codeVocabulary = map[uint32]bool{
	0x00080102: true, 0x00080103: true, 0x00080105: true, 0x00080106: true, 0x00080107: true,
	0x0008010B: true, 0x0008010D: true, 0x0008010F: true, 0x00080117: true,
}

func isFreeText(vr string) bool {
	switch vr {
	case "ST", "LT", "UT", "UC":
		return true
	}
	return false
}

// dataset applies the profile to one dataset (top level or item).
func (j *Job) dataset(els []*dicomraw.Element, item *dicomraw.Item, sc scope) {
	if sc.depth > 0 {
		j.setCharset(&sc, els)
	}
	crs := creators(els)
	// SR content item: a Table E.3.4-1 row for its concept name decides the value.
	var contentAction rules.Action
	contentWhy := ""
	// Table E.3.4-1 is what the Clean Structured Content option applies;
	// without it the Content Sequence is D as a whole (free text dummied).
	if sc.content && j.eng.prof.Options[ps315.CleanStructuredContent] {
		if scheme, value, ok := conceptName(els); ok {
			if row, ok := ps315.LookupContentCodeType(scheme, value, valueType(els)); ok {
				a, code := j.tableAction(row.Basic, row.Option, false)
				contentAction, contentWhy = a, "Table E.3.4-1 "+code
				if a == rules.Remove && item != nil {
					item.Removed = true
					j.res.Counts.ContentItemsRemoved++
					j.note(sc.path+"(content item)", rules.Remove, contentWhy)
					return
				}
			}
		}
	}
	keptBlocks := map[uint32]bool{}
	overlayGone := map[uint16]bool{}
	for _, e := range els {
		if j.overtime() {
			return // Plan refuses the file
		}
		if e.Tag.IsPrivateCreator() {
			continue
		}
		j.res.Counts.Elements++
		if e.Tag.Element() == 0x0000 {
			e.Op = dicomraw.OpRemove
			j.res.Counts.GroupLengthsDropped++
			continue
		}
		if e.Tag.Group() == 0x0002 || e.Tag.Group() == 0xFFFE { // never valid in a dataset
			e.Op = dicomraw.OpRemove
			j.res.Counts.Removed++
			continue
		}
		if !e.Enc.Implicit && dicomraw.VRContradicts(e.Tag, e.VR) {
			j.contradictoryVR(e, sc)
			continue
		}
		if e.Tag == tagSpecificCharacterSet {
			continue
		}
		if sc.depth == 0 && (e.Tag == tagPatientIdentityRem || e.Tag == tagDeidMethod || e.Tag == tagDeidMethodCodeSeq || e.Tag == tagLongTemporalModified) {
			e.Op = dicomraw.OpRemove // replaced by this run's own statement
			continue
		}
		d := j.decide(e, sc, crs)
		var path string
		if j.eng.record { // paths only name what the dry run reports
			path = sc.path + d.name()
		}
		if contentAction != "" && contentValueTags[uint32(e.Tag)] {
			d.action, d.why, d.byTable, d.deflt = contentAction, contentWhy, true, false
		}
		j.apply(e, d, path, sc)
		if d.private {
			if e.Op == dicomraw.OpRemove {
				j.res.Counts.PrivateRemoved++
			} else {
				j.res.Counts.PrivateKept++
				keptBlocks[blockKey(e.Tag)] = true
			}
		}
		if g := e.Tag.Group(); g >= 0x6000 && g <= 0x60FF && g&1 == 0 && e.Tag.Element() == 0x3000 && e.Op == dicomraw.OpRemove {
			overlayGone[g] = true
		}
	}
	for _, e := range els {
		if e.Tag.IsPrivateCreator() {
			j.res.Counts.Elements++
			bk := uint32(e.Tag.Group())<<8 | uint32(e.Tag.Element())
			path := sc.path + "PrivateCreator(" + dicomraw.Hex(uint64(e.Tag.Group()), 4) + "," + dicomraw.Hex(uint64(e.Tag.Element()), 2) + ")"
			if keptBlocks[bk] {
				j.note(path, rules.Keep, "creator of kept private attributes")
			} else {
				e.Op = dicomraw.OpRemove
				j.note(path, rules.Remove, "creator of no kept private attribute")
			}
		}
		// An overlay without its data is not a valid overlay: the group goes whole.
		if g := e.Tag.Group(); overlayGone[g] && e.Op != dicomraw.OpRemove {
			e.Op = dicomraw.OpRemove
			j.res.Counts.Removed++
		}
	}
	j.res.Counts.OverlayGroupsRemoved += len(overlayGone)
}

// namingTags are the top-level attributes the output is named and
// decoded by: with a VR the dictionary contradicts, the file is refused
// rather than guessed at.
var namingTags = map[uint32]bool{
	tagSOPClassUID: true, tagSOPInstanceUID: true, tagStudyInstanceUID: true, tagSeriesInstanceUID: true,
}

// contradictoryVR removes an element whose explicit VR the data dictionary
// contradicts: its value cannot be interpreted safely, so nothing of it is
// kept, whatever the profile says of its tag. A Specific Character Set
// (at any depth) or a naming UID with such a VR refuses the whole file.
func (j *Job) contradictoryVR(e *dicomraw.Element, sc scope) {
	info, _ := dicomraw.Lookup(e.Tag)
	want := strings.Join(info.VRs, " or ")
	if e.Tag == tagSpecificCharacterSet || sc.depth == 0 && namingTags[uint32(e.Tag)] {
		if j.refusal == nil {
			j.refusal = reject("unsupported", "%s %s has VR %s where the data dictionary says %s: the file cannot be interpreted safely",
				keyword(e.Tag), e.Tag, e.VR, want)
		}
		return
	}
	e.Op = dicomraw.OpRemove
	j.res.Counts.VRMismatchRemoved++
	j.note(sc.path+keyword(e.Tag), rules.Remove, fmt.Sprintf("VR %s contradicts the data dictionary (%s): not interpreted", e.VR, want))
}

// valueType is a content item's Value Type (0040,A040).
func valueType(els []*dicomraw.Element) string {
	for _, e := range els {
		if e.Tag == 0x0040A040 {
			return strings.Trim(string(e.Value), " \x00")
		}
	}
	return ""
}

// conceptName is the (scheme, code value) of a content item's Concept Name.
func conceptName(els []*dicomraw.Element) (string, string, bool) {
	for _, e := range els {
		if e.Tag != tagConceptNameCodeSeq || len(e.Items) == 0 {
			continue
		}
		var scheme, value string
		for _, c := range e.Items[0].Elements {
			switch c.Tag {
			case tagCodeValue:
				value = strings.Trim(string(c.Value), " \x00")
			case tagCodingSchemeDesig:
				scheme = strings.Trim(string(c.Value), " \x00")
			}
		}
		return scheme, value, value != ""
	}
	return "", "", false
}

func (j *Job) note(path string, a rules.Action, why string) {
	if !j.eng.record {
		return
	}
	if _, ok := j.res.Paths[path]; !ok {
		j.res.Paths[path] = PathAction{Action: string(a), Why: why}
	}
}
