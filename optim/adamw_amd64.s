//go:build amd64 && !purego

#include "textflag.h"

// Offsets of the adamwCoef fields.
#define DECAY 0
#define BETA1 4
#define ONEMINB1 8
#define BETA2 12
#define ONEMINB2 16
#define BC2SQRT 20
#define EPS 24
#define NEGSTEP 28

// func adamwAVX2(p, grad, m, v *float32, n int, c *adamwCoef)
TEXT ·adamwAVX2(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS DECAY(AX), Y8
	VBROADCASTSS BETA1(AX), Y9
	VBROADCASTSS ONEMINB1(AX), Y10
	VBROADCASTSS BETA2(AX), Y11
	VBROADCASTSS ONEMINB2(AX), Y12
	VBROADCASTSS BC2SQRT(AX), Y13
	VBROADCASTSS EPS(AX), Y14
	VBROADCASTSS NEGSTEP(AX), Y15
	XORQ BX, BX

avx2loop:
	CMPQ BX, CX
	JGE  avx2done
	VMOVUPS (SI)(BX*4), Y0     // g
	VMULPS  (R8)(BX*4), Y9, Y1 // beta1*m
	VMULPS  Y0, Y10, Y2        // (1-beta1)*g
	VADDPS  Y2, Y1, Y1         // m'
	VMOVUPS Y1, (R8)(BX*4)
	VMULPS  (R9)(BX*4), Y11, Y3 // beta2*v
	VMULPS  Y0, Y12, Y4         // (1-beta2)*g
	VMULPS  Y0, Y4, Y4          // (1-beta2)*g*g
	VADDPS  Y4, Y3, Y3          // v'
	VMOVUPS Y3, (R9)(BX*4)
	VSQRTPS Y3, Y3
	VDIVPS  Y13, Y3, Y3         // sqrt(v')/bc2Sqrt
	VADDPS  Y14, Y3, Y3         // denom
	VMULPS  Y1, Y15, Y1         // negStep*m'
	VDIVPS  Y3, Y1, Y1          // negStep*m'/denom
	VMULPS  (DI)(BX*4), Y8, Y5  // decay*p
	VADDPS  Y1, Y5, Y5
	VMOVUPS Y5, (DI)(BX*4)
	ADDQ    $8, BX
	JMP     avx2loop

avx2done:
	VZEROUPPER
	RET

// func adamwAVX512(p, grad, m, v *float32, n int, c *adamwCoef)
TEXT ·adamwAVX512(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS DECAY(AX), Z8
	VBROADCASTSS BETA1(AX), Z9
	VBROADCASTSS ONEMINB1(AX), Z10
	VBROADCASTSS BETA2(AX), Z11
	VBROADCASTSS ONEMINB2(AX), Z12
	VBROADCASTSS BC2SQRT(AX), Z13
	VBROADCASTSS EPS(AX), Z14
	VBROADCASTSS NEGSTEP(AX), Z15
	XORQ BX, BX

avx512loop:
	CMPQ BX, CX
	JGE  avx512done
	VMOVUPS (SI)(BX*4), Z0
	VMULPS  (R8)(BX*4), Z9, Z1
	VMULPS  Z0, Z10, Z2
	VADDPS  Z2, Z1, Z1
	VMOVUPS Z1, (R8)(BX*4)
	VMULPS  (R9)(BX*4), Z11, Z3
	VMULPS  Z0, Z12, Z4
	VMULPS  Z0, Z4, Z4
	VADDPS  Z4, Z3, Z3
	VMOVUPS Z3, (R9)(BX*4)
	VSQRTPS Z3, Z3
	VDIVPS  Z13, Z3, Z3
	VADDPS  Z14, Z3, Z3
	VMULPS  Z1, Z15, Z1
	VDIVPS  Z3, Z1, Z1
	VMULPS  (DI)(BX*4), Z8, Z5
	VADDPS  Z1, Z5, Z5
	VMOVUPS Z5, (DI)(BX*4)
	ADDQ    $16, BX
	JMP     avx512loop

avx512done:
	VZEROUPPER
	RET
