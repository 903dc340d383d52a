package deid

import (
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

// Linkage is what a delivery made with this engine contains for one
// patient: an honest broker computes it on the trusted side to link a
// research pseudonym back to a patient, or a patient to the pseudonym,
// without any stored crosswalk. It is computed by the same code that
// de-identifies files, so it cannot drift from what was delivered.
type Linkage struct {
	PatientID   string `json:"patient_id"`   // Patient ID (0010,0020) as written
	PatientName string `json:"patient_name"` // Patient's Name (0010,0010) as written
	// DateShiftDays is how many days the patient's dates move (negative:
	// back), under Retain Longitudinal Temporal Information with Modified
	// Dates; 0 otherwise.
	DateShiftDays int `json:"date_shift_days"`
}

// PatientLinkage returns what a delivery contains for a patient; with a
// lookup table, ok is false for a patient the table lacks (not delivered).
func (e *Engine) PatientLinkage(patientID, issuer string) (l Linkage, ok bool) {
	id := strings.Trim(patientID, "\x00 ")
	p := e.prof.Pseudonyms
	l.PatientID, _ = e.pz.Format(p.PatientID, "patient", id)
	l.PatientName, _ = e.pz.Format(p.PatientName, "patient", id)
	if e.lookup != nil {
		rid, found := e.lookup.ResearchID(id, strings.Trim(issuer, "\x00 "))
		if !found {
			return Linkage{}, false
		}
		l.PatientID, l.PatientName = rid, rid
	}
	if e.prof.Options[ps315.RetainLongModifiedDates] {
		l.DateShiftDays = e.pz.DayShift(id, e.prof.DateShift.MinDays, e.prof.DateShift.MaxDays)
	}
	return l, true
}

// UID returns the UID a delivery writes for an input UID (unchanged for
// UIDs registered in PS3.6, and under Retain UIDs).
func (e *Engine) UID(uid string) string {
	uid = strings.Trim(uid, "\x00 ")
	if isStandardUID(uid) || e.prof.Options[ps315.RetainUIDs] {
		return uid
	}
	return e.pz.UID(uid)
}
