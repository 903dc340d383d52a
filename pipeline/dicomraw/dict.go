package dicomraw

import "github.com/suyashkumar/dicom/pkg/tag"

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
func Lookup(t Tag) (tag.Info, bool) {
	g, e := t.Group(), t.Element()
	info, err := tag.Find(tag.Tag{Group: g, Element: e})
	if err == nil {
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
