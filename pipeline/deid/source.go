package deid

import (
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Source is what identifies a planned file's input on the trusted side:
// the values a dataset request names studies by, and the patient. It
// never leaves the trusted side (indexes, audit records).
type Source struct {
	StudyInstanceUID  string
	AccessionNumber   string
	PatientID         string
	IssuerOfPatientID string
}

// Source returns the input's identifying values, as stored.
func (j *Job) Source() Source {
	return Source{
		StudyInstanceUID:  j.topString(tagStudyInstanceUID),
		AccessionNumber:   j.topString(0x00080050),
		PatientID:         j.topString(tagPatientID),
		IssuerOfPatientID: j.topString(0x00100021),
	}
}

// Modality is the input's Modality (0008,0060), a defined term the
// profiles keep.
func (j *Job) Modality() string { return j.topString(0x00080060) }

// OutputPatientID is the Patient ID (0010,0020) as the output holds it:
// the patient's pseudonym, or "" when the output has none.
func (j *Job) OutputPatientID() string {
	v, _ := j.outTopValue(tagPatientID)
	return v
}

// outTopValue is a top-level value as it will be written ("" when removed
// or not loaded); found tells whether the dataset has the element.
func (j *Job) outTopValue(t uint32) (v string, found bool) {
	for _, e := range j.f.Elements {
		if uint32(e.Tag) != t {
			continue
		}
		switch e.Op {
		case dicomraw.OpReplace:
			return strings.Trim(string(e.NewValue), "\x00 "), true
		case dicomraw.OpRemove:
			return "", true
		}
		if !e.Loaded {
			return "", true
		}
		return strings.Trim(string(e.Value), "\x00 "), true
	}
	return "", false
}
