// Package flexidit is FlexiDiT (Anagnostidis et al., CVPR 2025) for
// Tessera's DiTs: the same network run at a weak, larger patch size beside
// its own, so that early denoising steps, which only need the coarse
// layout, cost a quarter of the tokens.
//
// A flexified model is the frozen base DiT plus, for the weak patch size:
//
//   - a patch embedding initialised by the pseudo-inverse of bilinear
//     resize (FlexiViT's PI-resize): for an 8×8 patch that is the bilinear
//     upsampling of a 4×4 patch x, the weak kernel w' gives the same token
//     as the base kernel w, ⟨B·x, w'⟩ = ⟨x, w⟩ with w' = B(BᵀB)⁻¹w;
//   - a de-embedding initialised as the bilinear upsampling of the base
//     projection, so each weak token predicts the upsampled 4×4 patch;
//   - positions from patch centres in pixel coordinates, expressed in the
//     base grid's units (an 8×8 patch at column j sits at 2j + 0.5), fed to
//     the base's sin-cos embedding;
//   - a learned patch-size embedding added to every weak token;
//   - either LoRA adapters on attention and MLP used only at the weak size
//     (the paper's LoRA variant: the base stays frozen, so the powerful
//     patch size computes exactly what it did before flexifying), or no
//     adapters and shared weights (the paper's shared-parameters variant:
//     one network for both patch sizes, fine-tuned as a whole).
//
// Fine-tuning (Train) trains on the flow-matching target plus distillation
// to the original powerful model's prediction.
package flexidit

import (
	"fmt"
	"math"

	"tessera/autodiff"
	"tessera/dit"
	"tessera/internal/parallel"
	"tessera/nn"
	"tessera/tensor"
)

// Config is a flexified model's own settings (flex.json).
type Config struct {
	WeakPatch int `json:"weak_patch_size"` // the weak patch size (default 2× the base's)
	LoRARank  int `json:"lora_rank"`       // 0: no adapters, shared weights
	LoRAAlpha int `json:"lora_alpha"`
	// Shared is the shared-parameters variant (set by Flexify when
	// LoRARank is 0): Train fine-tunes the base's weights too, and Save
	// and Load carry them with the weak parts.
	Shared bool `json:"shared_weights,omitempty"`
	// LoRAModulation also adapts each block's adaLN modulation (and the
	// final layer's), so the weak size gets its own class- and
	// time-dependent scales, shifts and gates.
	LoRAModulation bool `json:"lora_modulation,omitempty"`
	// Base names the model the weak parts belong to (informational).
	Base string `json:"base,omitempty"`
	// NoFineSkip turns off the fine-detail skip of the weak path (see
	// ForwardWeak); FineVar is the data's energy outside the weak patch's
	// coarse subspace relative to the noise's (Train measures it; 0 reads
	// as DefaultFineVar).
	NoFineSkip bool    `json:"no_fine_skip,omitempty"`
	FineVar    float64 `json:"fine_var,omitempty"`
}

// DefaultFineVar is the FineVar used before Train has measured it.
const DefaultFineVar = 0.25

// Conditioning is what the network is conditioned on, behind integer
// labels: a class-conditional DiT's classes (the default: the base model
// itself), or the prompts of a text-to-image model (t2i.Prompted).
type Conditioning interface {
	// Condition returns the adaLN input [B, 1, D] for times t and labels y.
	Condition(g *autodiff.Graph, t []float32, y []int) *autodiff.Var
	// Predict is the powerful model's prediction.
	Predict(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error)
	// Null is the label of the unconditional branch.
	Null() int
}

