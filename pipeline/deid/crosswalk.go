package deid

import (
	"encoding/csv"
	"io"
	"sort"
)

// IDPair is one row of a crosswalk: an identifier of an input and what
// the output holds in its place.
type IDPair struct {
	Old string `json:"id_old"`
	New string `json:"id_new"`
}

// Crosswalk returns the identifiers the planned output replaces: Patient
// ID, Study, Series and SOP Instance UIDs (old, new), each when the input
// has it and the output writes one. It is what the trusted side keeps to
// re-identify a delivery (MIDI-B's mapping files: id_old,id_new): whoever
// holds it can re-identify every output it lists.
func (j *Job) Crosswalk() []IDPair {
	r := j.res
	var out []IDPair
	add := func(old, new string) {
		if old != "" && new != "" {
			out = append(out, IDPair{Old: old, New: new})
		}
	}
	add(j.patientID, j.OutputPatientID())
	add(j.topString(tagStudyInstanceUID), r.StudyUID)
	add(j.topString(tagSeriesInstanceUID), r.SeriesUID)
	sop := j.topString(tagSOPInstanceUID)
	if sop == "" {
		sop = j.metaString(0x00020003)
	}
	add(sop, r.SOPInstanceUID)
	return out
}

// CrosswalkRows is a set of crosswalk rows: each pair once, sorted (by old
// then new identifier), so that the same deliveries give the same file
// whatever the order their files were processed in.
type CrosswalkRows struct {
	seen map[IDPair]bool
	rows []IDPair
}

// Add adds pairs not seen before.
func (c *CrosswalkRows) Add(pairs ...IDPair) {
	if c.seen == nil {
		c.seen = map[IDPair]bool{}
	}
	for _, p := range pairs {
		if !c.seen[p] {
			c.seen[p] = true
			c.rows = append(c.rows, p)
		}
	}
}

// Len is the number of rows.
func (c *CrosswalkRows) Len() int { return len(c.rows) }

// WriteCSV writes the rows as CSV with the header id_old,id_new.
func (c *CrosswalkRows) WriteCSV(w io.Writer) error {
	sort.Slice(c.rows, func(a, b int) bool {
		x, y := c.rows[a], c.rows[b]
		return x.Old < y.Old || x.Old == y.Old && x.New < y.New
	})
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id_old", "id_new"}); err != nil {
		return err
	}
	for _, p := range c.rows {
		if err := cw.Write([]string{p.Old, p.New}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
