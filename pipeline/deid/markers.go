package deid

import (
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

// addMarkers records what was done (PS3.15 E.1.1, PS3.3 SOP Common):
// Patient Identity Removed, De-identification Method and its Code
// Sequence (CID 7050), and Longitudinal Temporal Information Modified.
func (j *Job) addMarkers() {
	p := j.eng.prof
	codes := []*dicomraw.Item{codeItem(ps315.BasicProfileCode, ps315.BasicProfileName)}
	for o := ps315.Option(0); o < ps315.NumOptions; o++ {
		if p.Options[o] {
			codes = append(codes, codeItem(o.Code(), o.Name()))
		}
	}
	if j.pixelsMasked || j.pixelsExamined {
		codes = append(codes, codeItem(CleanPixelDataCode, cleanPixelDataMeaning))
		j.setTop(tagBurnedInAnnotation, "CS", "NO")
	}
	temporal := "REMOVED"
	switch {
	case p.Options[ps315.RetainLongFullDates]:
		temporal = "UNMODIFIED"
	case j.shifted:
		temporal = "MODIFIED"
	}
	j.f.Insert = append(j.f.Insert,
		newElement(tagPatientIdentityRem, "CS", "YES"),
		newElement(tagDeidMethod, "LO", j.eng.method),
		&dicomraw.Element{Tag: tagDeidMethodCodeSeq, VR: "SQ", Length: dicomraw.Undefined, Items: codes},
		newElement(tagLongTemporalModified, "CS", temporal),
	)
}

func newElement(t uint32, vr, value string) *dicomraw.Element {
	return &dicomraw.Element{Tag: dicomraw.Tag(t), VR: vr, Op: dicomraw.OpReplace, NewValue: []byte(value)}
}

func codeItem(value, meaning string) *dicomraw.Item {
	return &dicomraw.Item{Length: dicomraw.Undefined, Insert: []*dicomraw.Element{
		newElement(tagCodeValue, "SH", value),
		newElement(tagCodingSchemeDesig, "SH", "DCM"),
		newElement(tagCodeMeaning, "LO", meaning),
	}}
}

// setTopBinary writes a top-level binary value (US in the dataset's
// little endian: only encapsulated syntaxes call it).
func (j *Job) setTopBinary(t uint32, vr string, value []byte) {
	for _, e := range j.f.Elements {
		if uint32(e.Tag) == t {
			e.Op, e.NewVR, e.NewValue = dicomraw.OpReplace, vr, value
			return
		}
	}
	j.f.Insert = append(j.f.Insert, &dicomraw.Element{Tag: dicomraw.Tag(t), VR: vr, Op: dicomraw.OpReplace, NewValue: value})
}

// setTop writes a top-level value: replacing the element, or inserting it.
func (j *Job) setTop(t uint32, vr, value string) {
	for _, e := range j.f.Elements {
		if uint32(e.Tag) == t {
			e.Op, e.NewVR, e.NewValue = dicomraw.OpReplace, vr, []byte(value)
			return
		}
	}
	j.f.Insert = append(j.f.Insert, newElement(t, vr, value))
}