// Model is a base DiT with a weak patch size.
type Model struct {
	Config Config     `safetensors:"-"`
	Base   *dit.Model `safetensors:"-"`
	// Cond conditions the network when the base's own class labels do not
	// (a text-to-image model's prompts); nil means the base.
	Cond Conditioning `safetensors:"-"`

	WeakEmbed *nn.PatchEmbed `safetensors:"weak_x_embedder"`
	WeakFinal *nn.Linear     `safetensors:"weak_final_linear"` // [pw·pw·C_out, D]
	PatchEmb  *autodiff.Var  `safetensors:"patch_size_embed"`  // [1, 1, D], weak tokens only
	LoRA      []*Adapter     `safetensors:"weak_lora"`         // one per adapted base linear, in base order
	// SharedBase is Base in the shared-parameters variant (its fine-tuned
	// weights are saved and loaded with the weak parts), nil otherwise.
	SharedBase *dit.Model    `safetensors:"base,optional"`
	weakPos    *autodiff.Var // [1, Tw, D], fixed
	folded     *foldCache    // the adapted layers PredictWeak runs, shared by copies of the Model
	proj       []float32     // P₁ [pw, pw]: the weak patch's coarse projection is P₁ ⊗ P₁ (fineSkip)
}

// Adapter is a weak-only LoRA on one of the base's linear layers.
type Adapter struct {
	A *autodiff.Var `safetensors:"lora_A"` // [r, in]
	B *autodiff.Var `safetensors:"lora_B"` // [out, r]

	target *nn.Linear
	scale  float32
}

// Flexify returns m with a weak patch size, its parts initialised so that
// the weak model is the base model applied to the bilinearly downsampled
// image, as far as a linear resize allows.
func Flexify(m *dit.Model, cfg Config, rng *tensor.RNG) (*Model, error) {
	bc := m.Config
	if cfg.WeakPatch == 0 {
		cfg.WeakPatch = 2 * bc.PatchSize
	}
	pw, p := cfg.WeakPatch, bc.PatchSize
	if pw <= p || bc.InputSize%pw != 0 {
		return nil, fmt.Errorf("flexidit: weak patch size %d must exceed %d and divide the input size %d", pw, p, bc.InputSize)
	}
	if cfg.LoRAModulation && cfg.LoRARank == 0 {
		return nil, fmt.Errorf("flexidit: LoRA on the modulations needs a LoRA rank")
	}
	if cfg.LoRARank < 0 {
		return nil, fmt.Errorf("flexidit: LoRA rank %d", cfg.LoRARank)
	}
	if cfg.LoRAAlpha == 0 {
		cfg.LoRAAlpha = max(cfg.LoRARank, 1)
	}
	cfg.Shared = cfg.LoRARank == 0
	d, c, co := bc.HiddenSize, bc.InChannels, bc.OutChannels()
	f := &Model{Config: cfg, Base: m, folded: &foldCache{}}
	if cfg.Shared {
		f.SharedBase = m
	}
	r := Resize(pw, p) // [pw, p]
	up := kron(r, r)   // [pw², p²]
	pinvT := pinvTranspose(r)
	embedT := kron(pinvT, pinvT) // [pw², p²]: B(BᵀB)⁻¹
	f.proj = axisProjection(r, pinvT)

	f.WeakEmbed = nn.NewPatchEmbed(rng, c, d, pw)
	wb, ww := m.XEmbedder.Proj.Weight.Value.Contiguous().Data(), f.WeakEmbed.Proj.Weight.Value.Data()
	for o := 0; o < d*c; o++ { // each (out, in-channel) kernel
		apply(ww[o*pw*pw:(o+1)*pw*pw], embedT, wb[o*p*p:(o+1)*p*p])
	}
	f.WeakEmbed.Proj.Bias.Value.CopyFrom(m.XEmbedder.Proj.Bias.Value)

	// De-embedding: rows of the final projection are laid out [p, p, C].
	f.WeakFinal = nn.NewLinear(rng, d, pw*pw*co, true)
	fb := m.FinalLayer.Linear.Weight.Value.Contiguous().Data()
	fbb := m.FinalLayer.Linear.Bias.Value.Contiguous().Data()
	fw, fwb := f.WeakFinal.Weight.Value.Data(), f.WeakFinal.Bias.Value.Data()
	for ch := 0; ch < co; ch++ {
		for q := 0; q < pw*pw; q++ {
			row := fw[(q*co+ch)*d : (q*co+ch+1)*d]
			clear(row)
			fwb[q*co+ch] = 0
			for k := 0; k < p*p; k++ {
				wgt := float32(up[q*p*p+k])
				if wgt == 0 {
					continue
				}
				src := fb[(k*co+ch)*d : (k*co+ch+1)*d]
				for j := range row {
					row[j] += wgt * src[j]
				}
				fwb[q*co+ch] += wgt * fbb[k*co+ch]
			}
		}
	}
	f.PatchEmb = autodiff.Param(tensor.New(1, 1, d))
	f.weakPos = autodiff.Const(CentrePosEmbed(d, bc.InputSize, p, pw))
	if cfg.LoRARank > 0 {
		var targets []*nn.Linear
		for _, blk := range m.Blocks {
			targets = append(targets, blk.Attn.QKV, blk.Attn.Proj, blk.MLP.FC1, blk.MLP.FC2)
			if cfg.LoRAModulation {
				targets = append(targets, blk.AdaLN)
			}
		}
		if cfg.LoRAModulation {
			targets = append(targets, m.FinalLayer.AdaLN)
		}
		for _, l := range targets {
			a := tensor.New(cfg.LoRARank, l.In())
			nn.LinearDefault(rng, a, nil)
			f.LoRA = append(f.LoRA, &Adapter{A: autodiff.Param(a), B: autodiff.Param(tensor.New(l.Out(), cfg.LoRARank)),
				target: l, scale: float32(cfg.LoRAAlpha) / float32(cfg.LoRARank)})
		}
	}
	return f, nil
}

