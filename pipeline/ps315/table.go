package ps315

import (
	"strings"
	"unicode"
)

// Code is a de-identification action code of PS3.15 Table E.1-1a, as written
// in the cells of Tables E.1-1 and E.3.4-1. Compound codes such as "X/Z/D"
// are kept whole because which alternative applies depends on the IOD (the
// attribute's Type), which only the caller knows.
type Code string

// The action codes of Table E.1-1a. CodeNone is an empty option cell: the
// option adds no requirement and the basic profile action applies.
const (
	CodeNone    Code = ""
	CodeX       Code = "X"      // remove
	CodeZ       Code = "Z"      // replace with zero length (or dummy) value
	CodeD       Code = "D"      // replace with non-zero length dummy value
	CodeK       Code = "K"      // keep (sequences are cleaned)
	CodeC       Code = "C"      // clean: replace with values of similar meaning
	CodeU       Code = "U"      // replace UID, consistently within the set
	CodeXZ      Code = "X/Z"    // X unless Z is required (Type 3 vs 2)
	CodeXD      Code = "X/D"    // X unless D is required (Type 3 vs 1)
	CodeXZD     Code = "X/Z/D"  // X unless Z or D is required (Type 3/2/1)
	CodeZD      Code = "Z/D"    // Z unless D is required (Type 2 vs 1)
	CodeXZUStar Code = "X/Z/U*" // X unless Z or U of contained UIDs is required
)

// Row is one row of Table E.1-1.
//
// Tag and Mask describe which attribute tags the row covers: a tag t is
// covered when t&Mask == Tag. Exact rows have Mask 0xFFFFFFFF. The repeating
// groups of PS3.5 section 7.6 are the even groups base+0x00 to base+0x1E, so
// their group mask is 0xFFE1 (bits 1-4 free, bit 0 must be 0): "50xx,xxxx" is
// Tag 0x50000000 Mask 0xFFE10000, and "60xx,3000" is Tag 0x60003000 Mask
// 0xFFE1FFFF. A plain nibble mask (0xFF00) would wrongly accept 0x5020-0x50FF
// and odd groups.
type Row struct {
	// Tag is the (group<<16 | element) value with wildcard bits zero.
	Tag uint32
	// Mask has a 1 for every bit of a candidate tag that must equal Tag.
	Mask uint32
	// TagText is the tag as the source writes it, e.g. "0010,0010",
	// "60xx,3000" or "gggg,eeee"; reports and profiles use this form.
	TagText string
	// Name is the attribute name, verbatim from the standard.
	Name string
	// Basic is the action of the Basic Profile.
	Basic Code
	// Option holds each option's action, CodeNone when the option adds
	// nothing for this attribute.
	Option [NumOptions]Code
	// Retired is the "Retd." column (retired in PS3.6).
	Retired bool
	// InStdCompIOD is the "In Std. Comp. IOD" column (used in a standard
	// composite IOD of PS3.3).
	InStdCompIOD bool
	// PrivateAll marks the "Private Attributes" row, written "(gggg,eeee)
	// where gggg is odd" in the standard. Its Tag and Mask are both
	// 0x00010000 so Matches accepts any odd group. Lookup never returns it
	// (see PrivateRow) because private attributes need the private creator
	// and Table E.3.10-1 to be handled, not just the tag.
	PrivateAll bool
}

// Matches reports whether the row covers tag. For the PrivateAll row this is
// true for every odd group, including the groups 0001-0007 and FFFF that
// PS3.5 section 7.8.1 forbids; callers wanting strict checks test those first.
func (r Row) Matches(tag uint32) bool { return tag&r.Mask == r.Tag }

// Wildcard reports whether the row covers more than one tag.
func (r Row) Wildcard() bool { return r.Mask != 0xFFFFFFFF }

// Rows returns all rows of Table E.1-1 in the order of the source (sorted by
// tag, wildcard digits as 0, the Private Attributes row last). The slice is a
// copy; callers may modify it.
func Rows() []Row {
	out := make([]Row, len(rows))
	copy(out, rows[:])
	return out
}

// Lookup returns the row of Table E.1-1 for a standard attribute tag: the
// exact row if there is one, else the row of a repeating group (50xx,xxxx,
// 60xx,3000 or 60xx,4000). Tags in odd groups are private and never found;
// use PrivateRow and LookupSafePrivate for them.
func Lookup(tag uint32) (Row, bool) {
	if tag&0x00010000 != 0 {
		return Row{}, false
	}
	if i, ok := exactIndex[tag]; ok {
		return rows[i], true
	}
	// Only groups 50xx and 60xx can hit a wildcard row, so the common case
	// costs one comparison after the map miss.
	if g := tag >> 24; g == 0x50 || g == 0x60 {
		for _, i := range wildcardIndex {
			if rows[i].Matches(tag) {
				return rows[i], true
			}
		}
	}
	return Row{}, false
}

// PrivateRow returns the "Private Attributes" row (gggg,eeee where gggg is
// odd): basic action X, Retain Safe Private Option C.
func PrivateRow() Row { return rows[privateIndex] }

