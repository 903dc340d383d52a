// Package synth makes small synthetic DICOM studies with fake identifiers
// in the places real ones sit, so the service can be shown (and tested)
// without anybody's data.
package synth

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"sort"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// Patient is a made-up patient.
type Patient struct {
	Name, ID, BirthDate, Sex string
	Institution, Referring   string
	Accession, StudyDate     string
}

// DefaultPatient is the demo's fake patient.
func DefaultPatient() Patient {
	return Patient{Name: "Kowalska^Zofia^Maria", ID: "MRN-4471-2093", BirthDate: "19580312", Sex: "F",
		Institution: "St. Example General Hospital", Referring: "Okafor^Chidi^^Dr.",
		Accession: "ACC20260311", StudyDate: "20260311"}
}

// Instance is one generated file.
type Instance struct {
	Data           []byte
	SOPInstanceUID string
}

type el struct {
	tag uint32
	vr  string
	val []byte
}

func str(tag uint32, vr, v string) el { return el{tag, vr, []byte(v)} }

func us(tag uint32, v uint16) el {
	return el{tag, "US", binary.LittleEndian.AppendUint16(nil, v)}
}

// NewUID is a random UID under the 2.25 root.
func NewUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "2.25." + new(big.Int).SetBytes(b).String()
}

// CTSeries makes n CT slices of one series of one study of p, 64x64
// pixels each, explicit VR little endian.
func CTSeries(p Patient, n int) ([]Instance, error) {
	study, series, frame := NewUID(), NewUID(), NewUID()
	var out []Instance
	for i := 1; i <= n; i++ {
		sop := NewUID()
		pix := make([]byte, 64*64*2)
		for y := 0; y < 64; y++ {
			for x := 0; x < 64; x++ {
				binary.LittleEndian.PutUint16(pix[2*(y*64+x):], uint16((x*y+i*37)%4096))
			}
		}
		els := []el{
			str(0x00080005, "CS", "ISO_IR 100"),
			str(0x00080008, "CS", `ORIGINAL\PRIMARY\AXIAL`),
			str(0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.2"),
			str(0x00080018, "UI", sop),
			str(0x00080020, "DA", p.StudyDate),
			str(0x00080030, "TM", "093000"),
			str(0x00080050, "SH", p.Accession),
			str(0x00080060, "CS", "CT"),
			str(0x00080070, "LO", "Example Medical Systems"),
			str(0x00080080, "LO", p.Institution),
			str(0x00080090, "PN", p.Referring),
			str(0x00081030, "LO", "CT CHEST "+lastName(p.Name)),
			str(0x0008103E, "LO", "AXIAL 5mm"),
			str(0x00100010, "PN", p.Name),
			str(0x00100020, "LO", p.ID),
			str(0x00100030, "DA", p.BirthDate),
			str(0x00100040, "CS", p.Sex),
			str(0x00180050, "DS", "5"),
			str(0x00180060, "DS", "120"),
			str(0x0020000D, "UI", study),
			str(0x0020000E, "UI", series),
			str(0x00200010, "SH", "4471"),
			str(0x00200011, "IS", "1"),
			str(0x00200013, "IS", fmt.Sprint(i)),
			str(0x00200032, "DS", fmt.Sprintf(`-160\-160\%d`, -5*i)),
			str(0x00200037, "DS", `1\0\0\0\1\0`),
			str(0x00200052, "UI", frame),
			str(0x00201040, "LO", ""),
			str(0x00204000, "LT", "Patient "+lastName(p.Name)+" ("+p.ID+") scanned after contrast"),
			us(0x00280002, 1),
			str(0x00280004, "CS", "MONOCHROME2"),
			us(0x00280010, 64),
			us(0x00280011, 64),
			str(0x00280030, "DS", `0.5\0.5`),
			us(0x00280100, 16),
			us(0x00280101, 12),
			us(0x00280102, 11),
			us(0x00280103, 0),
			str(0x00281050, "DS", "40"),
			str(0x00281051, "DS", "400"),
			str(0x00281052, "DS", "-1024"),
			str(0x00281053, "DS", "1"),
			{0x7FE00010, "OW", pix},
		}
		data, err := encode(els, sop)
		if err != nil {
			return nil, err
		}
		out = append(out, Instance{Data: data, SOPInstanceUID: sop})
	}
	return out, nil
}

func lastName(pn string) string {
	if i := bytes.IndexByte([]byte(pn), '^'); i >= 0 {
		return pn[:i]
	}
	return pn
}

func encode(els []el, sop string) ([]byte, error) {
	sort.Slice(els, func(a, b int) bool { return els[a].tag < els[b].tag })
	var body []byte
	var err error
	enc := dicomraw.Encoding{}
	for _, e := range els {
		v := dicomraw.Pad(e.vr, e.val)
		body, err = dicomraw.AppendHeader(body, dicomraw.Tag(e.tag), e.vr, uint32(len(v)), enc)
		if err != nil {
			return nil, err
		}
		body = append(body, v...)
	}
	f := &dicomraw.File{Syntax: dicomraw.Syntax{UID: dicomraw.ExplicitVRLittleEndian}, Body: bytes.NewReader(body),
		Elements: []*dicomraw.Element{{Tag: 0x00080005, Offset: 0, End: int64(len(body))}}}
	var out bytes.Buffer
	err = dicomraw.Write(&out, f, []dicomraw.MetaElement{
		{Tag: 0x00020001, VR: "OB", Value: []byte{0, 1}},
		{Tag: 0x00020002, VR: "UI", Value: []byte("1.2.840.10008.5.1.4.1.1.2")},
		{Tag: 0x00020003, VR: "UI", Value: []byte(sop)},
		{Tag: 0x00020010, VR: "UI", Value: []byte(dicomraw.ExplicitVRLittleEndian)},
		{Tag: 0x00020012, VR: "UI", Value: []byte("2.25.40924834803557629630366606533845879675")},
		{Tag: 0x00020013, VR: "SH", Value: []byte("DICOMDEID_SYNTH")},
	})
	return out.Bytes(), err
}
