//go:build amd64 && !purego

#include "textflag.h"

// Register use of gemmAVX512 and gemmAVX2:
//   DI  c, current block of 4 rows      R8  ldc in bytes
//   SI  a, current block of 4 rows      R9  ars in bytes, BX 3*ars
//   R10 aps in bytes                    DX  b
//   R11 ldb in bytes                    CX  beta (0: none), current block
//   AX  column offset in bytes          R12 a pointer / scratch
//   R13 b pointer / scratch             R14 k counter / scratch
// m and n stay in the argument slots.

// func gemmAVX512(c *float32, ldc int, a *float32, ars, aps int, b *float32, ldb, m, k, n int, beta *float32)
TEXT ·gemmAVX512(SB), NOSPLIT, $0-88
	MOVQ c+0(FP), DI
	MOVQ ldc+8(FP), R8
	SHLQ $2, R8
	MOVQ a+16(FP), SI
	MOVQ ars+24(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), BX
	MOVQ aps+32(FP), R10
	SHLQ $2, R10
	MOVQ b+40(FP), DX
	MOVQ ldb+48(FP), R11
	SHLQ $2, R11
	MOVQ beta+80(FP), CX

z_rows:
	CMPQ m+56(FP), $0
	JLE  z_done
	XORQ AX, AX

z_cols:
	MOVQ n+72(FP), R12
	SHLQ $2, R12
	SUBQ AX, R12
	CMPQ R12, $256
	JGE  z_b64
	CMPQ R12, $64
	JGE  z_b16
	CMPQ R12, $0
	JG   z_tail
	JMP  z_nextrows

z_b64:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15
	LEAQ   (DX)(AX*1), R13
	MOVQ   SI, R12
	MOVQ   k+64(FP), R14
	TESTQ  R14, R14
	JZ     z_s64

z_k64:
	VMOVUPS      (R13), Z16
	VMOVUPS      64(R13), Z17
	VMOVUPS      128(R13), Z18
	VMOVUPS      192(R13), Z19
	VBROADCASTSS (R12), Z20
	VBROADCASTSS (R12)(R9*1), Z21
	VBROADCASTSS (R12)(R9*2), Z22
	VBROADCASTSS (R12)(BX*1), Z23
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z17, Z20, Z1
	VFMADD231PS  Z18, Z20, Z2
	VFMADD231PS  Z19, Z20, Z3
	VFMADD231PS  Z16, Z21, Z4
	VFMADD231PS  Z17, Z21, Z5
	VFMADD231PS  Z18, Z21, Z6
	VFMADD231PS  Z19, Z21, Z7
	VFMADD231PS  Z16, Z22, Z8
	VFMADD231PS  Z17, Z22, Z9
	VFMADD231PS  Z18, Z22, Z10
	VFMADD231PS  Z19, Z22, Z11
	VFMADD231PS  Z16, Z23, Z12
	VFMADD231PS  Z17, Z23, Z13
	VFMADD231PS  Z18, Z23, Z14
	VFMADD231PS  Z19, Z23, Z15
	ADDQ         R10, R12
	ADDQ         R11, R13
	DECQ         R14
	JNZ          z_k64

z_s64:
	LEAQ  (DI)(AX*1), R12
	LEAQ  (R12)(R8*2), R13
	TESTQ CX, CX
	JZ    z_w64
	VBROADCASTSS (CX), Z20
	VBROADCASTSS 4(CX), Z21
	VBROADCASTSS 8(CX), Z22
	VBROADCASTSS 12(CX), Z23
	VFMADD231PS  (R12), Z20, Z0
	VFMADD231PS  64(R12), Z20, Z1
	VFMADD231PS  128(R12), Z20, Z2
	VFMADD231PS  192(R12), Z20, Z3
	VFMADD231PS  (R12)(R8*1), Z21, Z4
	VFMADD231PS  64(R12)(R8*1), Z21, Z5
	VFMADD231PS  128(R12)(R8*1), Z21, Z6
	VFMADD231PS  192(R12)(R8*1), Z21, Z7
	VFMADD231PS  (R13), Z22, Z8
	VFMADD231PS  64(R13), Z22, Z9
	VFMADD231PS  128(R13), Z22, Z10
	VFMADD231PS  192(R13), Z22, Z11
	VFMADD231PS  (R13)(R8*1), Z23, Z12
	VFMADD231PS  64(R13)(R8*1), Z23, Z13
	VFMADD231PS  128(R13)(R8*1), Z23, Z14
	VFMADD231PS  192(R13)(R8*1), Z23, Z15

