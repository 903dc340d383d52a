package deid

import (
	"bytes"
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/pipeline/uidreg"
)

// apply carries out decision d on element e.
func (j *Job) apply(e *dicomraw.Element, d decision, path string, sc scope) {
	c := &j.res.Counts
	prof := j.eng.prof
	isSeq := d.vr == "SQ"
	// A value the parser did not load (over the in-memory limit) cannot be
	// inspected: only actions that do not need it can be carried out.
	unreadable := !isSeq && !e.Loaded && e.Tag != dicomraw.TagPixelData
	switch d.action {
	case rules.Remove:
		e.Op = dicomraw.OpRemove
		c.Removed++
		if d.unknown {
			c.UnknownPublicRemoved++
		}
		j.note(path, d.action, d.why)
		return
	case rules.Empty:
		if isSeq {
			e.Op = dicomraw.OpEmptySequence
		} else {
			j.replace(e, d.vr, nil)
		}
		c.Emptied++
		j.note(path, d.action, d.why)
		return
	}
	if isSeq {
		child := sc
		child.depth++
		child.content = false
		switch d.action {
		case rules.Dummy:
			child.mode = textDummyAll
			if e.Tag == tagContentSequence {
				child.mode = textDummy // the SR tree keeps its codes
			}
		case rules.Clean:
			child.mode = textClean
		}
		isContent := e.Tag == tagContentSequence
		j.note(path, d.action, d.why)
		for _, it := range e.Items {
			cs := child
			cs.path = path + "/"
			cs.content = isContent
			j.dataset(it.Elements, it, cs)
		}
		return
	}
	if unreadable && d.action != rules.Keep {
		e.Op = dicomraw.OpRemove
		c.UnreadableRemoved++
		j.note(path, rules.Remove, "value too large to inspect")
		return
	}
	switch d.action {
	case rules.Keep:
		if d.vr == "UI" && !unreadable && (d.deflt || d.private) && !d.class && !prof.Options[ps315.RetainUIDs] {
			// Not listed in the table, so not trusted: every UID that is not
			// registered in PS3.6 is mapped, whatever its tag.
			if j.mapUIDs(e, d.vr) {
				c.NonTableUIDsMapped++
				j.note(path, rules.UID, "UID not registered in PS3.6 (attribute not in Table E.1-1)")
				return
			}
		}
		c.Kept++
		if !d.byTable {
			// An explicit keep rule: the value is written as it is, or the
			// file quarantined (retain does not clean it).
			if j.ruleKept == nil {
				j.ruleKept = map[*dicomraw.Element]bool{}
			}
			j.ruleKept[e] = true
		}
		j.note(path, d.action, d.why)
	case rules.UID:
		if d.vr != "UI" {
			j.dummy(e, d.vr, d.domain())
			j.note(path, rules.Dummy, d.why+" (not a UID)")
			return
		}
		j.mapUIDs(e, d.vr)
		c.UIDsMapped++
		j.note(path, d.action, d.why)
	case rules.Dummy:
		j.dummy(e, d.vr, d.domain())
		c.Dummied++
		j.note(path, d.action, d.why)
	case rules.Pseudonym:
		j.pseudonym(e, d.vr, d.domain())
		c.Pseudonymised++
		j.note(path, d.action, d.why)
	case rules.Clean:
		j.clean(e, d, path, sc)
		j.note(path, d.action, d.why)
	case rules.Shift:
		j.shiftValue(e, d.vr)
		j.note(path, d.action, d.why)
	case rules.Replace:
		j.replaceTemplate(e, d, path)
		j.note(path, d.action, d.why)
	default:
		e.Op = dicomraw.OpRemove
		c.Removed++
		j.note(path, rules.Remove, "unknown action")
	}
}

func (j *Job) replace(e *dicomraw.Element, vr string, v []byte) {
	e.Op = dicomraw.OpReplace
	// The element keeps the VR it was written with (UN stays UN), but the
	// value is padded for its real VR: a UN-encoded LO gets a space, which
	// is what a reader that knows the dictionary VR expects.
	e.NewValue = dicomraw.Pad(vr, v)
}

