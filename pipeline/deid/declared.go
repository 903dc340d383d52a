package deid

import (
	"strings"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/ps315"
)

// Declared is what a de-identified file says of its own de-identification
// (PS3.15 E.1.1, PS3.3 SOP Common): what an auditor reads to know which
// profile made it, and so what it kept on purpose.
type Declared struct {
	// Tool is true when De-identification Method names this tool
	// ("dicomdeid PS3.15-<edition> <profile>"); Profile is then the
	// profile's name as written (printable ASCII, at most 64 characters).
	Tool    bool
	Profile string
	// Coded is true when the De-identification Method Code Sequence holds
	// the Basic Profile's code (CID 7050 113100); Options are the options
	// its other codes name.
	Coded   bool
	Options [ps315.NumOptions]bool
	// PixelsCleaned is true when the Code Sequence holds Clean Pixel Data
	// (113101): the pixels were examined for burned-in text (and masked
	// where text was found).
	PixelsCleaned bool
}

// ReadDeclared reads the statement of a file's top level.
func ReadDeclared(f *dicomraw.File) Declared {
	var d Declared
	for _, e := range f.Elements {
		switch e.Tag {
		case tagDeidMethod:
			if !e.Loaded {
				continue
			}
			m := strings.Trim(string(e.Value), " \x00")
			prefix := ToolName + " PS3.15-"
			if !strings.HasPrefix(m, prefix) {
				continue
			}
			_, name, ok := strings.Cut(m[len(prefix):], " ")
			// What follows the name is a remark ("pixels-not-examined").
			name, _, _ = strings.Cut(name, " ")
			if ok && name != "" && printable(name) == name {
				d.Tool, d.Profile = true, name
			}
		case tagDeidMethodCodeSeq:
			for _, it := range e.Items {
				for _, c := range it.Elements {
					if c.Tag != tagCodeValue || !c.Loaded {
						continue
					}
					code := strings.Trim(string(c.Value), " \x00")
					if code == ps315.BasicProfileCode {
						d.Coded = true
					}
					if code == CleanPixelDataCode {
						d.PixelsCleaned = true
					}
					for o := ps315.Option(0); o < ps315.NumOptions; o++ {
						if o.Code() == code {
							d.Options[o] = true
						}
					}
				}
			}
		}
	}
	return d
}
