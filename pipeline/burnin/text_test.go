package burnin

import (
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"

	"github.com/dicomdeid/dicomdeid/pipeline/ocr"
)

var testAllow = NewAllow([]string{"L", "R", "cm", "Hz", "TIS", "MI", "Gain", "Depth", "FR", "DR", "P", "Zoom", "LIVER", "ABD",
	"2D", "THI", "RT", "KIDNEY", "LONG", "TRANS", "AP", "PA", "LAO", "CRA", "%"})

func TestAllowed(t *testing.T) {
	cases := []struct {
		text string
		want bool
	}{
		{"L", true}, {"R", true}, {"TIS0.4", true}, {"MI 1.1", true}, {"5 cm", true}, {"Gain 52", true},
		{"FR 28Hz", true}, {"Depth 16cm", true}, {"C5-1", true}, {"P 85%", true}, {"Zoom 1.4", true},
		{"RT KIDNEY", true}, {"LAO 30", true}, {"CRA 15", true}, {"2D", true}, {"L12-5", true},
		{"", false}, {"Castellanos", false}, {"DOB 05/11/1943", false}, {"ID: 217404304", false},
		{"Gain 5200", false}, {"L Wojciechowska", false}, {"2024", false}, {"ACC A2430099", false},
	}
	for _, c := range cases {
		if got := testAllow.Allowed(c.text); got != c.want {
			t.Errorf("Allowed(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestShape(t *testing.T) {
	cases := []struct{ text, want string }{
		{"DOB 05/11/1943", "date"}, {"1943-05-11", "date"}, {"Born 11.05.1943", "date"}, {"DOB:11-May-1943", "date"},
		{"27-Aug-2024 14:05:33", "date"}, {"2024/08/27", "date"}, {"14:05", "time"}, {"ID: 217404304", "id"},
		{"MRN 217404304", "id"}, {"Acc#A2430099", "id"}, {"CASTELLANOS, WILHELMINA", "name"},
		{"Castellanos^Wilhelmina", "name"}, {"Name: X", "label"},
		{"Gain 52", ""}, {"TIS0.4", ""}, {"5 cm", ""}, {"LIVER", ""}, {"C5-1", ""}, {"FR 28Hz", ""},
	}
	for _, c := range cases {
		if got := Shape(c.text); got != c.want {
			t.Errorf("Shape(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

// The file's identifiers are found in what OCR reads, misreadings
// included; other text is not taken for them.
func TestIdentifierMatch(t *testing.T) {
	ids := prepare([]Identifier{{Text: "Castellanos^Wilhelmina"}, {Text: "217404304"}, {Text: "19430511", Date: true},
		{Text: "A2430099"}, {Text: "Klinikum Bad Ueberkingen"}, {Text: "Brzeczyszczyk^Grzegorz"}, {Text: "Philips Healthcare"}, {Text: "Hopital Sainte-Eleonore"}, {Text: "Ballyhealy Imaging Centre"}})
	cases := []struct {
		text string
		want bool
	}{
		{"CASTELLANOS, WILHELMINA", true}, {"Wilhelmina Castellanos", true}, {"Casteilanos", true}, // l read as i
		{"ID: 2174O4304", true}, {"PID:217404304", true}, {"DOB 05/11/1943", true}, {"Born 11.05.1943", true},
		{"DOB:11-May-1943", true}, {"1943-05-11", true}, {"ACC A243OO99", true}, {"Klinikum Bad Ueberkingen", true},
		{"UEBERKINGEN", true}, {"BRZECZYSZC", true}, {"ZYSZCZYK, GRZ", true}, {"BRZE", false}, {"Gain 52", false}, {"LIVER", false}, {"DOB 05/12/1944", false}, {"217", false},
		// A generic word of the file's own institution read alone is its
		// institution's line (the rest may lie over a dark image).
		{"Hopita", true}, {"GE HealthCare", true}, {"KLINIKUM", true}, {"PHILIPS HEALTHCARE", true}, {"Philips", true},
	}
	for _, c := range cases {
		if got := ids.match(c.text); got != c.want {
			t.Errorf("match(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	// A finding of the check needs more than a generic word: left alone
	// (or misread from a toolbar) it names no one.
	for _, c := range []struct {
		text string
		want bool
	}{{"Hopita", false}, {"tiene 4c ent lee", false}, {"PHILIPS HEALTHCARE", true}, {"Hopital Sainte-Eleonore", true}, {"SAINTE-ELEONORE", true}} {
		if got := ids.identifies(c.text); got != c.want {
			t.Errorf("identifies(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	// Among values that may not be the file's (an audit against every
	// original's), a generic word alone is another vendor's logo: no
	// identifier; the whole value and its distinctive words still are.
	ids.unsure = true
	for _, c := range []struct {
		text string
		want bool
	}{{"GE HealthCare", false}, {"KLINIKUM", false}, {"Hopita", false}, {"PHILIPS HEALTHCARE", true}, {"Philips", true}, {"UEBERKINGEN", true}} {
		if got := ids.match(c.text); got != c.want {
			t.Errorf("unsure: match(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	// A short value that may not be the file's is read exactly: within
	// an edit it is in any line of text. The file's own keeps its edit.
	short := prepare([]Identifier{{Text: "Schema"}, {Text: "Castellanos"}})
	for _, c := range []struct {
		text       string
		own, audit bool
	}{{"Sc HealthCare", true, false}, {"SCHEMA", true, true}, {"Casteilanos", true, true}} {
		short.unsure = false
		if got := short.match(c.text); got != c.own {
			t.Errorf("match(%q) = %v, want %v", c.text, got, c.own)
		}
		short.unsure = true
		if got := short.match(c.text); got != c.audit {
			t.Errorf("unsure: match(%q) = %v, want %v", c.text, got, c.audit)
		}
	}
}

func TestApproxContains(t *testing.T) {
	cases := []struct {
		t, p string
		k    int
		want bool
	}{
		{"abcdef", "cde", 0, true}, {"abcxef", "cde", 0, false}, {"abcxef", "cde", 1, true},
		{"ab", "abcd", 1, false}, {"abc", "abcd", 1, true}, {"", "a", 0, false},
	}
	for _, c := range cases {
		if got := approxContains([]byte(c.t), []byte(c.p), c.k); got != c.want {
			t.Errorf("approxContains(%q, %q, %d) = %v", c.t, c.p, c.k, got)
		}
	}
}

// Two masks of one row with a short gap are bridged; masks of other rows,
// or far apart, are not.
func TestBridge(t *testing.T) {
	r := image.Rect
	cases := []struct {
		name string
		in   []image.Rectangle
		add  []image.Rectangle
	}{
		{"one row, gap of a height", []image.Rectangle{r(10, 10, 50, 30), r(70, 12, 120, 30)}, []image.Rectangle{r(50, 12, 70, 30)}},
		{"gap too wide", []image.Rectangle{r(10, 10, 50, 30), r(100, 10, 150, 30)}, nil},
		{"rows apart", []image.Rectangle{r(10, 10, 50, 30), r(60, 40, 100, 60)}, nil},
		{"overlapping", []image.Rectangle{r(10, 10, 50, 30), r(40, 10, 90, 30)}, nil},
	}
	for _, c := range cases {
		got := bridge(append([]image.Rectangle(nil), c.in...))[len(c.in):]
		if fmt.Sprint(got) != fmt.Sprint(c.add) {
			t.Errorf("%s: bridged %v, want %v", c.name, got, c.add)
		}
	}
}

func TestPartlyRead(t *testing.T) {
	for _, c := range []struct {
		text string
		conf float64
		want bool
	}{{"ESS 1133", 35, true}, {"meee t133", 25, true}, {"Pie) fy", 35, false}, {"12", 60, false}, {"4411", 10, false}} {
		if got := partlyRead(lineText{text: c.text, conf: c.conf}); got != c.want {
			t.Errorf("partlyRead(%q, %v) = %v", c.text, c.conf, got)
		}
	}
}

// A line of OCR whose words are far apart is read as parts: a date at the
// left of a screen's row and an institution at its right are two.
func TestSplitLines(t *testing.T) {
	w := func(text string, x0, x1 int) ocr.Word {
		return ocr.Word{Text: text, Box: image.Rect(x0, 10, x1, 30), Conf: 90}
	}
	l := lineOf([]ocr.Word{w("DOB", 0, 60), w("05/11/1943", 70, 250), w("Klinikum", 400, 560), w("Bad", 570, 630)})
	got := splitLines([]ocr.Line{l})
	if len(got) != 2 || got[0].Text != "DOB 05/11/1943" || got[1].Text != "Klinikum Bad" ||
		got[0].Box != image.Rect(0, 10, 250, 30) || got[1].Box != image.Rect(400, 10, 630, 30) {
		t.Errorf("split into %+v", got)
	}
	if got := splitLines([]ocr.Line{{Text: "one", Box: image.Rect(0, 0, 9, 9)}}); len(got) != 1 || got[0].Text != "one" {
		t.Errorf("a line without words: %+v", got)
	}
}

// word is a word read at x (10 pixels a glyph, glyphs told or not).
func word(text string, x int, glyphs bool) ocr.Word {
	w := ocr.Word{Text: text, Box: image.Rect(x, 100, x+10*len(text), 120), Conf: 90}
	if glyphs {
		for i, r := range text {
			w.Glyphs = append(w.Glyphs, ocr.Glyph{Text: string(r), Box: image.Rect(x+10*i, 100, x+10*i+10, 120)})
		}
	}
	return w
}

// TestUnhidden: a sparse reading that identifies is masked again only
// for what it shows outside the masks already made that continues an
// identifier, where its glyphs were read.
func TestUnhidden(t *testing.T) {
	im := New(Config{Allow: NewAllow([]string{"Gain"})}).Image([]Identifier{{Text: "Klinikum Bad Ueberkingen"}, {Text: "19820307", Date: true}}, true)
	// "1982 eeeeessKlinikum Bad Ueberkingen": the year (x 0..40), texture
	// read as letters and the institution's first word in one word
	// (x 60..210, Klinikum at 130..210), then its other words.
	reading := func(glyphs bool) lineText {
		ws := []ocr.Word{word("1982", 0, glyphs), word("eeeeessKlinikum", 60, glyphs), word("Bad", 220, glyphs), word("Ueberkingen", 260, glyphs)}
		parts := make([]string, len(ws))
		for i, w := range ws {
			parts[i] = w.Text
		}
		return lineText{text: strings.Join(parts, " "), conf: 90, parts: ws}
	}
	box := image.Rect(0, 100, 370, 120)
	institution := image.Rect(126, 96, 374, 124) // the line's mask: Klinikum Bad Ueberkingen
	year := image.Rect(0, 96, 44, 124)           // the birth date's line mask, its year in the reading
	band := func(x0, x1 int) image.Rectangle { return image.Rect(x0, 100, x1, 120) }
	cases := []struct {
		name   string
		glyphs bool
		masks  []image.Rectangle
		want   []image.Rectangle
	}{
		{"nothing masked", true, nil, []image.Rectangle{box}},
		{"both lines masked, texture left", true, []image.Rectangle{year, institution}, nil},
		{"the year left", true, []image.Rectangle{institution}, []image.Rectangle{band(0, 130)}},
		{"only Klinikum masked", true, []image.Rectangle{year, image.Rect(126, 96, 212, 124)}, []image.Rectangle{band(220, 370)}},
		{"Ueberkingen left", true, []image.Rectangle{year, image.Rect(126, 96, 256, 124)}, []image.Rectangle{band(260, 370)}},
		// The end of the institution's name continues it.
		{"ngen left", true, []image.Rectangle{year, image.Rect(126, 96, 330, 124)}, []image.Rectangle{band(330, 370)}},
		// Left alone, the institution's generic word names no one.
		{"Klinikum left", true, []image.Rectangle{year, image.Rect(216, 96, 374, 124)}, nil},
		// Words without glyphs: a word counts hidden by its centre (the
		// texture's word, Klinikum in it, lies mostly in the mask).
		{"words, both masked", false, []image.Rectangle{year, institution}, nil},
		{"words, nothing masked", false, nil, []image.Rectangle{box}},
		{"words, Bad only masked", false, []image.Rectangle{year, image.Rect(216, 96, 252, 124)}, []image.Rectangle{band(260, 370)}},
		// A letter left beside the mask is part of every name.
		{"K left", true, []image.Rectangle{year, image.Rect(136, 96, 374, 124)}, nil},
		{"en left", true, []image.Rectangle{year, image.Rect(126, 96, 350, 124)}, nil},
		{"gen left", true, []image.Rectangle{year, image.Rect(126, 96, 340, 124)}, []image.Rectangle{band(340, 370)}},
	}
	for _, c := range cases {
		if got := im.unhidden(reading(c.glyphs), box, c.masks); !slices.Equal(got, c.want) {
			t.Errorf("%s: unhidden = %v, want %v", c.name, got, c.want)
		}
	}
	// Glyphs that do not spell their word (texture read as one more
	// symbol than the word's text shows) still tell what the masks hide;
	// a word the reader gave no glyphs is a unit of its own.
	odd := reading(true)
	odd.parts[1].Glyphs = append([]ocr.Glyph{{Text: "=", Box: image.Rect(55, 100, 60, 120)}}, odd.parts[1].Glyphs...)
	odd.parts[2].Glyphs = nil
	if got := im.unhidden(odd, box, []image.Rectangle{year, institution}); got != nil {
		t.Errorf("glyphs not spelling their word: unhidden = %v, want nil", got)
	}
	if got := im.unhidden(odd, box, []image.Rectangle{year, image.Rect(126, 96, 212, 124)}); !slices.Equal(got, []image.Rectangle{band(220, 370)}) {
		t.Errorf("a word without glyphs: unhidden = %v, want %v", got, band(220, 370))
	}
	// A glyph whose box swallows the rest of its line hides that rest
	// from the reader only: what it spans is masked, whatever it reads as.
	hop := word("Hopital", 0, true)
	hop.Glyphs[6].Box.Max.X, hop.Box.Max.X = 200, 200 // the l spans "Sainte-Eleonore"
	wide := lineText{text: hop.Text, conf: 90, parts: []ocr.Word{hop}}
	if got := im.unhidden(wide, image.Rect(0, 100, 200, 120), []image.Rectangle{image.Rect(0, 96, 64, 124)}); !slices.Equal(got, []image.Rectangle{band(60, 200)}) {
		t.Errorf("a glyph spanning its line: unhidden = %v, want %v", got, band(60, 200))
	}
	klinikum := image.Rect(126, 96, 212, 124)
	date := lineText{text: "07.03.1982 Klinikum", conf: 90, parts: []ocr.Word{word("07.03.1982", 0, true), word("Klinikum", 130, true)}}
	tex := lineText{text: "wa2Sste Klinikum", conf: 90, parts: []ocr.Word{word("wa2Sste", 0, true), word("Klinikum", 130, true)}}
	for _, c := range []struct {
		name  string
		lt    lineText
		masks []image.Rectangle
		want  []image.Rectangle
	}{
		{"a date beside the masked line", date, []image.Rectangle{klinikum}, []image.Rectangle{band(0, 100)}},
		{"a date's last digits", date, []image.Rectangle{image.Rect(0, 96, 80, 124), klinikum}, []image.Rectangle{band(80, 100)}},
		// One digit in texture read as letters is texture.
		{"texture with a digit", tex, []image.Rectangle{klinikum}, nil},
	} {
		if got := im.unhidden(c.lt, image.Rect(0, 100, 210, 120), c.masks); !slices.Equal(got, c.want) {
			t.Errorf("%s: unhidden = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestLineMask: a candidate line is masked with its pad; one taller than
// a line of text only where OCR read its text, with the margin of its
// text's height, not of the candidate's.
func TestLineMask(t *testing.T) {
	cases := []struct {
		name    string
		box     image.Rectangle
		lt      lineText
		want    image.Rectangle
		wantPad int
	}{
		{"a line of text", image.Rect(80, 360, 340, 380), lineText{ink: image.Rect(82, 362, 300, 378)}, image.Rect(80, 360, 340, 380), 5},
		{"tall, not read", image.Rect(80, 340, 520, 420), lineText{}, image.Rect(80, 340, 520, 420), 20},
		// 17-pixel text over anatomy: its band, two heights along.
		{"tall, ink of one row", image.Rect(80, 350, 520, 420), lineText{ink: image.Rect(100, 365, 300, 382)},
			image.Rect(80, 361, 334, 386), 2},
		// A word read over the image beside it stretches the ink: the
		// smallest word read says the row.
		{"tall, ink stretched", image.Rect(80, 350, 520, 424), lineText{ink: image.Rect(81, 361, 305, 415),
			words: []image.Rectangle{image.Rect(81, 365, 210, 382), image.Rect(220, 361, 305, 415)}},
			image.Rect(80, 357, 339, 390), trimPad},
	}
	for _, c := range cases {
		got, p := lineMask(c.box, c.lt)
		if got != c.want || p != c.wantPad {
			t.Errorf("%s: lineMask = %v pad %d, want %v pad %d", c.name, got, p, c.want, c.wantPad)
		}
	}
}

// TestLabelCased: a whole-frame reading's label word counts as a label
// only as screens write one; lower case is anatomy read as letters.
func TestLabelCased(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"ID: 987691001", true}, {"Acc#A6234342", true}, {"MRN", true}, {"DOB:07-Mar-1982", true},
		{"Born 07.03.1982", true}, {"ke oh Pid", true}, {"PID:1234", true},
		{"id", false}, {"pt)", false}, {"id 2G", false}, {"pat", false}, {"wide", false},
	} {
		if got := labelCased(c.text); got != c.want {
			t.Errorf("labelCased(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}