// mapUIDs replaces every non-registered UID in a UI value; it reports
// whether anything changed.
func (j *Job) mapUIDs(e *dicomraw.Element, vr string) bool {
	vals := strings.Split(strings.TrimRight(string(e.Value), "\x00 "), `\`)
	changed := false
	for i, v := range vals {
		v = strings.Trim(v, " \x00")
		if v == "" || isStandardUID(v) {
			continue
		}
		vals[i] = j.eng.pz.UID(v)
		changed = true
	}
	if changed {
		j.replace(e, vr, []byte(strings.Join(vals, `\`)))
	}
	return changed
}

// Fixed dummy values (PS3.15 D: "may be a dummy value and consistent with
// the VR"); they carry no information.
func dummyFor(vr string) string {
	switch vr {
	case "DA":
		return "19000101"
	case "TM":
		return "000000"
	case "DT":
		return "19000101000000"
	case "AS":
		return "000Y"
	case "DS", "IS":
		return "0"
	case "UR":
		return "urn:x-dicomdeid:removed"
	}
	return "ANONYMIZED"
}

// maxLen is the maximum characters of a value (per value, PN per group).
func maxLen(vr string) int {
	switch vr {
	case "AE", "CS", "SH":
		return 16
	case "LO", "PN":
		return 64
	case "ST":
		return 1024
	case "DS":
		return 16
	case "IS":
		return 12
	}
	return 10240
}

func (j *Job) dummy(e *dicomraw.Element, vr, domain string) {
	switch vr {
	case "UI":
		j.replace(e, vr, []byte(j.eng.pz.UID(strings.Trim(string(e.Value), "\x00 "))))
	case "PN", "LO", "SH":
		j.pseudonym(e, vr, domain)
	case "OB", "OW", "OD", "OF", "OL", "OV", "UN", "US", "SS", "UL", "SL", "FL", "FD", "AT", "SV", "UV":
		j.replace(e, vr, make([]byte, len(e.Value))) // zeros of the same length
	default:
		j.replace(e, vr, []byte(dummyFor(vr)))
	}
}

// pseudonym writes the keyed pseudonym: the patient's for Patient ID and
// Patient's Name (both derived from the Patient ID, so one patient has one
// pseudonym everywhere), the value's own for anything else.
func (j *Job) pseudonym(e *dicomraw.Element, vr, tagDomain string) {
	p := j.eng.prof.Pseudonyms
	orig := strings.Trim(string(e.Value), "\x00 ")
	var tmpl, domain, value string
	switch uint32(e.Tag) {
	case tagPatientID:
		tmpl, domain, value = p.PatientID, "patient", orig
	case tagPatientName:
		tmpl, domain, value = p.PatientName, "patient", j.patientID
		if j.patientID == "" {
			value = "name:" + orig
		}
	default:
		tmpl, domain, value = p.Other, tagDomain, orig
	}
	if orig == "" && (e.Tag == tagPatientID || e.Tag == tagPatientName) {
		j.replace(e, vr, nil) // empty stays empty (Type 2)
		return
	}
	s, err := j.eng.pz.Format(tmpl, domain, value)
	if err != nil { // templates are checked when the engine is built
		s = dummyFor(vr)
	}
	// With a lookup table the patient is named by the broker's research
	// ID; another person's ID in a sequence keeps its keyed pseudonym.
	if j.researchID != "" && (e.Tag == tagPatientName || e.Tag == tagPatientID && orig == j.patientID) {
		s = j.researchID
	}
	if l := maxLen(vr); len(s) > l {
		s = s[:l]
	}
	if vr == "CS" || vr == "AE" {
		s = strings.ToUpper(s)
	}
	j.replace(e, vr, []byte(s))
}

func (j *Job) replaceTemplate(e *dicomraw.Element, d decision, path string) {
	s, err := j.eng.pz.Format(d.value, d.domain(), strings.Trim(string(e.Value), "\x00 "))
	if err != nil {
		s = dummyFor(d.vr)
	}
	if l := maxLen(d.vr); len(s) > l {
		s = s[:l]
	}
	j.replace(e, d.vr, []byte(s))
}

// clean implements C: free text loses every identifying value found in the
// file's other attributes; dates move by the patient's shift; UIDs map.
func (j *Job) clean(e *dicomraw.Element, d decision, path string, sc scope) {
	c := &j.res.Counts
	switch {
	case d.vr == "DA" || d.vr == "DT":
		j.shiftValue(e, d.vr)
	case d.vr == "TM":
		j.shiftValue(e, d.vr) // whole-day shifts keep the time of day
	case d.vr == "UI":
		j.mapUIDs(e, d.vr)
		c.UIDsMapped++
	case d.vr == "PN":
		j.pseudonym(e, d.vr, d.domain())
		c.Pseudonymised++
	case isText(d.vr):
		j.cleanText(e, d.vr, sc)
	case d.vr == "SQ":
		// handled by apply
	case isOverlayData(e.Tag) && sc.depth == 0 && j.eng.text != nil:
		// Cleaning an overlay is reading it: examineOverlays keeps it
		// only when it shows no text to mask.
		c.Kept++
	case isBinary(d.vr):
		e.Op = dicomraw.OpRemove // opaque bytes cannot be cleaned
		c.Removed++
	default:
		c.Kept++ // numbers, codes
	}
}

func isText(vr string) bool {
	switch vr {
	case "SH", "LO", "ST", "LT", "UT", "UC", "AE", "CS", "UR":
		return true
	}
	return false
}

func isBinary(vr string) bool {
	switch vr {
	case "OB", "OW", "OD", "OF", "OL", "OV", "UN":
		return true
	}
	return false
}

func (j *Job) cleanText(e *dicomraw.Element, vr string, sc scope) {
	c := &j.res.Counts
	if sc.csErr || sc.cs == nil {
		j.replace(e, vr, nil) // unknown character set: cannot look inside, so empty it
		c.ReplacedUnencodable++
		return
	}
	raw := bytes.TrimRight(e.Value, "\x00 ")
	text := sc.cs.Decode(raw, vr)
	if !j.collected {
		// Most files clean nothing: the identifying values of the whole
		// file are gathered only when a text is to be cleaned of them.
		j.collect(j.f.Elements, j.top)
		j.collected = true
	}
	out, n := redact(text, j.needles)
	enc := raw
	if n > 0 {
		var err error
		if enc, err = sc.cs.Encode(out, vr); err != nil {
			j.replace(e, vr, nil)
			c.ReplacedUnencodable++
			return
		}
	}
	// The engine reads text as its character set says; the verifier also
	// reads its bytes as they are. Where they disagree (a name's letters
	// inside a two-byte run of ISO 2022 text), the text cannot be cleaned
	// reliably: it is emptied, not left to fail the whole file.
	if j.verifier().Flags(e, enc) {
		j.replace(e, vr, nil)
		c.UncleanableEmptied++
		return
	}
	if n == 0 {
		c.Kept++
		return
	}
	c.Cleaned++
	c.TextRedactions += n
	j.replace(e, vr, enc)
}

// isStandardUID reports a UID registered in PS3.6, or any UID under the
// DICOM root (context group UIDs of Table A-3 are not in the registry we
// generate from, and no instance UID may use that root).
//
// A one-digit value ("0", a placeholder some writers put in references) is
// kept too: it names nothing and carries under four bits, while mapping it
// would turn a placeholder into a reference to an instance that does not
// exist.
func isStandardUID(v string) bool {
	if len(v) == 1 && v[0] >= '0' && v[0] <= '9' {
		return true
	}
	return uidreg.IsRegistered(v) || uidreg.IsDICOMRoot(v)
}
