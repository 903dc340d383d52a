package deid

import "github.com/dicomdeid/dicomdeid/pipeline/ps315"

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

// iodBasic is the Basic Profile code of tag, corrected for IOD validity.
func iodBasic(tag uint32, basic ps315.Code) ps315.Code {
	if c, ok := iodRequired[tag]; ok && basic == ps315.CodeX {
		return c
	}
	return basic
}
