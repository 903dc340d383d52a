package deid

import (
	"strings"
	"time"

	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
)

// shiftValue moves every date in a DA or DT value back by the patient's
// keyed shift. A value that is not a valid date is emptied: a date we
// cannot read could still be the real one. A TM value stays as it is
// (whole-day shifts keep the time of day) when it is a time, and is
// emptied like a date when it is not: the bytes of a value the engine
// cannot read as a time could be anything (from fuzzing: a Discharge Time
// holding a name in the 7-bit bytes of JIS X 0208).
func (j *Job) shiftValue(e *dicomraw.Element, vr string) {
	c := &j.res.Counts
	if vr == "TM" {
		if !eachValue(e.Value, validTMRange) {
			j.replace(e, vr, nil)
			c.Emptied++
			return
		}
		c.Kept++
		return
	}
	if vr != "DA" && vr != "DT" {
		c.Kept++
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
		return shiftReduced(v, "01", days)
	case len(v) == 4 && isDigits(v):
		return shiftReduced(v, "0101", days)
	}
	return "", false
}

// shiftReduced shifts a reduced-precision date (YYYYMM, YYYY) through the
// full date completed with fill, and cuts the result back to its
// precision. An impossible month (202513) fails: it is not a date.
func shiftReduced(v, fill string, days int) (string, bool) {
	d, ok := shiftDA(v+fill, days)
	if !ok || len(d) < len(v) {
		return "", false
	}
	return d[:len(v)], true
}

// eachValue reports whether every non-empty value of a multi-valued value
// (padding and surrounding spaces aside) satisfies ok.
func eachValue(b []byte, ok func(string) bool) bool {
	for _, v := range strings.Split(strings.TrimRight(string(b), "\x00 "), `\`) {
		if v = strings.TrimSpace(v); v != "" && !ok(v) {
			return false
		}
	}
	return true
}

// validTMRange accepts a TM value or a range of two ("A-B", "-B", "A-").
func validTMRange(v string) bool {
	if a, b, isRange := strings.Cut(v, "-"); isRange {
		return (a != "" || b != "") && (a == "" || validTM(a)) && (b == "" || validTM(b))
	}
	return validTM(v)
}

// validTM accepts the TM forms of PS3.5 Table 6.2-1: HH, HHMM, HHMMSS and
// HHMMSS.F to HHMMSS.FFFFFF (SS up to 60, a leap second), and the
// ACR-NEMA form HH:MM:SS.frac it notes.
func validTM(v string) bool {
	if len(v) >= 5 && v[2] == ':' {
		if len(v) == 5 {
			v = v[:2] + v[3:]
		} else if len(v) >= 8 && v[5] == ':' {
			v = v[:2] + v[3:5] + v[6:]
		} else {
			return false
		}
	}
	hms, frac, hasFrac := strings.Cut(v, ".")
	if hasFrac && (len(hms) != 6 || len(frac) < 1 || len(frac) > 6 || !isDigits(frac)) {
		return false
	}
	if (len(hms) != 2 && len(hms) != 4 && len(hms) != 6) || !isDigits(hms) {
		return false
	}
	max := [3]int{23, 59, 60}
	for i := 0; i < len(hms); i += 2 {
		if int(hms[i]-'0')*10+int(hms[i+1]-'0') > max[i/2] {
			return false
		}
	}
	return true
}
