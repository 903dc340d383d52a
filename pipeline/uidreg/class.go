package uidreg

// ClassAttribute reports whether the UI attribute tag (group<<16 | element)
// holds UIDs that name a kind of thing rather than one instance of it: a
// SOP class, a transfer syntax, a coding scheme, a context group, a mapping
// resource, the creator of private File Meta information. Such a UID is
// the same for every object of its kind, whoever the patient, so
// de-identification keeps it as it is, registered in PS3.6 or private to a
// vendor (a private SOP Class UID mapped to a new UID leaves an object of
// no known class). Instance UIDs are every other UI attribute.
//
// Attributes that PS3.15 Table E.1-1 lists with an action of its own
// (Manufacturer's Device Class UID, the retired Template Extension UIDs:
// U) are not here; the table decides those.
func ClassAttribute(tag uint32) bool { return classAttributes[tag] }

// ClassAttributes lists the tags ClassAttribute accepts, in tag order.
func ClassAttributes() []uint32 {
	out := make([]uint32, 0, len(classAttributeList))
	for _, a := range classAttributeList {
		out = append(out, a.tag)
	}
	return out
}

var classAttributeList = []struct {
	tag  uint32
	name string
}{
	{0x00020002, "Media Storage SOP Class UID"},
	{0x00020010, "Transfer Syntax UID"},
	{0x00020012, "Implementation Class UID"},
	{0x00020032, "RTV Communication SOP Class UID"},
	{0x00020100, "Private Information Creator UID"},
	{0x00041510, "Referenced SOP Class UID in File"},
	{0x00041512, "Referenced Transfer Syntax UID in File"},
	{0x0004151A, "Referenced Related General SOP Class UID in File"},
	{0x00080016, "SOP Class UID"},
	{0x0008001A, "Related General SOP Class UID"},
	{0x0008001B, "Original Specialized SOP Class UID"},
	{0x00080062, "SOP Classes in Study"},
	{0x0008010C, "Coding Scheme UID"},
	{0x0008010D, "Context Group Extension Creator UID"},
	{0x00080117, "Context UID"},
	{0x00080118, "Mapping Resource UID"},
	{0x0008040E, "Stored Instance Transfer Syntax UID"},
	{0x00081150, "Referenced SOP Class UID"},
	{0x0008115A, "SOP Classes Supported"},
	{0x00083002, "Available Transfer Syntax UID"},
	{0x00340003, "Flow Transfer Syntax UID"},
	{0x04000010, "MAC Calculation Transfer Syntax UID"},
	{0x04000510, "Encrypted Content Transfer Syntax UID"},
	{0x30100052, "Pertinent SOP Classes in Study"},
	{0x30100053, "Pertinent SOP Classes in Series"},
}

var classAttributes = func() map[uint32]bool {
	m := make(map[uint32]bool, len(classAttributeList))
	for _, a := range classAttributeList {
		m[a.tag] = true
	}
	return m
}()
