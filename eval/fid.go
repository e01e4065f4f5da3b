// Package eval measures generated samples: Fréchet distance (FID) and kernel
// inception distance (KID) on feature vectors, class accuracy, and PSNR
// between images. Features come from Tessera's own classifiers, so the
// numbers are comparable across Tessera runs but not with Inception-based
// FID from other papers.
package eval

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Features is a set of N feature vectors of equal dimension, row-major.
type Features struct {
	N, Dim int
	Data   []float64
}

// NewFeatures wraps rows (each of length dim) as Features.
func NewFeatures(rows [][]float32) (*Features, error) {
	if len(rows) == 0 {
		return nil, errors.New("no feature vectors")
	}
	d := len(rows[0])
	f := &Features{N: len(rows), Dim: d, Data: make([]float64, len(rows)*d)}
	for i, r := range rows {
		if len(r) != d {
			return nil, fmt.Errorf("feature vector %d has %d values, want %d", i, len(r), d)
		}
		for j, v := range r {
			f.Data[i*d+j] = float64(v)
		}
	}
	return f, nil
}

func (f *Features) row(i int) []float64 { return f.Data[i*f.Dim : (i+1)*f.Dim] }

// meanCov returns the mean and the unbiased covariance (dim×dim).
func (f *Features) meanCov() ([]float64, []float64) {
	d := f.Dim
	mu := make([]float64, d)
	for i := 0; i < f.N; i++ {
		for j, v := range f.row(i) {
			mu[j] += v
		}
	}
	for j := range mu {
		mu[j] /= float64(f.N)
	}
	cov := make([]float64, d*d)
	c := make([]float64, d)
	for i := 0; i < f.N; i++ {
		for j, v := range f.row(i) {
			c[j] = v - mu[j]
		}
		for a := 0; a < d; a++ {
			ca := c[a]
			row := cov[a*d : (a+1)*d]
			for b := a; b < d; b++ {
				row[b] += ca * c[b]
			}
		}
	}
	den := float64(f.N - 1)
	if den < 1 {
		den = 1
	}
	for a := 0; a < d; a++ {
		for b := a; b < d; b++ {
			v := cov[a*d+b] / den
			cov[a*d+b], cov[b*d+a] = v, v
		}
	}
	return mu, cov
}

// FID is the Fréchet distance between Gaussians fitted to a and b:
// |μa−μb|² + Tr(Σa + Σb − 2(Σa^½ Σb Σa^½)^½).
func FID(a, b *Features) (float64, error) {
	if a.Dim != b.Dim {
		return 0, fmt.Errorf("FID: feature dimensions differ (%d vs %d)", a.Dim, b.Dim)
	}
	if a.N < 2 || b.N < 2 {
		return 0, fmt.Errorf("FID: need at least 2 samples on each side (have %d and %d)", a.N, b.N)
	}
	d := a.Dim
	muA, covA := a.meanCov()
	muB, covB := b.meanCov()
	var dm float64
	for j := range muA {
		x := muA[j] - muB[j]
		dm += x * x
	}
	sqrtA := symSqrt(covA, d)
	m := matMul(matMul(sqrtA, covB, d), sqrtA, d)
	// Symmetrise against rounding before the eigen-decomposition.
	for i := 0; i < d; i++ {
		for j := i + 1; j < d; j++ {
			v := 0.5 * (m[i*d+j] + m[j*d+i])
			m[i*d+j], m[j*d+i] = v, v
		}
	}
	vals, _ := jacobiEigen(m, d)
	var trSqrt float64
	for _, v := range vals {
		if v > 0 {
			trSqrt += math.Sqrt(v)
		}
	}
	var tr float64
	for i := 0; i < d; i++ {
		tr += covA[i*d+i] + covB[i*d+i]
	}
	fid := dm + tr - 2*trSqrt
	if fid < 0 && fid > -1e-9 {
		fid = 0
	}
	return fid, nil
}

// KIDResult is the kernel inception distance: the unbiased squared MMD with
// the cubic polynomial kernel k(x,y) = (x·y/d + 1)³, averaged over random
// subsets, with its standard deviation across subsets.
type KIDResult struct {
	Mean, Std  float64
	Subsets    int
	SubsetSize int
}

