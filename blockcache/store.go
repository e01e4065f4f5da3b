package blockcache

import (
	"fmt"
	"path/filepath"

	"tessera/dit"
)

// Store keeps profiles and trained plans in a folder, one file per
// setting, so that each is computed once per (model weights, calibration,
// sampler, schedule, steps, guidance) and loaded afterwards. File names
// are Setting.Key() + ".profile.json" and Key() + "-d<d>.ss.json" (or
// ".res.ss.json" for residual reuse, ".forecast.ss.json" for forecast
// reuse).
type Store struct {
	// Dir is the folder (default DefaultDir()).
	Dir string
	// Log, when set, receives a line when a profile or plan is computed
	// rather than loaded.
	Log func(msg string)
}

func (s Store) dir() string {
	if s.Dir == "" {
		return DefaultDir()
	}
	return s.Dir
}

func (s Store) log(format string, args ...any) {
	if s.Log != nil {
		s.Log(fmt.Sprintf(format, args...))
	}
}

// Profile returns the stored profile of m for o, computing (ProfileModel)
// and storing it first when there is none for this setting. It returns
// the file's path too.
func (s Store) Profile(m dit.Staged, o ProfileOptions) (*Profile, string, error) {
	o.defaults()
	if m == nil {
		return nil, "", fmt.Errorf("blockcache profile: no network")
	}
	set := o.setting(m)
	if set.Model == "" {
		return nil, "", fmt.Errorf("blockcache profile: a %T network needs ProfileOptions.Model (its fingerprint) to be stored", m)
	}
	path := filepath.Join(s.dir(), set.Key()+".profile.json")
	var p Profile
	if err := LoadJSON(path, &p); err == nil && p.Setting == set && p.Delta2[Cond] != nil {
		return &p, path, nil
	}
	s.log("block cache: profiling %d calibration images (%s, %d steps, cfg %g)", o.Samples, o.Sampler, o.Steps, o.CFG)
	prof, err := ProfileModel(m, o)
	if err != nil {
		return nil, "", err
	}
	if err := SaveJSON(path, prof); err != nil {
		return nil, "", err
	}
	return prof, path, nil
}

// Plan returns the automatic schedule for threshold d from the stored
// profile of m for o (Profile), reusing what reuse says, and, with
// scaleShift, the schedule with scale-shift trained on the same
// calibration set (TrainScaleShift, stored too, apart per reuse). The path returned is the trained plan's file, or the
// profile's without scale-shift.
func (s Store) Plan(m dit.Staged, o ProfileOptions, d float64, scaleShift bool, reuse Reuse) (*Plan, string, error) {
	if !(d > 0) {
		return nil, "", fmt.Errorf("blockcache plan: threshold must be positive (have %g)", d)
	}
	if reuse != ReuseOutput && reuse != ReuseResidual && reuse != ReuseForecast {
		return nil, "", fmt.Errorf("blockcache plan: unknown reuse %q (want %q, %q or %q)", reuse, ReuseOutput, ReuseResidual, ReuseForecast)
	}
	prof, ppath, err := s.Profile(m, o)
	if err != nil {
		return nil, "", err
	}
	plan := NewPlan(prof, d)
	if reuse == ReuseForecast {
		plan = NewForecastPlan(prof, d)
	}
	plan.Reuse = reuse
	if !scaleShift {
		return plan, ppath, nil
	}
	o.defaults()
	kind := "ss"
	switch reuse {
	case ReuseResidual:
		kind = "res.ss"
	case ReuseForecast:
		kind = "forecast.ss"
	}
	path := filepath.Join(s.dir(), fmt.Sprintf("%s-d%g.%s.json", prof.Key(), d, kind))
	var stored Plan
	if err := LoadJSON(path, &stored); err == nil && stored.Setting == prof.Setting && stored.Threshold == d && stored.Reuse == reuse {
		return &stored, path, nil
	}
	s.log("block cache: training scale-shift for d=%g on %d calibration images", d, o.Samples)
	trained, _, err := TrainScaleShift(m, plan, ScaleShiftOptions{Samples: o.Samples, Batch: o.Batch, Seed: o.Seed})
	if err != nil {
		return nil, "", err
	}
	if err := SaveJSON(path, trained); err != nil {
		return nil, "", err
	}
	return trained, path, nil
}
