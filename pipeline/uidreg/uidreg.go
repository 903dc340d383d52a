// Package uidreg knows the UIDs registered by the DICOM Standard in PS3.6
// Table A-1 (transfer syntaxes, SOP classes, meta SOP classes, well-known SOP
// instances, coding schemes, application context names, LDAP OIDs, mapping
// resources, ...) and Table A-2 (well-known frames of reference).
//
// De-identification uses it to tell UIDs that name a part of the standard,
// which must be kept, from instance UIDs, which the U action replaces. The
// registry is generated from data/uids.csv by `go generate`.
package uidreg

import "strings"

// Info describes one registered UID.
type Info struct {
	// UID is the UID value, e.g. "1.2.840.10008.1.2.1".
	UID string
	// Name is the UID Name of PS3.6, e.g. "Explicit VR Little Endian".
	Name string
	// Type is the UID Type of PS3.6, e.g. TypeTransferSyntax.
	Type string
}

// Common values of Info.Type, as PS3.6 writes them.
const (
	TypeTransferSyntax          = "Transfer Syntax"
	TypeSOPClass                = "SOP Class"
	TypeMetaSOPClass            = "Meta SOP Class"
	TypeWellKnownSOPInstance    = "Well-known SOP Instance"
	TypeWellKnownFrameOfRef     = "Well-known frame of reference"
	TypeCodingScheme            = "Coding Scheme"
	TypeApplicationContextName  = "Application Context Name"
	TypeLDAPOID                 = "LDAP OID"
	TypeServiceClass            = "Service Class"
	TypeMappingResource         = "Mapping Resource"
	TypeApplicationHostingModel = "Application Hosting Model"
)

// DICOMRoot is the UID root of the DICOM Standard. Every UID under it is
// assigned by the standard, registered here or not (e.g. the Context Group
// UIDs of PS3.6 Table A-3, which this registry lacks), so it is never an
// instance UID of a real patient.
const DICOMRoot = "1.2.840.10008."

// clean drops the padding a UI value may carry: PS3.5 pads UIDs to even
// length with a NUL byte, and some writers use a space instead.
func clean(uid string) string { return strings.TrimRight(uid, "\x00 ") }

// Lookup returns the registry entry of uid. Trailing NUL or space padding of
// the raw element value is ignored.
func Lookup(uid string) (Info, bool) {
	i, ok := index[clean(uid)]
	if !ok {
		return Info{}, false
	}
	return infos[i], true
}

// IsRegistered reports whether uid is registered in PS3.6 Table
// (as known to this package). Padding is ignored as in Lookup.
func IsRegistered(uid string) bool {
	_, ok := index[clean(uid)]
	return ok
}

// IsDICOMRoot reports whether uid lies under the DICOM Standard's root
// 1.2.840.10008, whether or not this package registers it. A value with
// characters no UID may have (letters, spaces) is not one of the
// standard's, whatever it starts with: callers keep such UIDs as they are,
// so a value dressed up as one must not pass.
func IsDICOMRoot(uid string) bool {
	u := clean(uid)
	if !strings.HasPrefix(u, DICOMRoot) {
		return false
	}
	for i := len(DICOMRoot); i < len(u); i++ {
		if c := u[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// All returns every registered UID in source order (that of PS3.6). The
// slice is a copy.
func All() []Info {
	out := make([]Info, len(infos))
	copy(out, infos[:])
	return out
}
