package deid

import (
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
)

// iodRequired lists attributes that Table E.1-1 marks X (remove) although
// they are Type 1 or 2 wherever PS3.3 uses them, so removing them makes the
// output invalid for its IOD. The table's own rule (PS3.15 E.1.1: "the
// attribute shall be removed ... unless its presence is required by the IOD")
// lets a dummy or empty value stand in; dciodvfy is the judge, and the
// corpus test runs it on every output.
var iodRequired = map[uint32]ps315.Code{
	// Presentation State Identification Module (PS3.3 C.11.10): Type 1.
	0x00700082: ps315.CodeD, // Presentation Creation Date
	0x00700083: ps315.CodeD, // Presentation Creation Time
}

// iodBasic is the Basic Profile code of tag, corrected for IOD validity:
// for the attributes above, and for the Type 1C/2C conditions of the
// modules the engine changes, judged on the input (top level, depth 0).
func (j *Job) iodBasic(tag uint32, basic ps315.Code, depth int) ps315.Code {
	if c, ok := iodRequired[tag]; ok && basic == ps315.CodeX {
		return c
	}
	if depth == 0 && basic == ps315.CodeX && j.animal && (tag == tagResponsiblePerson || tag == tagResponsibleOrg) {
		// Patient Module (PS3.3 C.7.1.1): for an animal, Responsible
		// Person and Responsible Organization are Type 2C (present, may
		// be empty); X would remove what the IOD requires.
		return ps315.CodeZ
	}
	return basic
}

// Patient Module attributes with conditions on the patient being an animal.
const (
	tagSpeciesDescription  = 0x00102201
	tagSpeciesCodeSequence = 0x00102202
	tagResponsiblePerson   = 0x00102297
	tagResponsiblePersonRl = 0x00102298
	tagResponsibleOrg      = 0x00102299
)

// isAnimal reports a patient that is an animal: the Patient Module's
// condition (Patient Species Description or Patient Species Code
// Sequence present, Type 1C for animals).
func isAnimal(els []*dicomraw.Element) bool {
	for _, e := range els {
		switch {
		case e.Tag == tagSpeciesDescription && e.Loaded && len(trimValue(e.Value)) > 0,
			e.Tag == tagSpeciesCodeSequence && len(e.Items) > 0:
			return true
		}
	}
	return false
}

// fixConditions applies the conditions that depend on what the plan
// writes: Responsible Person Role is Type 1C, "required if Responsible
// Person is present and has a value", and may not be present otherwise,
// so it goes when Responsible Person is removed or emptied.
func (j *Job) fixConditions() {
	var role *dicomraw.Element
	valued := false
	for _, e := range j.f.Elements {
		switch e.Tag {
		case tagResponsiblePersonRl:
			role = e
		case tagResponsiblePerson:
			switch e.Op {
			case dicomraw.OpKeep:
				valued = e.Loaded && len(trimValue(e.Value)) > 0
			case dicomraw.OpReplace:
				valued = len(trimValue(e.NewValue)) > 0
			}
		}
	}
	if role != nil && role.Op != dicomraw.OpRemove && !valued {
		role.Op = dicomraw.OpRemove
		j.res.Counts.Removed++
		j.note("ResponsiblePersonRole", rules.Remove, "Type 1C: Responsible Person has no value")
	}
}

// typeOne lists attributes that are Type 1 (required, with a value) in
// modules of the IODs met most (PS3.3: the Image Pixel, Code Sequence, SR
// Document Content, Presentation State, Enhanced General Equipment,
// Segmentation and RT modules, and the identifying UIDs). A kept value of
// one of them that the verifier would refuse and that cannot be cleaned
// is not emptied (the output would be invalid): the file is quarantined.
// Any other public attribute may be empty (Type 2 and 3 may be).
var typeOne = map[uint32]bool{
	0x00080008: true, 0x00080016: true, 0x00080018: true, 0x00080023: true, 0x0008002A: true,
	0x00080033: true, 0x00080060: true, 0x00080064: true, 0x00080070: true, 0x00080100: true,
	0x00080102: true, 0x00080104: true, 0x00080105: true, 0x00080119: true, 0x00080120: true,
	0x00081090: true, 0x00081150: true, 0x00081155: true,
	0x00180050: true, 0x00181000: true, 0x00181020: true,
	0x0020000D: true, 0x0020000E: true, 0x00200011: true, 0x00200013: true, 0x00200032: true,
	0x00200037: true, 0x00200052: true, 0x00209157: true,
	0x00280002: true, 0x00280004: true, 0x00280006: true, 0x00280008: true, 0x00280010: true,
	0x00280011: true, 0x00280030: true, 0x00280100: true, 0x00280101: true, 0x00280102: true,
	0x00280103: true, 0x00280301: true, 0x00281050: true, 0x00281051: true, 0x00281052: true,
	0x00281053: true, 0x00281054: true, 0x00281300: true, 0x00282110: true,
	0x00102201: true,
	0x00420011: true, 0x00420012: true,
	0x0040A010: true, 0x0040A040: true, 0x0040A050: true, 0x0040A120: true, 0x0040A121: true,
	0x0040A122: true, 0x0040A123: true, 0x0040A124: true, 0x0040A160: true, 0x0040A30A: true,
	0x0040A491: true, 0x0040A493: true, 0x0040DB00: true,
	0x00620001: true, 0x00620004: true, 0x00620005: true, 0x00620008: true,
	0x00700002: true, 0x00700005: true, 0x00700006: true, 0x00700021: true, 0x00700022: true,
	0x00700023: true, 0x00700062: true, 0x00700080: true, 0x00700082: true, 0x00700083: true,
	0x00700100: true,
	0x30040002: true, 0x30040004: true, 0x30060002: true, 0x30060022: true, 0x300A0002: true,
}
