package blockcache

import (
	"fmt"
	"os"
	"testing"

	"tessera/dit"
	"tessera/models"
)

func TestZZPlanFractions(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	f, _ := models.Open("mnist")
	m, err := dit.LoadFS(f)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := ProfileModel(m, ProfileOptions{Steps: 32, CFG: 2, Samples: 64, Batch: 32})
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range prof.Delta2[Cond] {
		fmt.Printf("block %d d2:", i)
		for _, v := range row {
			fmt.Printf(" %.3f", v)
		}
		fmt.Printf("\n        d1:")
		for _, v := range prof.Delta[Cond][i] {
			fmt.Printf(" %.3f", v)
		}
		fmt.Println()
	}
	for _, d := range []float64{0.05, 0.07, 0.1, 0.15} {
		fmt.Printf("plan d=%g: %.3f\n", d, NewPlan(prof, d).ComputeFraction(Cond))
	}
	for _, d := range []float64{0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3} {
		p := NewForecastPlan(prof, d)
		fmt.Printf("forecast d=%g: %.3f %.3f\n", d, p.ComputeFraction(Cond), p.ComputeFraction(Uncond))
		for _, row := range p.Compute[Cond] {
			for _, c := range row {
				if c {
					fmt.Print("X")
				} else {
					fmt.Print(".")
				}
			}
			fmt.Println()
		}
	}
}
