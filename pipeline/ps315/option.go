// Package ps315 holds the tables of DICOM PS3.15 Annex E (edition 2024c) that
// drive de-identification: Table E.1-1 (attributes and their actions per
// option), Table E.3.10-1 (safe private attributes) and Table E.3.4-1
// (content items for the Clean Structured Content option).
//
// The tables are generated from the CSV files in data/ by `go generate`.
package ps315

// Edition is the edition of PS3.15 the generated tables come from.
const Edition = "2024c"

// Option is one of the ten Application Level Confidentiality Options of
// PS3.15 Table E.1-1 that this package models as columns of the table.
type Option int

// The options, in the column order of Table E.1-1.
const (
	RetainSafePrivate Option = iota
	RetainUIDs
	RetainDeviceIdentity
	RetainInstitutionIdentity
	RetainPatientCharacteristics
	RetainLongFullDates
	RetainLongModifiedDates
	CleanDescriptors
	CleanStructuredContent
	CleanGraphics
	// NumOptions is the number of options.
	NumOptions
)

var optionKeys = [NumOptions]string{
	"retain_safe_private",
	"retain_uids",
	"retain_device_identity",
	"retain_institution_identity",
	"retain_patient_characteristics",
	"retain_long_full_dates",
	"retain_long_modified_dates",
	"clean_descriptors",
	"clean_structured_content",
	"clean_graphics",
}

var optionNames = [NumOptions]string{
	"Retain Safe Private Option",
	"Retain UIDs Option",
	"Retain Device Identity Option",
	"Retain Institution Identity Option",
	"Retain Patient Characteristics Option",
	"Retain Longitudinal Temporal Information Full Dates Option",
	"Retain Longitudinal Temporal Information Modified Dates Option",
	"Clean Descriptors Option",
	"Clean Structured Content Option",
	"Clean Graphics Option",
}

// CID 7050 code values of the options (De-identification Method Code Sequence).
var optionCodes = [NumOptions]string{
	"113111", "113110", "113109", "113112", "113108",
	"113106", "113107", "113105", "113104", "113103",
}

// Key is the snake_case name used in profile files and reports, which is also
// the column name of the CSV source.
func (o Option) Key() string { return optionKeys[o] }

// Name is the option's name as PS3.16 CID 7050 spells it (its Code Meaning).
func (o Option) Name() string { return optionNames[o] }

// Code is the option's CID 7050 code value (coding scheme DCM).
func (o Option) Code() string { return optionCodes[o] }

// OptionByKey returns the option whose Key is k.
func OptionByKey(k string) (Option, bool) {
	for i, s := range optionKeys {
		if s == k {
			return Option(i), true
		}
	}
	return 0, false
}

// BasicProfileCode is the CID 7050 code of the Basic Application Level
// Confidentiality Profile itself.
const BasicProfileCode = "113100"

// BasicProfileName is its Code Meaning.
const BasicProfileName = "Basic Application Confidentiality Profile"
