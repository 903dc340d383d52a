// Package rules is the model of a de-identification profile as the engine
// consumes it: which PS3.15 options are on, per-attribute overrides, and the
// formats of keyed pseudonyms. Profile files (YAML, see the top-level
// profiles package) are loaded into a Profile.
package rules

import "github.com/dicomdeid/dicomdeid/pipeline/ps315"

// Action is what a rule does to an attribute.
type Action string

// The actions a rule can name.
const (
	Remove    Action = "remove"    // PS3.15 X
	Empty     Action = "empty"     // PS3.15 Z: zero-length value (empty sequence for SQ)
	Dummy     Action = "dummy"     // PS3.15 D: a non-identifying value valid for the VR
	Keep      Action = "keep"      // PS3.15 K: unchanged (sequences: contents still processed)
	Clean     Action = "clean"     // PS3.15 C: identifying parts of text removed, dates shifted
	UID       Action = "uid"       // PS3.15 U: keyed 2.25 UID mapping
	Pseudonym Action = "pseudonym" // keyed pseudonym of the value (format from Pseudonyms.Other)
	Shift     Action = "shift"     // date/time shifted by the keyed per-patient offset
	Replace   Action = "replace"   // value from Rule.Value, a template (text with {hash:N} or {digits:N})
)

// Actions lists every valid Action, for validation and help texts.
var Actions = []Action{Remove, Empty, Dummy, Keep, Clean, UID, Pseudonym, Shift, Replace}

// Selector names the attribute a rule applies to, at any sequence depth.
// Exactly one of Tag or Private is set.
type Selector struct {
	// Tag is a public (even group) or private tag as group<<16|element.
	// For a private tag given without creator, it matches that exact tag.
	Tag uint32
	// Private selects a private element through its private creator, so the
	// rule follows the block wherever the file placed it.
	Private *PrivateSelector
}

// PrivateSelector names a private element by group, creator and the low
// byte of the element number (the "xx" in (gggg,xxee) is the block).
type PrivateSelector struct {
	Group   uint16
	Creator string
	Element uint8
}

// Rule overrides the action of the table for one attribute.
type Rule struct {
	Selector Selector
	Action   Action
	// Value is the template for Replace.
	Value string
	// Line is where the rule is defined in its profile file (0 if built in code).
	Line int
	// Source names the profile file that defined the rule.
	Source string
}

// Pseudonyms are the formats of keyed pseudonyms. A format is a template:
// {hash:N} is N characters (1..26) of base32 (A-Z2-7) from the keyed hash,
// {digits:N} N decimal digits (1..20) from it; other text is copied.
type Pseudonyms struct {
	PatientID   string // Patient ID (0010,0020)
	PatientName string // Patient's Name (0010,0010)
	Other       string // other values with a Pseudonym action
}

// DateShift bounds the keyed per-patient shift of the Modified Dates option:
// dates move back by a whole number of days in [MinDays, MaxDays].
type DateShift struct {
	MinDays int
	MaxDays int
}

// Profile is a fully resolved profile (extends already applied).
type Profile struct {
	Name        string
	Description string
	Options     [ps315.NumOptions]bool
	Rules       []Rule
	Pseudonyms  Pseudonyms
	DateShift   DateShift
	// Pixels is the profile's treatment of burned-in text; nil: images
	// are passed unmasked, except that those declaring Burned In
	// Annotation YES are held back.
	Pixels *PixelPolicy
	// Text is how burned-in text is found and masked (OCR); the zero
	// value is the default: on, all-but-allowed, the built-in allow-list.
	Text TextPolicy
	// Source is the file the profile came from ("builtin:NAME" for built-ins).
	Source string
}

// DefaultPseudonyms are the formats used where a profile sets none.
func DefaultPseudonyms() Pseudonyms {
	return Pseudonyms{PatientID: "ANON{hash:12}", PatientName: "ANON{hash:12}", Other: "X{hash:10}"}
}

// DefaultDateShift is the shift range used where a profile sets none.
func DefaultDateShift() DateShift { return DateShift{MinDays: 1, MaxDays: 3650} }