z_w64:
	VMOVUPS Z0, (R12)
	VMOVUPS Z1, 64(R12)
	VMOVUPS Z2, 128(R12)
	VMOVUPS Z3, 192(R12)
	VMOVUPS Z4, (R12)(R8*1)
	VMOVUPS Z5, 64(R12)(R8*1)
	VMOVUPS Z6, 128(R12)(R8*1)
	VMOVUPS Z7, 192(R12)(R8*1)
	VMOVUPS Z8, (R13)
	VMOVUPS Z9, 64(R13)
	VMOVUPS Z10, 128(R13)
	VMOVUPS Z11, 192(R13)
	VMOVUPS Z12, (R13)(R8*1)
	VMOVUPS Z13, 64(R13)(R8*1)
	VMOVUPS Z14, 128(R13)(R8*1)
	VMOVUPS Z15, 192(R13)(R8*1)
	ADDQ    $256, AX
	JMP     z_cols

z_b16:
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	LEAQ   (DX)(AX*1), R13
	MOVQ   SI, R12
	MOVQ   k+64(FP), R14
	TESTQ  R14, R14
	JZ     z_s16

z_k16:
	VMOVUPS      (R13), Z16
	VBROADCASTSS (R12), Z20
	VBROADCASTSS (R12)(R9*1), Z21
	VBROADCASTSS (R12)(R9*2), Z22
	VBROADCASTSS (R12)(BX*1), Z23
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z16, Z21, Z1
	VFMADD231PS  Z16, Z22, Z2
	VFMADD231PS  Z16, Z23, Z3
	ADDQ         R10, R12
	ADDQ         R11, R13
	DECQ         R14
	JNZ          z_k16

z_s16:
	LEAQ  (DI)(AX*1), R12
	LEAQ  (R12)(R8*2), R13
	TESTQ CX, CX
	JZ    z_w16
	VBROADCASTSS (CX), Z20
	VBROADCASTSS 4(CX), Z21
	VBROADCASTSS 8(CX), Z22
	VBROADCASTSS 12(CX), Z23
	VFMADD231PS  (R12), Z20, Z0
	VFMADD231PS  (R12)(R8*1), Z21, Z1
	VFMADD231PS  (R13), Z22, Z2
	VFMADD231PS  (R13)(R8*1), Z23, Z3

z_w16:
	VMOVUPS Z0, (R12)
	VMOVUPS Z1, (R12)(R8*1)
	VMOVUPS Z2, (R13)
	VMOVUPS Z3, (R13)(R8*1)
	ADDQ    $64, AX
	JMP     z_cols

z_tail:
	// R12 holds the remaining bytes (4..60): a mask of R12/4 low bits.
	SHRQ   $2, R12
	LEAQ   ·tailMask16(SB), R14
	KMOVW  (R14)(R12*2), K1
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	LEAQ   (DX)(AX*1), R13
	MOVQ   SI, R12
	MOVQ   k+64(FP), R14
	TESTQ  R14, R14
	JZ     z_st

z_kt:
	VMOVUPS.Z    (R13), K1, Z16
	VBROADCASTSS (R12), Z20
	VBROADCASTSS (R12)(R9*1), Z21
	VBROADCASTSS (R12)(R9*2), Z22
	VBROADCASTSS (R12)(BX*1), Z23
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z16, Z21, Z1
	VFMADD231PS  Z16, Z22, Z2
	VFMADD231PS  Z16, Z23, Z3
	ADDQ         R10, R12
	ADDQ         R11, R13
	DECQ         R14
	JNZ          z_kt

z_st:
	LEAQ  (DI)(AX*1), R12
	LEAQ  (R12)(R8*2), R13
	TESTQ CX, CX
	JZ    z_wt
	VBROADCASTSS (CX), Z20
	VBROADCASTSS 4(CX), Z21
	VBROADCASTSS 8(CX), Z22
	VBROADCASTSS 12(CX), Z23
	VMOVUPS.Z    (R12), K1, Z16
	VMOVUPS.Z    (R12)(R8*1), K1, Z17
	VMOVUPS.Z    (R13), K1, Z18
	VMOVUPS.Z    (R13)(R8*1), K1, Z19
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z17, Z21, Z1
	VFMADD231PS  Z18, Z22, Z2
	VFMADD231PS  Z19, Z23, Z3

