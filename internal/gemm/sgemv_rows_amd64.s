//go:build amd64 && !purego

#include "textflag.h"

// The row-block SGEMV kernels walk A in blocks of four rows. Each block
// keeps two accumulators per row, folds the four rows' sums into one
// 128-bit vector with unpack/add steps (no horizontal adds), and stores it
// to y[i:i+4], adding the old values when acc != 0. While a block is read
// the next one (its first 16*n bytes, the whole block when lda == n) is
// prefetched front to back, one cache line per 64 bytes consumed, so the
// memory stream stays one block ahead of the loads.

// func sgemvRowsAVX512(m, n int, a *float32, lda int, x, y *float32, acc int)
TEXT ·sgemvRowsAVX512(SB), NOSPLIT, $0-56
	MOVQ m+0(FP), R9
	SHRQ $2, R9
	JZ   r512_done
	MOVQ n+8(FP), R15
	MOVQ R15, DX
	ANDQ $16, DX            // a 16-column tail?
	SHRQ $5, R15            // 32-column steps
	MOVQ a+16(FP), BX
	MOVQ lda+24(FP), R11
	SHLQ $2, R11            // row stride in bytes
	LEAQ (R11)(R11*2), R13  // 3 rows
	MOVQ R11, SI
	SHLQ $2, SI             // 4 rows
	MOVQ n+8(FP), R10
	SHLQ $2, R10
	NEGQ R10
	ADDQ SI, R10            // from the end of row 0 to the next block
	MOVQ x+32(FP), R12
	MOVQ y+40(FP), R8
	MOVQ acc+48(FP), AX

r512_block:
	LEAQ (BX)(SI*1), R14    // prefetch pointer: the next block
	MOVQ R12, DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	MOVQ R15, CX
	TESTQ CX, CX
	JZ   r512_tail

r512_loop:
	VMOVUPS (DI), Z8
	VMOVUPS 64(DI), Z9
	VFMADD231PS (BX), Z8, Z0
	VFMADD231PS (BX)(R11*1), Z8, Z2
	VFMADD231PS (BX)(R11*2), Z8, Z4
	VFMADD231PS (BX)(R13*1), Z8, Z6
	VFMADD231PS 64(BX), Z9, Z1
	VFMADD231PS 64(BX)(R11*1), Z9, Z3
	VFMADD231PS 64(BX)(R11*2), Z9, Z5
	VFMADD231PS 64(BX)(R13*1), Z9, Z7
	PREFETCHT1 (R14)
	PREFETCHT1 64(R14)
	PREFETCHT1 128(R14)
	PREFETCHT1 192(R14)
	PREFETCHT1 256(R14)
	PREFETCHT1 320(R14)
	PREFETCHT1 384(R14)
	PREFETCHT1 448(R14)
	ADDQ $512, R14
	ADDQ $128, BX
	ADDQ $128, DI
	DECQ CX
	JNZ  r512_loop

r512_tail:
	TESTQ DX, DX
	JZ   r512_reduce
	VMOVUPS (DI), Z8
	VFMADD231PS (BX), Z8, Z0
	VFMADD231PS (BX)(R11*1), Z8, Z2
	VFMADD231PS (BX)(R11*2), Z8, Z4
	VFMADD231PS (BX)(R13*1), Z8, Z6
	PREFETCHT1 (R14)
	PREFETCHT1 64(R14)
	PREFETCHT1 128(R14)
	PREFETCHT1 192(R14)
	ADDQ $64, BX

