package deid

import (
	"strings"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// shiftValue moves every date in a DA or DT value back by the patient's
// keyed shift. A value that is not a valid date is emptied: a date we
// cannot read could still be the real one.
func (j *Job) shiftValue(e *dicomraw.Element, vr string) {
	c := &j.res.Counts
	if vr != "DA" && vr != "DT" {
		c.Kept++ // TM: whole-day shifts keep the time of day
		return
	}
	vals := strings.Split(strings.TrimRight(string(e.Value), "\x00 "), `\`)
	for i, v := range vals {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		var out string
		var ok bool
		if vr == "DA" {
			out, ok = shiftDARange(v, j.shift)
		} else {
			out, ok = shiftDTRange(v, j.shift)
		}
		if !ok {
			j.replace(e, vr, nil)
			c.Emptied++
			return
		}
		vals[i] = out
	}
	j.replace(e, vr, []byte(strings.Join(vals, `\`)))
	j.shifted = true
	c.DatesShifted++
}

// shiftDARange shifts a DA value, a range "A-B", or an open range.
func shiftDARange(v string, days int) (string, bool) {
	if a, b, isRange := strings.Cut(v, "-"); isRange {
		var ra, rb string
		var ok bool
		if a != "" {
			if ra, ok = shiftDA(a, days); !ok {
				return "", false
			}
		}
		if b != "" {
			if rb, ok = shiftDA(b, days); !ok {
				return "", false
			}
		}
		return ra + "-" + rb, true
	}
	return shiftDA(v, days)
}

func shiftDA(v string, days int) (string, bool) {
	v = strings.ReplaceAll(v, ".", "") // ACR-NEMA YYYY.MM.DD
	t, err := time.Parse("20060102", v)
	if err != nil {
		return "", false
	}
	return t.AddDate(0, 0, days).Format("20060102"), true
}

// shiftDTRange shifts DT values: the date part moves, the time of day,
// fraction and UTC offset stay. Reduced precision (YYYY, YYYYMM) is kept.
func shiftDTRange(v string, days int) (string, bool) {
	for i := 0; i < len(v); i++ {
		if v[i] != '-' || looksLikeOffset(v, i) {
			continue
		}
		a, b := v[:i], v[i+1:]
		var ra, rb string
		var ok bool
		if a != "" {
			if ra, ok = shiftDT(a, days); !ok {
				return "", false
			}
		}
		if b != "" {
			if rb, ok = shiftDT(b, days); !ok {
				return "", false
			}
		}
		return ra + "-" + rb, true
	}
	return shiftDT(v, days)
}

// looksLikeOffset reports a '-' at i that starts a 4-digit UTC offset at
// the end of a date-time (…HHMMSS-0500).
func looksLikeOffset(v string, i int) bool {
	return len(v)-i-1 == 4 && isDigits(v[i+1:]) && i >= 10
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func shiftDT(v string, days int) (string, bool) {
	switch {
	case len(v) >= 8 && isDigits(v[:8]):
		d, ok := shiftDA(v[:8], days)
		if !ok {
			return "", false
		}
		return d + v[8:], true
	case len(v) == 6 && isDigits(v):
		d, ok := shiftDA(v+"01", days)
		return d[:6], ok
	case len(v) == 4 && isDigits(v):
		d, ok := shiftDA(v+"0101", days)
		return d[:4], ok
	}
	return "", false
}
