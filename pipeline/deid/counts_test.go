package deid

import (
	"reflect"
	"testing"
)

// A report's totals add every tally: a field Add forgets (as the batch
// report once forgot vr_mismatch_removed) stays 0 here.
func TestCountsAddEveryField(t *testing.T) {
	var one Counts
	v := reflect.ValueOf(&one).Elem()
	for i := 0; i < v.NumField(); i++ {
		v.Field(i).SetInt(int64(i + 1))
	}
	var total Counts
	total.Add(&one)
	total.Add(&one)
	tv := reflect.ValueOf(total)
	for i := 0; i < tv.NumField(); i++ {
		if got, want := tv.Field(i).Int(), int64(2*(i+1)); got != want {
			t.Errorf("%s: total %d, want %d", tv.Type().Field(i).Name, got, want)
		}
	}
}