// KID computes KID over subsets of size m (capped at the smaller set), with
// a fixed seed so that the number is reproducible.
func KID(a, b *Features, subsets, m int, seed uint64) (KIDResult, error) {
	if a.Dim != b.Dim {
		return KIDResult{}, fmt.Errorf("KID: feature dimensions differ (%d vs %d)", a.Dim, b.Dim)
	}
	if m > a.N {
		m = a.N
	}
	if m > b.N {
		m = b.N
	}
	if m < 2 || subsets < 1 {
		return KIDResult{}, fmt.Errorf("KID: need subsets >= 1 and subset size >= 2 (have %d, %d)", subsets, m)
	}
	rng := rand.New(rand.NewPCG(seed, 0x4b4944))
	k := func(x, y []float64) float64 {
		var s float64
		for i := range x {
			s += x[i] * y[i]
		}
		v := s/float64(a.Dim) + 1
		return v * v * v
	}
	vals := make([]float64, subsets)
	for s := range vals {
		ia := rng.Perm(a.N)[:m]
		ib := rng.Perm(b.N)[:m]
		var kxx, kyy, kxy float64
		for i := 0; i < m; i++ {
			xi, yi := a.row(ia[i]), b.row(ib[i])
			for j := 0; j < m; j++ {
				if i != j {
					kxx += k(xi, a.row(ia[j]))
					kyy += k(yi, b.row(ib[j]))
				}
				kxy += k(xi, b.row(ib[j]))
			}
		}
		mf := float64(m)
		vals[s] = (kxx+kyy)/(mf*(mf-1)) - 2*kxy/(mf*mf)
	}
	var mean, sq float64
	for _, v := range vals {
		mean += v
	}
	mean /= float64(len(vals))
	for _, v := range vals {
		sq += (v - mean) * (v - mean)
	}
	std := 0.0
	if len(vals) > 1 {
		std = math.Sqrt(sq / float64(len(vals)-1))
	}
	return KIDResult{Mean: mean, Std: std, Subsets: subsets, SubsetSize: m}, nil
}

// PSNR is the peak signal-to-noise ratio in dB between two images with
// values in [-1, 1] (peak-to-peak range 2). Identical images give +Inf.
func PSNR(a, b []float32) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("PSNR: images of %d and %d values", len(a), len(b))
	}
	var mse float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		mse += d * d
	}
	mse /= float64(len(a))
	if mse == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(4/mse), nil
}

func matMul(a, b []float64, d int) []float64 {
	c := make([]float64, d*d)
	for i := 0; i < d; i++ {
		ci := c[i*d : (i+1)*d]
		for k := 0; k < d; k++ {
			av := a[i*d+k]
			if av == 0 {
				continue
			}
			bk := b[k*d : (k+1)*d]
			for j := range ci {
				ci[j] += av * bk[j]
			}
		}
	}
	return c
}

// symSqrt returns the principal square root of a symmetric positive
// semi-definite matrix (negative eigenvalues from rounding are clamped).
func symSqrt(a []float64, d int) []float64 {
	vals, vecs := jacobiEigen(append([]float64(nil), a...), d)
	out := make([]float64, d*d)
	for k, lam := range vals {
		if lam <= 0 {
			continue
		}
		s := math.Sqrt(lam)
		for i := 0; i < d; i++ {
			vi := vecs[i*d+k] * s
			if vi == 0 {
				continue
			}
			for j := 0; j < d; j++ {
				out[i*d+j] += vi * vecs[j*d+k]
			}
		}
	}
	return out
}

// jacobiEigen diagonalises the symmetric matrix a (destroyed) by cyclic
// Jacobi rotations and returns its eigenvalues and the eigenvectors as the
// columns of a d×d matrix.
func jacobiEigen(a []float64, d int) ([]float64, []float64) {
	v := make([]float64, d*d)
	for i := 0; i < d; i++ {
		v[i*d+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off, diag float64
		for i := 0; i < d; i++ {
			diag += a[i*d+i] * a[i*d+i]
			for j := i + 1; j < d; j++ {
				off += a[i*d+j] * a[i*d+j]
			}
		}
		if off <= 1e-30*diag || off == 0 {
			break
		}
		for p := 0; p < d; p++ {
			for q := p + 1; q < d; q++ {
				apq := a[p*d+q]
				if apq == 0 {
					continue
				}
				app, aqq := a[p*d+p], a[q*d+q]
				theta := (aqq - app) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < d; k++ {
					akp, akq := a[k*d+p], a[k*d+q]
					a[k*d+p] = c*akp - s*akq
					a[k*d+q] = s*akp + c*akq
				}
				for k := 0; k < d; k++ {
					apk, aqk := a[p*d+k], a[q*d+k]
					a[p*d+k] = c*apk - s*aqk
					a[q*d+k] = s*apk + c*aqk
				}
				for k := 0; k < d; k++ {
					vkp, vkq := v[k*d+p], v[k*d+q]
					v[k*d+p] = c*vkp - s*vkq
					v[k*d+q] = s*vkp + c*vkq
				}
			}
		}
	}
	vals := make([]float64, d)
	for i := range vals {
		vals[i] = a[i*d+i]
	}
	return vals, v
}