// Resize is the bilinear resize matrix [out, in] of one axis with half-pixel
// centres (PyTorch's align_corners=False): output pixel o samples the
// input at (o + ½)·in/out − ½, clamped to the edge pixels.
func Resize(out, in int) [][]float64 {
	r := make([][]float64, out)
	for o := range r {
		r[o] = make([]float64, in)
		x := (float64(o)+0.5)*float64(in)/float64(out) - 0.5
		x = math.Max(0, math.Min(x, float64(in-1)))
		lo := int(math.Floor(x))
		hi := min(lo+1, in-1)
		w := x - float64(lo)
		r[o][lo] += 1 - w
		r[o][hi] += w
	}
	return r
}

// pinvTranspose returns R(RᵀR)⁻¹ [out, in], so that (R⊗R)ᵀ applied to the
// Kronecker square of it is the identity.
func pinvTranspose(r [][]float64) [][]float64 {
	in := len(r[0])
	g := make([][]float64, in) // RᵀR
	for i := range g {
		g[i] = make([]float64, in)
		for j := range g[i] {
			for _, row := range r {
				g[i][j] += row[i] * row[j]
			}
		}
	}
	inv := invert(g)
	out := make([][]float64, len(r))
	for o := range out {
		out[o] = make([]float64, in)
		for j := 0; j < in; j++ {
			for k := 0; k < in; k++ {
				out[o][j] += r[o][k] * inv[k][j]
			}
		}
	}
	return out
}

// invert is Gauss-Jordan inversion with partial pivoting of a small
// well-conditioned matrix.
func invert(a [][]float64) [][]float64 {
	n := len(a)
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, 2*n)
		copy(m[i], a[i])
		m[i][n+i] = 1
	}
	for col := 0; col < n; col++ {
		piv := col
		for r := col + 1; r < n; r++ {
			if math.Abs(m[r][col]) > math.Abs(m[piv][col]) {
				piv = r
			}
		}
		m[col], m[piv] = m[piv], m[col]
		d := m[col][col]
		for j := range m[col] {
			m[col][j] /= d
		}
		for r := 0; r < n; r++ {
			if r != col && m[r][col] != 0 {
				f := m[r][col]
				for j := range m[r] {
					m[r][j] -= f * m[col][j]
				}
			}
		}
	}
	out := make([][]float64, n)
	for i := range out {
		out[i] = m[i][n:]
	}
	return out
}

// kron is the Kronecker product a⊗b as a flat row-major matrix
// [ra·rb, ca·cb]: it acts on row-major 2-d patches.
func kron(a, b [][]float64) []float64 {
	ra, ca, rb, cb := len(a), len(a[0]), len(b), len(b[0])
	out := make([]float64, ra*rb*ca*cb)
	cols := ca * cb
	for i := 0; i < ra; i++ {
		for k := 0; k < rb; k++ {
			for j := 0; j < ca; j++ {
				for l := 0; l < cb; l++ {
					out[(i*rb+k)*cols+j*cb+l] = a[i][j] * b[k][l]
				}
			}
		}
	}
	return out
}

