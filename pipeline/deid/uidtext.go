package deid

import (
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

// minUIDNeedle is the shortest UID looked for in free text; the verifier
// looks for the same (shorter ones are version numbers and the like).
const minUIDNeedle = 8

// collectUIDs adds the UIDs of a UI value that the engine replaces (every
// UID not registered in PS3.6, unless the profile retains UIDs) to the
// values cleaned text loses: a description or comment that cites the
// study's or the instance's UID would otherwise keep the original next to
// its mapped attribute (from fuzzing: Additional Patient History holding
// the SOP Instance UID). The value is decoded as the text it may appear
// in is, so that the same bytes match.
func (j *Job) collectUIDs(e *dicomraw.Element, sc scope, add func(string, bool)) {
	if !e.Loaded || len(e.Value) == 0 || j.eng.prof.Options[ps315.RetainUIDs] {
		return
	}
	for _, raw := range strings.Split(string(trimValue(e.Value)), `\`) {
		u := strings.Trim(raw, " \x00")
		if len(u) < minUIDNeedle || isStandardUID(u) {
			continue
		}
		if sc.cs != nil {
			u = sc.cs.Decode([]byte(u), "LT")
		}
		add(u, true)
	}
}