z_wt:
	VMOVUPS Z0, K1, (R12)
	VMOVUPS Z1, K1, (R12)(R8*1)
	VMOVUPS Z2, K1, (R13)
	VMOVUPS Z3, K1, (R13)(R8*1)

z_nextrows:
	LEAQ  (DI)(R8*4), DI
	LEAQ  (SI)(R9*4), SI
	TESTQ CX, CX
	JZ    z_nobeta
	ADDQ  $16, CX

z_nobeta:
	SUBQ $4, m+56(FP)
	JMP  z_rows

z_done:
	VZEROUPPER
	RET

// func gemmAVX2(c *float32, ldc int, a *float32, ars, aps int, b *float32, ldb, m, k, n int, beta *float32)
TEXT ·gemmAVX2(SB), NOSPLIT, $0-88
	MOVQ c+0(FP), DI
	MOVQ ldc+8(FP), R8
	SHLQ $2, R8
	MOVQ a+16(FP), SI
	MOVQ ars+24(FP), R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), BX
	MOVQ aps+32(FP), R10
	SHLQ $2, R10
	MOVQ b+40(FP), DX
	MOVQ ldb+48(FP), R11
	SHLQ $2, R11
	MOVQ beta+80(FP), CX

y_rows:
	CMPQ m+56(FP), $0
	JLE  y_done
	XORQ AX, AX

y_cols:
	MOVQ n+72(FP), R12
	SHLQ $2, R12
	SUBQ AX, R12
	CMPQ R12, $64
	JGE  y_b16
	CMPQ R12, $32
	JGE  y_b8
	CMPQ R12, $0
	JG   y_tail
	JMP  y_nextrows

y_b16:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	LEAQ   (DX)(AX*1), R13
	MOVQ   SI, R12
	MOVQ   k+64(FP), R14
	TESTQ  R14, R14
	JZ     y_s16

y_k16:
	VMOVUPS      (R13), Y8
	VMOVUPS      32(R13), Y9
	VBROADCASTSS (R12), Y10
	VBROADCASTSS (R12)(R9*1), Y11
	VBROADCASTSS (R12)(R9*2), Y12
	VBROADCASTSS (R12)(BX*1), Y13
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y9, Y10, Y1
	VFMADD231PS  Y8, Y11, Y2
	VFMADD231PS  Y9, Y11, Y3
	VFMADD231PS  Y8, Y12, Y4
	VFMADD231PS  Y9, Y12, Y5
	VFMADD231PS  Y8, Y13, Y6
	VFMADD231PS  Y9, Y13, Y7
	ADDQ         R10, R12
	ADDQ         R11, R13
	DECQ         R14
	JNZ          y_k16

y_s16:
	LEAQ  (DI)(AX*1), R12
	LEAQ  (R12)(R8*2), R13
	TESTQ CX, CX
	JZ    y_w16
	VBROADCASTSS (CX), Y10
	VBROADCASTSS 4(CX), Y11
	VBROADCASTSS 8(CX), Y12
	VBROADCASTSS 12(CX), Y13
	VFMADD231PS  (R12), Y10, Y0
	VFMADD231PS  32(R12), Y10, Y1
	VFMADD231PS  (R12)(R8*1), Y11, Y2
	VFMADD231PS  32(R12)(R8*1), Y11, Y3
	VFMADD231PS  (R13), Y12, Y4
	VFMADD231PS  32(R13), Y12, Y5
	VFMADD231PS  (R13)(R8*1), Y13, Y6
	VFMADD231PS  32(R13)(R8*1), Y13, Y7

y_w16:
	VMOVUPS Y0, (R12)
	VMOVUPS Y1, 32(R12)
	VMOVUPS Y2, (R12)(R8*1)
	VMOVUPS Y3, 32(R12)(R8*1)
	VMOVUPS Y4, (R13)
	VMOVUPS Y5, 32(R13)
	VMOVUPS Y6, (R13)(R8*1)
	VMOVUPS Y7, 32(R13)(R8*1)
	ADDQ    $64, AX
	JMP     y_cols

y_b8:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ   (DX)(AX*1), R13
	MOVQ   SI, R12
	MOVQ   k+64(FP), R14
	TESTQ  R14, R14
	JZ     y_s8

