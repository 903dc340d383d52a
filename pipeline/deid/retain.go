package deid

import (
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
)

// retain looks, before anything is written, at every value the output
// keeps from the input (by the table or an option; a value an explicit
// keep rule names is left as the rule says) as the verifier will look at it, and deals with
// one that holds an identifying value of the file (a Referring
// Physician's name repeated in LUT Explanation, a vendor's AI result
// whose Content Description repeats its Content Creator's Name, a safe
// private number equal to an ID). The profile keeps the attribute, so the
// value is kept as far as it can be:
//
//   - text (LO, SH, ST, LT, UT, UC, PN, AE) loses what the verifier finds
//     in it, as Clean Descriptors does ("***"), and is kept otherwise;
//   - a private attribute that cannot be cleaned is removed (what the
//     Basic Profile does with private attributes anyway);
//   - any other value is emptied, unless its attribute is Type 1
//     (typeOne): then it is left, the verifier refuses the output and the
//     file is quarantined, as before.
//
// Each case is counted (kept_cleaned, kept_emptied, kept_removed,
// kept_held_back). The verifier still checks the written output on its
// own afterwards: this pass only spares files that cleaning can save.
func (j *Job) retain() {
	m := j.verifier()
	if m.Empty() {
		return
	}
	j.retainDataset(j.f.Elements, j.top, m.Checker(), 0)
}

func (j *Job) retainDataset(els []*dicomraw.Element, sc scope, c *verify.Checker, depth int) {
	if depth > 0 {
		j.setCharset(&sc, els)
	}
	for _, e := range els {
		t := e.Tag
		if e.Op == dicomraw.OpRemove || t.Group() == 0x7FE0 || t.Group() == 0x0002 || t.Group() == 0xFFFE {
			continue
		}
		if e.Items != nil {
			if e.Op == dicomraw.OpEmptySequence {
				continue
			}
			for _, it := range e.Items {
				if !it.Removed {
					j.retainDataset(it.Elements, sc, c, depth+1)
				}
			}
			continue
		}
		if e.Op != dicomraw.OpKeep || !e.Loaded || len(e.Value) == 0 || j.ruleKept[e] {
			// Replaced (the engine's own values), too large to load, or
			// kept by an explicit rule (written as it is, or quarantined):
			// the verifier reads those.
			continue
		}
		hits := c.Hits(e, e.Value)
		if len(hits) == 0 {
			continue
		}
		j.retainFix(els, e, hits, sc, c)
	}
}

// retainFix keeps what it can of e, whose value holds identifying values
// at hits.
func (j *Job) retainFix(els []*dicomraw.Element, e *dicomraw.Element, hits []verify.Hit, sc scope, c *verify.Checker) {
	cnt := &j.res.Counts
	if cnt.Kept > 0 {
		cnt.Kept-- // no longer kept as it was
	}
	vr := e.VR
	if vr == "UN" || vr == "" {
		if v := dicomraw.DictVR(e.Tag); v != "" {
			vr = v
		}
	}
	if e.Tag.IsPrivateCreator() {
		// A creator that names the file's patient or staff: the block goes
		// with it (a kept block without its creator means nothing).
		j.removeBlock(els, e)
		return
	}
	if cleanableText(vr) {
		if v, ok := j.cutHits(e.Value, hits, vr, sc); ok && len(c.Hits(e, v)) == 0 {
			j.replace(e, vr, v)
			cnt.KeptCleaned++
			return
		}
	}
	switch {
	case e.Tag.IsPrivate():
		e.Op = dicomraw.OpRemove
		cnt.KeptRemoved++
	case typeOne[uint32(e.Tag)]:
		cnt.KeptHeldBack++ // the verifier refuses the output: quarantined
	default:
		j.replace(e, vr, nil)
		cnt.KeptEmptied++
	}
}

// cleanableText: VRs a "***" may stand in for part of a value.
func cleanableText(vr string) bool {
	switch vr {
	case "LO", "SH", "ST", "LT", "UT", "UC", "PN", "AE":
		return true
	}
	return false
}

// cutHits cuts the verifier's matches out of a text value, decoded and
// encoded again in the scope's character set (a byte range cut as it is
// could split a character of a multi-byte set). ok is false when the
// text cannot be decoded or nothing was cut.
func (j *Job) cutHits(value []byte, hits []verify.Hit, vr string, sc scope) ([]byte, bool) {
	if sc.csErr || sc.cs == nil {
		return nil, false
	}
	raw := trimValue(value)
	text := sc.cs.Decode(raw, vr)
	nds := make([]needle, 0, len(hits))
	for _, h := range hits {
		if h.Start < 0 || h.End > len(raw) || h.Start >= h.End {
			return nil, false
		}
		piece := strings.ToLower(strings.TrimSpace(sc.cs.Decode(raw[h.Start:h.End], vr)))
		if piece == "" {
			return nil, false
		}
		nds = append(nds, needle{runes: []rune(piece), bound: boundNone})
	}
	out, n := redact(text, nds)
	if n == 0 {
		return nil, false
	}
	enc, err := sc.cs.Encode(out, vr)
	if err != nil {
		return nil, false
	}
	return enc, true
}

// removeBlock removes a private creator and every element of its block.
func (j *Job) removeBlock(els []*dicomraw.Element, creator *dicomraw.Element) {
	g, blk := creator.Tag.Group(), creator.Tag.Element()
	creator.Op = dicomraw.OpRemove
	for _, e := range els {
		if e.Tag.Group() == g && e.Tag.Element()>>8 == blk && e.Tag.Element() >= 0x1000 && e.Op != dicomraw.OpRemove {
			e.Op = dicomraw.OpRemove
			j.res.Counts.KeptRemoved++
		}
	}
}