r512_reduce:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z5, Z4, Z4
	VADDPS Z7, Z6, Z6
	VUNPCKLPS Z2, Z0, Z10   // per 128-bit lane: r0[0] r1[0] r0[1] r1[1]
	VUNPCKHPS Z2, Z0, Z11   // r0[2] r1[2] r0[3] r1[3]
	VADDPS Z11, Z10, Z10
	VUNPCKLPS Z6, Z4, Z11
	VUNPCKHPS Z6, Z4, Z12
	VADDPS Z12, Z11, Z11    // the same for rows 2 and 3
	VUNPCKLPD Z11, Z10, Z12 // r0 r1 r2 r3 (first halves)
	VUNPCKHPD Z11, Z10, Z13 // r0 r1 r2 r3 (second halves)
	VADDPS Z13, Z12, Z12
	VEXTRACTF64X4 $1, Z12, Y13
	VADDPS Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPS X13, X12, X12
	TESTQ AX, AX
	JZ   r512_store
	VADDPS (R8), X12, X12

r512_store:
	VMOVUPS X12, (R8)
	ADDQ $16, R8
	ADDQ R10, BX
	DECQ R9
	JNZ  r512_block

r512_done:
	VZEROUPPER
	RET

// func sgemvRowsAVX2(m, n int, a *float32, lda int, x, y *float32, acc int)
TEXT ·sgemvRowsAVX2(SB), NOSPLIT, $0-56
	MOVQ m+0(FP), R9
	SHRQ $2, R9
	JZ   r256_done
	MOVQ n+8(FP), R15
	MOVQ R15, DX
	ANDQ $8, DX             // an 8-column tail?
	SHRQ $4, R15            // 16-column steps
	MOVQ a+16(FP), BX
	MOVQ lda+24(FP), R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R13
	MOVQ R11, SI
	SHLQ $2, SI
	MOVQ n+8(FP), R10
	SHLQ $2, R10
	NEGQ R10
	ADDQ SI, R10
	MOVQ x+32(FP), R12
	MOVQ y+40(FP), R8
	MOVQ acc+48(FP), AX

r256_block:
	LEAQ (BX)(SI*1), R14
	MOVQ R12, DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ R15, CX
	TESTQ CX, CX
	JZ   r256_tail

r256_loop:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	VFMADD231PS (BX), Y8, Y0
	VFMADD231PS (BX)(R11*1), Y8, Y2
	VFMADD231PS (BX)(R11*2), Y8, Y4
	VFMADD231PS (BX)(R13*1), Y8, Y6
	VFMADD231PS 32(BX), Y9, Y1
	VFMADD231PS 32(BX)(R11*1), Y9, Y3
	VFMADD231PS 32(BX)(R11*2), Y9, Y5
	VFMADD231PS 32(BX)(R13*1), Y9, Y7
	PREFETCHT1 (R14)
	PREFETCHT1 64(R14)
	PREFETCHT1 128(R14)
	PREFETCHT1 192(R14)
	ADDQ $256, R14
	ADDQ $64, BX
	ADDQ $64, DI
	DECQ CX
	JNZ  r256_loop

r256_tail:
	TESTQ DX, DX
	JZ   r256_reduce
	VMOVUPS (DI), Y8
	VFMADD231PS (BX), Y8, Y0
	VFMADD231PS (BX)(R11*1), Y8, Y2
	VFMADD231PS (BX)(R11*2), Y8, Y4
	VFMADD231PS (BX)(R13*1), Y8, Y6
	PREFETCHT1 (R14)
	PREFETCHT1 64(R14)
	ADDQ $32, BX

r256_reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	VUNPCKLPS Y2, Y0, Y10
	VUNPCKHPS Y2, Y0, Y11
	VADDPS Y11, Y10, Y10
	VUNPCKLPS Y6, Y4, Y11
	VUNPCKHPS Y6, Y4, Y12
	VADDPS Y12, Y11, Y11
	VUNPCKLPD Y11, Y10, Y12
	VUNPCKHPD Y11, Y10, Y13
	VADDPS Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPS X13, X12, X12
	TESTQ AX, AX
	JZ   r256_store
	VADDPS (R8), X12, X12

r256_store:
	VMOVUPS X12, (R8)
	ADDQ $16, R8
	ADDQ R10, BX
	DECQ R9
	JNZ  r256_block

r256_done:
	VZEROUPPER
	RET