// apply sets dst = M·src for a flat row-major M [len(dst), len(src)].
func apply(dst []float32, m []float64, src []float32) {
	n := len(src)
	for i := range dst {
		s := 0.0
		for j, v := range src {
			s += m[i*n+j] * float64(v)
		}
		dst[i] = float32(s)
	}
}

// CentrePosEmbed is the base's 2-d sin-cos position embedding [1, T, dim]
// for patches of size patch over an input×input image, each placed at its
// centre in pixels expressed in units of the base patch size: column j of
// the patch grid sits at (patch·j + patch/2 − base/2)/base. At patch ==
// base this is dit.PosEmbed.
func CentrePosEmbed(dim, input, base, patch int) *tensor.Tensor {
	grid := input / patch
	q := dim / 4
	omega := make([]float64, q)
	for k := range omega {
		omega[k] = 1 / math.Pow(10000, float64(k)/float64(q))
	}
	pos := func(j int) float64 {
		return (float64(patch*j) + float64(patch)/2 - float64(base)/2) / float64(base)
	}
	out := tensor.New(1, grid*grid, dim)
	d := out.Data()
	for i := 0; i < grid; i++ {
		for j := 0; j < grid; j++ {
			row := d[(i*grid+j)*dim : (i*grid+j+1)*dim]
			for k, w := range omega {
				row[k] = float32(math.Sin(pos(j) * w))
				row[q+k] = float32(math.Cos(pos(j) * w))
				row[2*q+k] = float32(math.Sin(pos(i) * w))
				row[3*q+k] = float32(math.Cos(pos(i) * w))
			}
		}
	}
	return out
}

// Trainable is the weak parts' parameters (without the base's, which
// Train adds in the shared-parameters variant).
func (f *Model) Trainable() []*autodiff.Var {
	ps := []*autodiff.Var{f.WeakEmbed.Proj.Weight, f.WeakEmbed.Proj.Bias, f.WeakFinal.Weight, f.WeakFinal.Bias, f.PatchEmb}
	for _, a := range f.LoRA {
		ps = append(ps, a.A, a.B)
	}
	return ps
}

// withAdapters runs fn with the weak LoRA adapters plugged into the base's
// linear layers, and unplugs them afterwards.
func (f *Model) withAdapters(fn func()) {
	for _, a := range f.LoRA {
		a.target.LoraA, a.target.LoraB, a.target.LoraScale = a.A, a.B, a.scale
	}
	defer func() {
		for _, a := range f.LoRA {
			a.target.LoraA, a.target.LoraB, a.target.LoraScale = nil, nil, 0
		}
	}()
	fn()
}

// ForwardWeak runs the network at the weak patch size on x [B, C, H, W]:
// [B, C_out, H, W].
func (f *Model) ForwardWeak(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int) *autodiff.Var {
	return f.forwardWeak(g, x, t, y, f.withAdapters)
}

// forwardWeak is ForwardWeak with the base's layers adapted by with
// (withAdapters plugs the LoRA adapters in, withMerged folds them in).
func (f *Model) forwardWeak(g *autodiff.Graph, x *autodiff.Var, t []float32, y []int, with func(func())) *autodiff.Var {
	m := f.Base
	var out *autodiff.Var
	with(func() {
		h := g.Add(g.Add(f.WeakEmbed.Forward(g, x), f.weakPos), f.PatchEmb) // [B, Tw, D]
		c := f.conditioning().Condition(g, t, y)
		for _, blk := range m.Blocks {
			h = blk.Forward(g, h, c)
		}
		fl := &dit.FinalLayer{AdaLN: m.FinalLayer.AdaLN, Linear: f.WeakFinal}
		pw := f.Config.WeakPatch
		out = dit.Unpatchify(g, fl.Forward(g, h, c), pw, m.Config.OutChannels(), m.Config.InputSize/pw)
	})
	if !f.Config.NoFineSkip {
		out = g.Add(out, autodiff.Const(f.fineSkip(x.Value, t)))
	}
	return out
}

