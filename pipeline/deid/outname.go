package deid

import "path"

// ValidUID reports whether s is a UID as PS3.5 9.1 writes one: at most 64
// characters, components of digits separated by single dots, no
// component with a leading zero (other than "0" itself). Only such a
// value is used in an output's name: with Retain UIDs the input's own
// UIDs reach the name, and "../../victim" or "a/b" are not UIDs.
func ValidUID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
			continue
		}
		if i == start || (s[start] == '0' && i-start > 1) {
			return false // an empty component, or a leading zero
		}
		start = i + 1
	}
	return true
}

// outputName is the relative name of an output: <study>/<series>/<sop>.dcm
// by the output's UIDs. A UID that is not valid (ValidUID) is replaced by
// a keyed hash of it ("hashed-" and 26 base32 characters), so that the
// name is a function of the input and the key, stays inside whatever
// folder or bucket prefix it is joined to, and carries no value of the
// input; hashed says whether that happened.
func (e *Engine) outputName(r *Result) (name string, hashed bool) {
	part := func(uid, missing string) string {
		switch {
		case uid == "" && missing != "":
			return missing
		case ValidUID(uid):
			return uid
		}
		hashed = true
		h, _ := e.pz.Format("{hash:26}", "output-name", uid) // a valid template
		return "hashed-" + h
	}
	name = path.Join(part(r.StudyUID, "no-study"), part(r.SeriesUID, "no-series"), part(r.SOPInstanceUID, "")+".dcm")
	return name, hashed
}
