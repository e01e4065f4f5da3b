package imagegen

import (
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"tessera/dit"
	"tessera/models"
)

func TestZZProf(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	f, _ := models.Open("mnist")
	m, err := dit.LoadFS(f)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseCache(os.Getenv("ZZ"))
	o := GenerateOptions{N: 256, Seed: 1, CFG: 2}
	if _, _, err := GenerateAccel(m, o, AccelOptions{Cache: c}); err != nil {
		t.Fatal(err)
	}
	pf, _ := os.Create("/work/runs/s10/cpu.prof")
	pprof.StartCPUProfile(pf)
	st := time.Now()
	_, s, err := GenerateAccel(m, o, AccelOptions{Cache: c})
	pprof.StopCPUProfile()
	t.Logf("%v flops %g", time.Since(st), s.FLOPs)
	st = time.Now()
	_, s, _ = GenerateAccel(m, o, AccelOptions{})
	t.Logf("base %v flops %g", time.Since(st), s.FLOPs)
}