// fineSkip is the weak path's fine-detail skip for x [B, C, H, W] at
// times t: k(s)·(x − P·x) in the first C output channels, where P
// projects each weak patch onto the bilinear upsamplings of base-sized
// patches (the only detail the pseudo-inverse embedding passes on and the
// upsampled de-embedding can produce) and k(s) is the least-squares gain
// of the velocity ε − x0 on x_s in that residual subspace, with the data
// holding FineVar of the noise's energy there:
// k(s) = (s − (1−s)·FineVar) / (s² + (1−s)²·FineVar). At high noise the
// residual is mostly noise the velocity must carry (k → 1 at s = 1); at low
// noise it is the data's fine detail (k → −1 at s = 0), which the network
// has to correct.
func (f *Model) fineSkip(x *tensor.Tensor, t []float32) *tensor.Tensor {
	cfg := f.Base.Config
	b, c, side := x.Dim(0), x.Dim(1), x.Dim(2)
	pw := f.Config.WeakPatch
	co := cfg.OutChannels()
	fv := f.Config.FineVar
	if fv <= 0 {
		fv = DefaultFineVar
	}
	proj := f.proj
	out := tensor.New(b, co, side, side)
	xd, od := x.Contiguous().Data(), out.Data()
	parallel.For(b, 1, func(lo, hi int) {
		tmp := make([]float32, side*side)
		for i := lo; i < hi; i++ {
			s := float64(t[i]) / 1000
			k := float32((s - (1-s)*fv) / (s*s + (1-s)*(1-s)*fv))
			for ch := 0; ch < c; ch++ {
				src := xd[(i*c+ch)*side*side : (i*c+ch+1)*side*side]
				dst := od[(i*co+ch)*side*side : (i*co+ch+1)*side*side]
				// P = P₁ ⊗ P₁ on each weak patch: rows first, into tmp ...
				for r := 0; r < side; r++ {
					row, tr := src[r*side:(r+1)*side], tmp[r*side:(r+1)*side]
					for p0 := 0; p0 < side; p0 += pw {
						seg := row[p0 : p0+pw]
						for u := 0; u < pw; u++ {
							pr := proj[u*pw : (u+1)*pw]
							sum := float32(0)
							for v, xv := range seg {
								sum += pr[v] * xv
							}
							tr[p0+u] = sum
						}
					}
				}
				// ... then columns, and the residual x − P·x scaled by k.
				for p0 := 0; p0 < side; p0 += pw {
					for u := 0; u < pw; u++ {
						pr := proj[u*pw : (u+1)*pw]
						drow, srow := dst[(p0+u)*side:(p0+u+1)*side], src[(p0+u)*side:(p0+u+1)*side]
						clear(drow)
						for v, w := range pr {
							trow := tmp[(p0+v)*side : (p0+v+1)*side]
							for j, tv := range trow {
								drow[j] += w * tv
							}
						}
						for j, xv := range srow {
							drow[j] = k * (xv - drow[j])
						}
					}
				}
			}
		}
	})
	return out
}

// axisProjection is P₁ = r·pinvTᵀ [pw, pw], the one-axis factor of the
// weak patch's projection onto upsampled base-sized patches: with the
// upsampling B = r ⊗ r and the pseudo-inverse embedding B(BᵀB)⁻¹ =
// pinvT ⊗ pinvT, P = B·(B(BᵀB)⁻¹)ᵀ = P₁ ⊗ P₁.
func axisProjection(r, pinvT [][]float64) []float32 {
	pw := len(r)
	out := make([]float32, pw*pw)
	for u := range pw {
		for v := range pw {
			sum := 0.0
			for a := range r[u] {
				sum += r[u][a] * pinvT[v][a]
			}
			out[u*pw+v] = float32(sum)
		}
	}
	return out
}

// FineEnergy is the mean squared residual of x [B, C, H, W] outside the
// weak patches' coarse subspace (see fineSkip), per pixel; for white noise
// it is 1 − (p/pw)².
func (f *Model) FineEnergy(x *tensor.Tensor) float64 {
	t := make([]float32, x.Dim(0))
	for i := range t {
		t[i] = 1000 // k(1) = 1: the residual itself
	}
	r := f.fineSkip(x, t).Data()
	sum := 0.0
	for _, v := range r {
		sum += float64(v) * float64(v)
	}
	c, co := x.Dim(1), f.Base.Config.OutChannels()
	return sum / float64(len(r)) * float64(co) / float64(c)
}

