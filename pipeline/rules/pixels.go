package rules

// PixelPolicy is how a profile treats text burned into pixels: the Clean
// Pixel Data option of PS3.15 (E.3.1) masks rectangles that rules name per
// kind of image, and screening holds back what could show text and was
// not masked.
type PixelPolicy struct {
	// Rules mask rectangles of the images they match (Clean Pixel Data).
	Rules []PixelRule
	// ScreenRisky holds back images of the classes that often carry text
	// in their pixels (ultrasound, secondary captures, images whose Image
	// Type says SECONDARY) when no rule matches them.
	ScreenRisky bool
	// AcceptUnmatched lets such images through unmasked: the profile's
	// author vouches for them.
	AcceptUnmatched bool
	// AcceptBurnedIn lets images that declare Burned In Annotation YES
	// through unmasked when no rule matches them.
	AcceptBurnedIn bool
	// Sources are the rule files, for reports.
	Sources []string
}

// PixelRule masks rectangles, in every frame, of the images it matches.
type PixelRule struct {
	Name   string
	Source string // the rule file and line
	Match  PixelMatch
	Rects  []PixelRect
}

// PixelMatch selects images; every field given must match. Text fields
// are lists of patterns, any of which may match (case-insensitive, '*'
// for any run of characters); Image Type is matched on its values joined
// by backslashes. Rows and Columns match exactly when not 0.
type PixelMatch struct {
	Modality              []string
	Manufacturer          []string
	ManufacturerModelName []string
	ImageType             []string
	SOPClassUID           []string
	Rows, Columns         int
}

// PixelRect is a rectangle of pixels: columns X to X+W-1, rows Y to Y+H-1.
type PixelRect struct {
	X, Y, W, H int
}

// TextPolicy is a profile's treatment of burned-in text found by reading
// the pixels (OCR), on by default in every profile.
type TextPolicy struct {
	// Mode: "identifying", "all-but-allowed" (default when empty), "all",
	// or "off" (the profile opts out; reports and the De-identification
	// Method say so).
	Mode string
	// Allow replaces the built-in device-annotation allow-list when not
	// nil; AllowMore adds words to whichever list applies.
	Allow, AllowMore []string
	// Source is the profile file that set the mode ("" when no file did).
	Source string
}

// Off reports that the profile opted out of reading pixels for text.
func (t TextPolicy) Off() bool { return t.Mode == "off" }

// EffectiveMode is the mode, with the default filled in.
func (t TextPolicy) EffectiveMode() string {
	if t.Mode == "" {
		return "all-but-allowed"
	}
	return t.Mode
}