y_k8:
	VMOVUPS      (R13), Y8
	VBROADCASTSS (R12), Y10
	VBROADCASTSS (R12)(R9*1), Y11
	VBROADCASTSS (R12)(R9*2), Y12
	VBROADCASTSS (R12)(BX*1), Y13
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y8, Y11, Y1
	VFMADD231PS  Y8, Y12, Y2
	VFMADD231PS  Y8, Y13, Y3
	ADDQ         R10, R12
	ADDQ         R11, R13
	DECQ         R14
	JNZ          y_k8

y_s8:
	LEAQ  (DI)(AX*1), R12
	LEAQ  (R12)(R8*2), R13
	TESTQ CX, CX
	JZ    y_w8
	VBROADCASTSS (CX), Y10
	VBROADCASTSS 4(CX), Y11
	VBROADCASTSS 8(CX), Y12
	VBROADCASTSS 12(CX), Y13
	VFMADD231PS  (R12), Y10, Y0
	VFMADD231PS  (R12)(R8*1), Y11, Y1
	VFMADD231PS  (R13), Y12, Y2
	VFMADD231PS  (R13)(R8*1), Y13, Y3

y_w8:
	VMOVUPS Y0, (R12)
	VMOVUPS Y1, (R12)(R8*1)
	VMOVUPS Y2, (R13)
	VMOVUPS Y3, (R13)(R8*1)
	ADDQ    $32, AX
	JMP     y_cols

y_tail:
	// R12 holds the remaining bytes (4..28); tailMask8[8-R12/4:] starts
	// with R12/4 all-ones lanes.
	SHRQ    $2, R12
	NEGQ    R12
	LEAQ    ·tailMask8+32(SB), R14
	VMOVUPS (R14)(R12*4), Y15
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1
	VXORPS  Y2, Y2, Y2
	VXORPS  Y3, Y3, Y3
	LEAQ    (DX)(AX*1), R13
	MOVQ    SI, R12
	MOVQ    k+64(FP), R14
	TESTQ   R14, R14
	JZ      y_st

y_kt:
	VMASKMOVPS   (R13), Y15, Y8
	VBROADCASTSS (R12), Y10
	VBROADCASTSS (R12)(R9*1), Y11
	VBROADCASTSS (R12)(R9*2), Y12
	VBROADCASTSS (R12)(BX*1), Y13
	VFMADD231PS  Y8, Y10, Y0
	VFMADD231PS  Y8, Y11, Y1
	VFMADD231PS  Y8, Y12, Y2
	VFMADD231PS  Y8, Y13, Y3
	ADDQ         R10, R12
	ADDQ         R11, R13
	DECQ         R14
	JNZ          y_kt

y_st:
	LEAQ  (DI)(AX*1), R12
	LEAQ  (R12)(R8*2), R13
	TESTQ CX, CX
	JZ    y_wt
	VBROADCASTSS (CX), Y10
	VBROADCASTSS 4(CX), Y11
	VBROADCASTSS 8(CX), Y12
	VBROADCASTSS 12(CX), Y13
	VMASKMOVPS   (R12), Y15, Y4
	VMASKMOVPS   (R12)(R8*1), Y15, Y5
	VMASKMOVPS   (R13), Y15, Y6
	VMASKMOVPS   (R13)(R8*1), Y15, Y7
	VFMADD231PS  Y4, Y10, Y0
	VFMADD231PS  Y5, Y11, Y1
	VFMADD231PS  Y6, Y12, Y2
	VFMADD231PS  Y7, Y13, Y3

y_wt:
	VMASKMOVPS Y0, Y15, (R12)
	VMASKMOVPS Y1, Y15, (R12)(R8*1)
	VMASKMOVPS Y2, Y15, (R13)
	VMASKMOVPS Y3, Y15, (R13)(R8*1)

y_nextrows:
	LEAQ  (DI)(R8*4), DI
	LEAQ  (SI)(R9*4), SI
	TESTQ CX, CX
	JZ    y_nobeta
	ADDQ  $16, CX

y_nobeta:
	SUBQ $4, m+56(FP)
	JMP  y_rows

y_done:
	VZEROUPPER
	RET

// expTab rows (8 lanes each), see expConsts: 0 negBig, 1 expLimit, 2 log2e,
// 3 ln2Hi, 4 ln2Lo, 5..11 the polynomial coefficients 1/5040 … 1/2, 1.

