package deid

import "github.com/dicomdeid/dicomdeid/pipeline/dicomraw"

// unreadableIdentity refuses a file in which a Patient's Name or Patient ID,
// at any depth, holds a control character (other than ESC) inside its
// value: no PN or LO value may hold one (PS3.5 6.2), and no character set
// encodes a character with one. Such a value is not a name or an ID the
// engine can read consistently (a reader stopping at a NUL sees another
// patient), and it cannot be proven absent from the output either: the
// verifier looks for identifying values in the output's values, while
// bytes like these make up element headers (from fuzzing: a Patient ID
// whose bytes were the header of the element after it). Padding (NUL or
// space at either end) is not part of the value.
func unreadableIdentity(els []*dicomraw.Element) error {
	for _, e := range els {
		for _, it := range e.Items {
			if err := unreadableIdentity(it.Elements); err != nil {
				return err
			}
		}
		if (e.Tag != tagPatientName && e.Tag != tagPatientID) || !e.Loaded {
			continue
		}
		v := e.Value
		for len(v) > 0 && (v[0] == 0 || v[0] == ' ') {
			v = v[1:]
		}
		v = trimValue(v)
		for _, c := range v {
			if c < 0x20 && c != 0x1B {
				return reject("malformed", "%s %s holds a control character, which no %s value may hold: the patient's identity cannot be read, nor proven absent from the output",
					keyword(e.Tag), e.Tag, dicomraw.DictVR(e.Tag))
			}
		}
	}
	return nil
}