// SafePrivate is one row of Table E.3.10-1: a private attribute that the
// Retain Safe Private Option may keep.
type SafePrivate struct {
	// Group is the odd group number.
	Group uint16
	// Creator is the private creator, verbatim from the standard.
	Creator string
	// Element is the low byte of the element number; the high byte is the
	// private block ("xx") the creator reserved in the instance.
	Element uint8
	// VR is the value representation; empty for 5 "SIEMENS Ultrasound
	// SC2000" rows where the standard leaves it empty.
	VR string
	// VM is the value multiplicity, e.g. "1" or "1-n".
	VM string
	// Meaning is the "Meaning" column.
	Meaning string
}

// SafePrivates returns all rows of Table E.3.10-1 in source order. The slice
// is a copy.
func SafePrivates() []SafePrivate {
	out := make([]SafePrivate, len(safePrivates))
	copy(out, safePrivates[:])
	return out
}

// safePrivateKey indexes Table E.3.10-1; creator is NormalizeCreator'd.
type safePrivateKey struct {
	group   uint16
	creator string
	element uint8
}

// NormalizeCreator returns the form of a private creator string used to
// match Table E.3.10-1: leading and trailing white space and NUL bytes
// removed, then upper-cased.
//
// The standard compares private creators as exact strings, but real files
// differ from the table in case ("PHILIPS IMAGING DD 001" for "Philips
// Imaging DD 001"), carry the LO padding space (odd-length values are padded
// to even length with a space, e.g. "GEMS_ACQU_01 ") or, from some writers, a
// NUL. Matching exactly would make the Retain Safe Private Option drop
// attributes the standard calls safe; no two creators of the table collide
// after normalization (checked by the generator).
func NormalizeCreator(creator string) string {
	return strings.ToUpper(strings.TrimFunc(creator, func(r rune) bool {
		return r == 0 || unicode.IsSpace(r)
	}))
}

// LookupSafePrivate returns the Table E.3.10-1 row for the private attribute
// in group whose block is reserved by creator and whose element number has
// low byte element. Creators are compared after NormalizeCreator.
func LookupSafePrivate(group uint16, creator string, element uint8) (SafePrivate, bool) {
	i, ok := safePrivateIndex[safePrivateKey{group, NormalizeCreator(creator), element}]
	if !ok {
		return SafePrivate{}, false
	}
	return safePrivates[i], true
}

// ContentCode is one row of Table E.3.4-1: a content item concept name of a
// standard SR template and its action under the Clean Structured Content
// Option.
type ContentCode struct {
	// Meaning, Value and Scheme are the Code Meaning, Code Value and Coding
	// Scheme Designator of the concept name.
	Meaning, Value, Scheme string
	// ValueType is the content item's Value Type, e.g. "TEXT" or "PNAME".
	ValueType string
	// Retired is the "Retd." column.
	Retired bool
	// InStdTemplate is the "In Std. Template" column.
	InStdTemplate bool
	// Basic is the action of the Basic Profile.
	Basic Code
	// Option holds the option actions. Table E.3.4-1 has columns only for
	// Retain UIDs, Retain Device Identity, Retain Institution Identity,
	// Retain Patient Characteristics, Retain Longitudinal Full Dates,
	// Retain Longitudinal Modified Dates and Clean Descriptors; the other
	// entries are always CodeNone.
	Option [NumOptions]Code
}

// ContentCodes returns all rows of Table E.3.4-1 in source order. The slice
// is a copy.
func ContentCodes() []ContentCode {
	out := make([]ContentCode, len(contentCodes))
	copy(out, contentCodes[:])
	return out
}

// contentKey indexes Table E.3.4-1; valueType is "" in contentIndex.
type contentKey struct {
	scheme, value, valueType string
}

// LookupContentCode returns the Table E.3.4-1 row for the concept name
// (scheme, value). Leading and trailing spaces are ignored because SH and LO
// values are space padded.
//
// Seven concept names appear more than once, once per value type, and the
// rows may differ (e.g. DCM 121112 "Source of Measurement" is D for IMAGE but
// X for WAVEFORM). For those, LookupContentCode returns the first row in
// table order; use LookupContentCodeType when the value type is known.
func LookupContentCode(scheme, value string) (ContentCode, bool) {
	i, ok := contentIndex[contentKey{strings.TrimSpace(scheme), strings.TrimSpace(value), ""}]
	if !ok {
		return ContentCode{}, false
	}
	return contentCodes[i], true
}

// LookupContentCodeType is LookupContentCode for a concept name used with a
// given value type (e.g. "TEXT", "CODE"), which identifies a row uniquely.
func LookupContentCodeType(scheme, value, valueType string) (ContentCode, bool) {
	k := contentKey{strings.TrimSpace(scheme), strings.TrimSpace(value), strings.TrimSpace(valueType)}
	i, ok := contentTypeIndex[k]
	if !ok {
		return ContentCode{}, false
	}
	return contentCodes[i], true
}

// IsKnownCreator reports whether Table E.3.10-1 names creator for group.
// Such a creator is a vendor's published block name and may be shown in
// reports; any other creator string came from the file and may hold
// anything, so it is not shown.
func IsKnownCreator(group uint16, creator string) bool {
	return knownCreators[safePrivateKey{group, NormalizeCreator(creator), 0}]
}