// EXP512 sets p = exp(x) (x is clobbered; n is scratch; K2 is scratch)
// with the constants in Z21…Z31.
#define EXP512(x, n, p) \
	VCMPPS       $0x1d, Z21, x, K2; \
	VMAXPS       Z21, x, x;         \
	VMULPS       Z22, x, n;         \
	VRNDSCALEPS  $0, n, n;          \
	VFNMADD231PS Z23, n, x;         \
	VFNMADD231PS Z24, n, x;         \
	VMOVAPS      Z25, p;            \
	VFMADD213PS  Z26, x, p;         \
	VFMADD213PS  Z27, x, p;         \
	VFMADD213PS  Z28, x, p;         \
	VFMADD213PS  Z29, x, p;         \
	VFMADD213PS  Z30, x, p;         \
	VFMADD213PS  Z31, x, p;         \
	VFMADD213PS  Z31, x, p;         \
	VSCALEFPS.Z  n, p, K2, p

#define LOADEXP512 \
	LEAQ         ·expTab(SB), R14; \
	VBROADCASTSS (R14), Z20;       \
	VBROADCASTSS 32(R14), Z21;     \
	VBROADCASTSS 64(R14), Z22;     \
	VBROADCASTSS 96(R14), Z23;     \
	VBROADCASTSS 128(R14), Z24;    \
	VBROADCASTSS 160(R14), Z25;    \
	VBROADCASTSS 192(R14), Z26;    \
	VBROADCASTSS 224(R14), Z27;    \
	VBROADCASTSS 256(R14), Z28;    \
	VBROADCASTSS 288(R14), Z29;    \
	VBROADCASTSS 320(R14), Z30;    \
	VBROADCASTSS 352(R14), Z31

// EXP256 sets p = exp(x) (x is clobbered; n and msk are scratch) with the
// constants read from expTab at R14.
#define EXP256(x, n, p, msk) \
	VCMPPS       $0x1d, 32(R14), x, msk; \
	VMAXPS       32(R14), x, x;          \
	VMULPS       64(R14), x, n;          \
	VROUNDPS     $0, n, n;               \
	VFNMADD231PS 96(R14), n, x;          \
	VFNMADD231PS 128(R14), n, x;         \
	VMOVUPS      160(R14), p;            \
	VFMADD213PS  192(R14), x, p;         \
	VFMADD213PS  224(R14), x, p;         \
	VFMADD213PS  256(R14), x, p;         \
	VFMADD213PS  288(R14), x, p;         \
	VFMADD213PS  320(R14), x, p;         \
	VFMADD213PS  352(R14), x, p;         \
	VFMADD213PS  352(R14), x, p;         \
	VCVTPS2DQ    n, n;                   \
	VPSLLD       $23, n, n;              \
	VPADDD       n, p, p;                \
	VANDPS       msk, p, p

// func softmaxColsAVX512(s *float32, ld, k, n int, m, l, alpha *float32)
TEXT ·softmaxColsAVX512(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), DI
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ k+16(FP), R9
	MOVQ n+24(FP), R10
	MOVQ m+32(FP), R11
	MOVQ l+40(FP), R12
	MOVQ alpha+48(FP), R13
	LOADEXP512

zs_cols:
	VMOVUPS (R11), Z0
	VMOVAPS Z0, Z1
	MOVQ    DI, SI
	MOVQ    R9, CX

zs_max:
	VMAXPS (SI), Z1, Z1
	ADDQ   R8, SI
	DECQ   CX
	JNZ    zs_max

	VMAXPS  Z20, Z1, Z1
	VMOVUPS Z1, (R11)
	VSUBPS  Z1, Z0, Z2
	EXP512(Z2, Z3, Z4)
	VMOVUPS Z4, (R13)
	VMULPS  (R12), Z4, Z5
	MOVQ    DI, SI
	MOVQ    R9, CX

zs_exp:
	VMOVUPS (SI), Z6
	VSUBPS  Z1, Z6, Z6
	EXP512(Z6, Z7, Z8)
	VMOVUPS Z8, (SI)
	VADDPS  Z8, Z5, Z5
	ADDQ    R8, SI
	DECQ    CX
	JNZ     zs_exp

	VMOVUPS Z5, (R12)
	ADDQ    $64, DI
	ADDQ    $64, R11
	ADDQ    $64, R12
	ADDQ    $64, R13
	SUBQ    $16, R10
	JG      zs_cols
	VZEROUPPER
	RET

