package dicomraw

import (
	"sync"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// DictVR is the VR the data dictionary gives a public tag: the first of its
// VRs for multi-VR tags (US or SS, OB or OW), "OW" for Pixel Data and
// Overlay Data as implicit VR requires, "UL" for group lengths, "LO" for
// private creators and "" when the tag is unknown or private.
func DictVR(t Tag) string {
	if t.Element() == 0x0000 {
		return "UL"
	}
	if t.IsPrivateCreator() {
		return "LO"
	}
	if t.IsPrivate() {
		return ""
	}
	if t == TagPixelData {
		return "OW"
	}
	info, ok := Lookup(t)
	if !ok || len(info.VRs) == 0 {
		return ""
	}
	vr := info.VRs[0]
	if len(vr) != 2 {
		return "UN"
	}
	return vr
}

// Lookup finds a public tag in the PS3.6 data dictionary, folding the
// repeating groups (50xx curves, 60xx overlays, 7Fxx) onto their base group.
// Every element of every file is looked up several times (its VR checked,
// its name, its action): the tags the dictionary lists are answered from
// an index, anything else as lookupDict answers it.
func Lookup(t Tag) (tag.Info, bool) {
	if t.Group()&1 == 1 {
		return tag.Info{}, false // private: neither dictionary lists one (TestLookupIndex)
	}
	d := dictIndex()
	if i, ok := d.at[t]; ok {
		return d.infos[i], true
	}
	return lookupDict(t)
}

// lookupDict is Lookup without the index: github.com/suyashkumar/dicom's
// dictionary, then the supplement, then the base group of a repeating one.
func lookupDict(t Tag) (tag.Info, bool) {
	g, e := t.Group(), t.Element()
	info, err := tag.Find(tag.Tag{Group: g, Element: e})
	if err == nil {
		return info, true
	}
	if info, ok := supplement[t]; ok {
		return info, true
	}
	switch {
	case g >= 0x5000 && g <= 0x50FF && g&1 == 0:
		g = 0x5000
	case g >= 0x6000 && g <= 0x60FF && g&1 == 0:
		g = 0x6000
	case g >= 0x7F00 && g <= 0x7FFF && g&1 == 0:
		g = 0x7F00
	default:
		return tag.Info{}, false
	}
	info, err = tag.Find(tag.Tag{Group: g, Element: e})
	return info, err == nil
}

// dictionary is Lookup's index: each tag the dictionary lists (dictTags)
// and each of the supplement, with what lookupDict answers for it.
type dictionary struct {
	at    map[Tag]int32
	infos []tag.Info
}

// dictIndex is built once, on first use, and never changed: tag.Find
// returns a copy of its entry, and nothing here adds to its map.
var dictIndex = sync.OnceValue(func() *dictionary {
	d := &dictionary{at: make(map[Tag]int32, len(dictTags)+len(supplement))}
	add := func(t Tag) {
		if _, ok := d.at[t]; ok {
			return
		}
		if info, ok := lookupDict(t); ok {
			d.at[t] = int32(len(d.infos))
			d.infos = append(d.infos, info)
		}
	}
	for _, t := range dictTags {
		add(Tag(t))
	}
	for t := range supplement {
		add(t)
	}
	return d
})

// VRContradicts reports that an explicitly written VR is none of the VRs
// the data dictionary gives a known public tag. Such a value cannot be
// interpreted safely: read with the tag's meaning its bytes may be
// something else, read with the written VR it may hide what the tag's
// meaning would have removed (a Specific Character Set written as SQ
// carries items). UN, private tags, group lengths and tags the dictionary
// does not know are never contradictions.
func VRContradicts(t Tag, vr string) bool {
	if vr == "UN" || vr == "" || t.IsPrivate() || t.Element() == 0x0000 || t.Group() == 0xFFFE {
		return false
	}
	info, ok := Lookup(t)
	if !ok || len(info.VRs) == 0 {
		return false
	}
	for _, v := range info.VRs {
		if v == vr || len(v) != 2 {
			return false
		}
	}
	return true
}

// supplement completes the dictionary of github.com/suyashkumar/dicom
// (generated from an older PS3.6) with the attributes that PS3.15 Table
// E.1-1 (2024c) acts on and that it lacks. Every attribute the profile
// decides on must be known here: the VR a file writes is only checked
// against the dictionary (VRContradicts), implicit VR values are only
// read as what they are through it (DictVR), and a value the profile keeps
// but whose VR nothing checks would be kept uninterpreted (an "Ethnic Group
// Code Sequence" written as AT bytes). TestDictionaryCoversTableE11 keeps
// this list complete.
var supplement = map[Tag]tag.Info{
	// PS3.7 command group, listed in Table E.1-1.
	0x00001000: supplementInfo(0x0000, 0x1000, "UI", "Affected SOP Instance UID", "AffectedSOPInstanceUID"),
	0x00001001: supplementInfo(0x0000, 0x1001, "UI", "Requested SOP Instance UID", "RequestedSOPInstanceUID"),
	// PS3.6 2024c.
	0x00102161: supplementInfo(0x0010, 0x2161, "SQ", "Ethnic Group Code Sequence", "EthnicGroupCodeSequence"),
	0x300A0054: supplementInfo(0x300A, 0x0054, "UI", "Table Top Position Alignment UID", "TableTopPositionAlignmentUID"),
}

func supplementInfo(g, e uint16, vr, name, keyword string) tag.Info {
	return tag.Info{Tag: tag.Tag{Group: g, Element: e}, VRs: []string{vr}, Name: name, Keyword: keyword, VM: "1"}
}