// PredictWeak is dit.Model.Predict at the weak patch size. The LoRA
// adapters are folded into copies of the base's layers (withMerged, once
// per precision; see ResetFolded), so each adapted layer multiplies once,
// at the layer's precision, as the base model does.
func (f *Model) PredictWeak(x *tensor.Tensor, t []float32, y []int) (*tensor.Tensor, error) {
	m := f.Base
	if err := f.check(x.Shape(), t, y); err != nil {
		return nil, fmt.Errorf("flexidit: %w", err)
	}
	g := autodiff.NoGrad()
	defer g.Release()
	return m.Channels(f.forwardWeak(g, autodiff.Const(x), t, y, f.withMerged).Value), nil
}

// conditioning is f.Cond, or the base model.
func (f *Model) conditioning() Conditioning {
	if f.Cond != nil {
		return f.Cond
	}
	return f.Base
}

// check validates a batch's shapes and labels.
func (f *Model) check(shape []int, t []float32, y []int) error {
	if f.Cond == nil {
		if f.Base.YEmbedder == nil {
			return fmt.Errorf("the base DiT has no class embedding: its conditioning (Cond) must be set")
		}
		return f.Base.Check(shape, t, y)
	}
	cfg := f.Base.Config
	if len(shape) != 4 || shape[0] < 1 || shape[1] != cfg.InChannels || shape[2] != cfg.InputSize || shape[3] != cfg.InputSize {
		return fmt.Errorf("input shape %v, want [B, %d, %d, %d]", shape, cfg.InChannels, cfg.InputSize, cfg.InputSize)
	}
	if len(t) != shape[0] || len(y) != shape[0] {
		return fmt.Errorf("batch of %d with %d times and %d labels", shape[0], len(t), len(y))
	}
	for i, k := range y {
		if k < 0 || k > f.Cond.Null() {
			return fmt.Errorf("label %d of sample %d outside 0..%d", k, i, f.Cond.Null())
		}
	}
	return nil
}

// foldCache holds, per adapter, the base layer with the adapter folded in
// and the precision it was folded at.
type foldCache struct {
	layers []*nn.Linear
	prec   []nn.Precision
}

// ResetFolded drops the folded layers PredictWeak keeps between calls.
// Call it after changing the adapters' or the base's weights by hand;
// Train does.
func (f *Model) ResetFolded() {
	if f.folded != nil {
		f.folded.layers, f.folded.prec = nil, nil
	}
}

// withMerged runs fn with every adapted base layer replaced by its copy
// computing W + scale·B·A at the layer's precision, and restores the
// layers afterwards. The copies are made on the first call (and again
// when a layer's precision changes) and kept: a weak pass then
// multiplies once per layer, as the base does, with nothing to fold.
func (f *Model) withMerged(fn func()) {
	c := f.folded
	if c != nil && len(c.layers) != len(f.LoRA) {
		c.layers, c.prec = make([]*nn.Linear, len(f.LoRA)), make([]nn.Precision, len(f.LoRA))
	}
	saved := make([]nn.Linear, len(f.LoRA))
	for i, a := range f.LoRA {
		saved[i] = *a.target
		var m *nn.Linear
		if c != nil && c.layers[i] != nil && c.prec[i] == a.target.Precision() {
			m = c.layers[i]
		} else {
			m = a.target.Folded(a.A.Value, a.B.Value, a.scale)
			if c != nil {
				c.layers[i], c.prec[i] = m, a.target.Precision()
			}
		}
		*a.target = *m
	}
	defer func() {
		for i, a := range f.LoRA {
			*a.target = saved[i]
		}
	}()
	fn()
}

// WeakConfig is the base config at the weak patch size (for FLOP counts).
func (f *Model) WeakConfig() dit.Config {
	c := f.Base.Config
	c.PatchSize = f.Config.WeakPatch
	return c
}