// func softmaxColsAVX2(s *float32, ld, k, n int, m, l, alpha *float32)
TEXT ·softmaxColsAVX2(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), DI
	MOVQ ld+8(FP), R8
	SHLQ $2, R8
	MOVQ k+16(FP), R9
	MOVQ n+24(FP), R10
	MOVQ m+32(FP), R11
	MOVQ l+40(FP), R12
	MOVQ alpha+48(FP), R13
	LEAQ ·expTab(SB), R14

ys_cols:
	VMOVUPS (R11), Y0
	VMOVAPS Y0, Y1
	MOVQ    DI, SI
	MOVQ    R9, CX

ys_max:
	VMAXPS (SI), Y1, Y1
	ADDQ   R8, SI
	DECQ   CX
	JNZ    ys_max

	VMAXPS  (R14), Y1, Y1
	VMOVUPS Y1, (R11)
	VSUBPS  Y1, Y0, Y2
	EXP256(Y2, Y3, Y4, Y5)
	VMOVUPS Y4, (R13)
	VMULPS  (R12), Y4, Y6
	MOVQ    DI, SI
	MOVQ    R9, CX

ys_exp:
	VMOVUPS (SI), Y7
	VSUBPS  Y1, Y7, Y7
	EXP256(Y7, Y8, Y9, Y10)
	VMOVUPS Y9, (SI)
	VADDPS  Y9, Y6, Y6
	ADDQ    R8, SI
	DECQ    CX
	JNZ     ys_exp

	VMOVUPS Y6, (R12)
	ADDQ    $32, DI
	ADDQ    $32, R11
	ADDQ    $32, R12
	ADDQ    $32, R13
	SUBQ    $8, R10
	JG      ys_cols
	VZEROUPPER
	RET

// func softmaxGradColsAVX512(s, dp *float32, ld, k, n int, lse, delta *float32, scale float32)
TEXT ·softmaxGradColsAVX512(SB), NOSPLIT, $0-60
	MOVQ         s+0(FP), DI
	MOVQ         dp+8(FP), DX
	MOVQ         ld+16(FP), R8
	SHLQ         $2, R8
	MOVQ         k+24(FP), R9
	MOVQ         n+32(FP), R10
	MOVQ         lse+40(FP), R11
	MOVQ         delta+48(FP), R12
	VBROADCASTSS scale+56(FP), Z19
	LOADEXP512

zg_cols:
	VMOVUPS (R11), Z0
	VMOVUPS (R12), Z1
	MOVQ    DI, SI
	MOVQ    DX, BX
	MOVQ    R9, CX

zg_rows:
	VMOVUPS     (SI), Z2
	VSUBPS      Z0, Z2, Z2
	EXP512(Z2, Z3, Z4)
	VMOVUPS     Z4, (SI)
	VMOVUPS     (BX), Z5
	VSUBPS      Z1, Z5, Z5
	VMULPS      Z19, Z4, Z4
	VMULPS      Z4, Z5, Z5
	VMOVUPS     Z5, (BX)
	ADDQ        R8, SI
	ADDQ        R8, BX
	DECQ        CX
	JNZ         zg_rows

	ADDQ $64, DI
	ADDQ $64, DX
	ADDQ $64, R11
	ADDQ $64, R12
	SUBQ $16, R10
	JG   zg_cols
	VZEROUPPER
	RET

// func softmaxGradColsAVX2(s, dp *float32, ld, k, n int, lse, delta *float32, scale float32)
TEXT ·softmaxGradColsAVX2(SB), NOSPLIT, $0-60
	MOVQ         s+0(FP), DI
	MOVQ         dp+8(FP), DX
	MOVQ         ld+16(FP), R8
	SHLQ         $2, R8
	MOVQ         k+24(FP), R9
	MOVQ         n+32(FP), R10
	MOVQ         lse+40(FP), R11
	MOVQ         delta+48(FP), R12
	VBROADCASTSS scale+56(FP), Y15
	LEAQ         ·expTab(SB), R14

yg_cols:
	VMOVUPS (R11), Y0
	VMOVUPS (R12), Y1
	MOVQ    DI, SI
	MOVQ    DX, BX
	MOVQ    R9, CX

