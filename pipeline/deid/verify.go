package deid

import (
	"errors"
	"fmt"
	"io"

	"github.com/dicomdeid/dicomdeid/pipeline/codec"
	"github.com/dicomdeid/dicomdeid/pipeline/dicomraw"
	"github.com/dicomdeid/dicomdeid/pipeline/pixels"
	"github.com/dicomdeid/dicomdeid/pipeline/rules"
	"github.com/dicomdeid/dicomdeid/pipeline/verify"
)

// Verification is the verifier's verdict on one written output.
type Verification struct {
	Findings   []verify.Finding   `json:"findings,omitempty"`
	Exemptions []verify.Exemption `json:"exemptions,omitempty"`
	Values     int                `json:"identifying_values"` // distinct values looked for
}

// VerifyPolicy is what the profile keeps on purpose, for the verifier:
// options, and attributes a rule keeps or cleans.
func VerifyPolicy(p *rules.Profile) verify.Policy {
	pol := verify.Policy{Options: p.Options, KeepTags: map[uint32]bool{}, KeepPrivate: map[verify.PrivateKey]bool{}}
	for _, r := range p.Rules {
		if r.Action != rules.Keep && r.Action != rules.Clean {
			continue
		}
		if s := r.Selector.Private; s != nil {
			pol.KeepPrivate[verify.PrivateKey{Group: s.Group, Creator: normCreator(s.Creator), Element: s.Element}] = true
		} else {
			pol.KeepTags[r.Selector.Tag] = true
		}
	}
	for _, vr := range []string{"DA", "TM", "DT", "AS", "DS", "UR", "LO"} {
		pol.ToolValues = append(pol.ToolValues, dummyFor(vr))
	}
	pol.ToolValues = append(pol.ToolValues, "YES", "REMOVED", "MODIFIED", "UNMODIFIED", methodText(p))
	// Lossy Image Compression Method, which the engine writes for a
	// masked lossy image: the standard's own names of the methods.
	for _, ts := range []string{codec.JPEGBaseline, codec.JPEGLSNear, codec.J2K, codec.HTJ2K} {
		pol.ToolValues = append(pol.ToolValues, codec.LossyMethod(ts))
	}
	return pol
}

// Verify scans a written output, parsed back, for the identifying values
// of this job's input. Findings make it a Rejection of kind "residual":
// the caller must not publish the output.
func (j *Job) Verify(out *dicomraw.File) (*Verification, error) {
	m := j.verifier()
	if j.refusal != nil {
		// The budget refused the needles: the matcher is incomplete.
		return nil, j.refusal
	}
	fs, ex, err := m.Scan(out)
	if err != nil {
		return nil, err
	}
	v := &Verification{Findings: fs, Exemptions: ex, Values: j.vset.Len()}
	if len(fs) > 0 {
		reason := fs[0].String()
		if len(fs) > 1 {
			reason += fmt.Sprintf(" and %d more", len(fs)-1)
		}
		return v, &Rejection{Kind: "residual", Reason: reason}
	}
	return v, nil
}

// verifier is the verifier's matcher for the input's identifying values,
// built once: cleaning asks it before Verify does. Planning changes no
// value it reads (only what will be written).
func (j *Job) verifier() *verify.Matcher {
	if j.matcher == nil {
		j.vset = verify.NewSet(j.eng.policy)
		if j.acct != nil {
			j.vset.SetBudget(j.acct)
		}
		j.vset.Add(j.f)
		j.matcher = j.vset.CompileCached(j.eng.matchers)
		if err := j.vset.Err(); err != nil && j.refusal == nil {
			j.refusal = budgetRefusal(err)
		}
	}
	return j.matcher
}

// Spool is where an output is written before it is published: it must be
// readable back (a temporary file).
type Spool interface {
	io.Writer
	io.ReaderAt
}

// WriteVerified writes the output to dst, reads it back to its end and
// verifies it. Only when the error is nil may the caller publish dst; a
// *Rejection says why not (kind "output" for an output that does not
// parse, "residual" for an identifier the verifier found).
func (j *Job) WriteVerified(dst Spool) (int64, *Verification, error) {
	n, err := j.WriteTo(dst)
	if errors.Is(err, pixels.ErrRLE) || errors.Is(err, pixels.ErrGeometry) ||
		errors.Is(err, codec.ErrCorrupt) || errors.Is(err, codec.ErrGeometry) || errors.Is(err, codec.ErrUnsupported) {
		// Pixels that do not decode as their attributes say cannot be
		// masked: the file is held back, for good.
		return n, nil, &Rejection{Kind: "pixels", Reason: "pixels to mask could not be decoded (" + err.Error() + "): held back"}
	}
	if err != nil {
		return n, nil, fmt.Errorf("write output: %w", err)
	}
	// The output is this process's own: its deflated dataset (if any)
	// inflates to what was just written, whatever its ratio. Its tree is
	// charged to the job's account with the input's.
	lim := j.lim
	lim.MaxInflateRatio = -1
	if lim.MaxInflated > 0 {
		lim.MaxInflated += 16 << 20 // the attributes the profile adds
	}
	out, err := dicomraw.Parse(dst, n, lim)
	if err != nil {
		var pe *dicomraw.Error
		if !errors.As(err, &pe) || pe.Kind == dicomraw.ErrLimit {
			return n, nil, parseRefusal(err, "output: ") // a limit, or no scratch file
		}
		return n, nil, &Rejection{Kind: "output", Reason: "output failed its own parse check: " + err.Error()}
	}
	defer out.Close()
	v, err := j.Verify(out)
	return n, v, err
}