yg_rows:
	VMOVUPS (SI), Y2
	VSUBPS  Y0, Y2, Y2
	EXP256(Y2, Y3, Y4, Y5)
	VMOVUPS Y4, (SI)
	VMOVUPS (BX), Y6
	VSUBPS  Y1, Y6, Y6
	VMULPS  Y15, Y4, Y4
	VMULPS  Y4, Y6, Y6
	VMOVUPS Y6, (BX)
	ADDQ    R8, SI
	ADDQ    R8, BX
	DECQ    CX
	JNZ     yg_rows

	ADDQ $32, DI
	ADDQ $32, DX
	ADDQ $32, R11
	ADDQ $32, R12
	SUBQ $8, R10
	JG   yg_cols
	VZEROUPPER
	RET

// func dotKeysAVX512(s *float32, lds int, k *float32, ks int, q *float32, nk, d int)
TEXT ·dotKeysAVX512(SB), NOSPLIT, $0-56
	MOVQ  s+0(FP), DI
	MOVQ  lds+8(FP), R8
	SHLQ  $2, R8
	MOVQ  k+16(FP), SI
	MOVQ  ks+24(FP), R9
	SHLQ  $2, R9
	MOVQ  q+32(FP), DX
	MOVQ  nk+40(FP), CX
	MOVQ  d+48(FP), R10
	MOVQ  R10, R12
	ANDQ  $-16, R12
	SHLQ  $2, R12
	ANDQ  $15, R10
	LEAQ  ·tailMask16(SB), R13
	KMOVW (R13)(R10*2), K1
	TESTQ CX, CX
	JZ    zd_done

zd_key:
	VXORPS Z0, Z0, Z0
	XORQ   R11, R11
	CMPQ   R12, $0
	JEQ    zd_tail

zd_chunk:
	VMOVUPS     (SI)(R11*1), Z1
	VFMADD231PS (DX)(R11*1), Z1, Z0
	ADDQ        $64, R11
	CMPQ        R11, R12
	JLT         zd_chunk

zd_tail:
	TESTQ       R10, R10
	JZ          zd_reduce
	VMOVUPS.Z   (SI)(R11*1), K1, Z1
	VMOVUPS.Z   (DX)(R11*1), K1, Z2
	VFMADD231PS Z2, Z1, Z0

zd_reduce:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VADDPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VADDSS        X1, X0, X0
	VMOVSS        X0, (DI)
	ADDQ          R8, DI
	ADDQ          R9, SI
	DECQ          CX
	JNZ           zd_key

zd_done:
	VZEROUPPER
	RET

// func dotKeysAVX2(s *float32, lds int, k *float32, ks int, q *float32, nk, d int)
TEXT ·dotKeysAVX2(SB), NOSPLIT, $0-56
	MOVQ    s+0(FP), DI
	MOVQ    lds+8(FP), R8
	SHLQ    $2, R8
	MOVQ    k+16(FP), SI
	MOVQ    ks+24(FP), R9
	SHLQ    $2, R9
	MOVQ    q+32(FP), DX
	MOVQ    nk+40(FP), CX
	MOVQ    d+48(FP), R10
	MOVQ    R10, R12
	ANDQ    $-8, R12
	SHLQ    $2, R12
	ANDQ    $7, R10
	MOVQ    R10, R13
	NEGQ    R13
	LEAQ    ·tailMask8+32(SB), R14
	VMOVUPS (R14)(R13*4), Y7
	TESTQ   CX, CX
	JZ      yd_done

yd_key:
	VXORPS Y0, Y0, Y0
	XORQ   R11, R11
	CMPQ   R12, $0
	JEQ    yd_tail

yd_chunk:
	VMOVUPS     (SI)(R11*1), Y1
	VFMADD231PS (DX)(R11*1), Y1, Y0
	ADDQ        $32, R11
	CMPQ        R11, R12
	JLT         yd_chunk

yd_tail:
	TESTQ       R10, R10
	JZ          yd_reduce
	VMASKMOVPS  (SI)(R11*1), Y7, Y1
	VMASKMOVPS  (DX)(R11*1), Y7, Y2
	VFMADD231PS Y2, Y1, Y0

yd_reduce:
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VADDPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VADDSS       X1, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         R8, DI
	ADDQ         R9, SI
	DECQ         CX
	JNZ          yd_key

yd_done:
	VZEROUPPER
	RET
