// Vector kernels of the CT and MR screen (AVX2, see flat_amd64.go): Go
// has no vector operations, and the screen runs on every slice, where a
// sample at a time costs as much as the rest of de-identifying it.
// Checked against the scalar keys by TestVectorKernels.

#include "textflag.h"

// The body of busyBits16's loops: block BX's keys into Y4 and the
// keys of the samples before each into Y5 (KEY), their distance less
// lim, and a bit shifted into R8: 1 when any is past it (ascending order:
// the first block's bit ends highest).
#define BUSY(KEY) \
	MOVQ      BX, R9; \
	SHLQ      $5, R9; \
	VMOVDQU   (SI)(R9*1), Y4; \
	VMOVDQU   -2(SI)(R9*1), Y5; \
	KEY(Y4); \
	KEY(Y5); \
	VPSUBUSW  Y5, Y4, Y6; \
	VPSUBUSW  Y4, Y5, Y7; \
	VPOR      Y6, Y7, Y6; \
	VPSUBUSW  Y1, Y6, Y6; \
	VPCMPEQW  Y0, Y6, Y6; \
	VPMOVMSKB Y6, AX; \
	NOTL      AX; \
	NEGL      AX; \
	ADCQ      R8, R8; \
	INCQ      BX

// Keys of sixteen samples in R: sixteen bits stored (XOR Y3: 0x8000 for
// signed samples, 0 else); fewer, signed (shift X2 left, arithmetic
// right, XOR); fewer, unsigned (shift left, logical right).
#define KEY0(R) VPXOR Y3, R, R
#define KEYS(R) VPSLLW X2, R, R; VPSRAW X2, R, R; VPXOR Y3, R, R
#define KEYU(R) VPSLLW X2, R, R; VPSRLW X2, R, R

// func busyBits16(src []byte, first, lim, shift, signed uint64) uint64
TEXT ·busyBits16(SB), NOSPLIT, $0-64
	MOVQ src_base+0(FP), SI
	MOVQ src_len+8(FP), DI
	SHRQ $5, DI
	CMPQ DI, $64
	JLE  blocks
	MOVQ $64, DI

blocks:
	MOVQ         lim+32(FP), AX
	VMOVQ        AX, X1
	VPBROADCASTW X1, Y1
	MOVQ         shift+40(FP), AX
	VMOVQ        AX, X2
	VPXOR        Y3, Y3, Y3
	VPXOR        Y0, Y0, Y0
	MOVQ         signed+48(FP), DX
	TESTQ        DX, DX
	JZ           nobias
	MOVQ         $0x8000, AX
	VMOVQ        AX, X3
	VPBROADCASTW X3, Y3

nobias:
	XORQ  R8, R8
	MOVQ  first+24(FP), BX
	MOVQ  shift+40(FP), AX
	TESTQ AX, AX
	JNZ   shifted

loop0:
	CMPQ BX, DI
	JGE  done
	BUSY(KEY0)
	JMP  loop0

shifted:
	TESTQ DX, DX
	JZ    loopu

loops:
	CMPQ BX, DI
	JGE  done
	BUSY(KEYS)
	JMP  loops

loopu:
	CMPQ BX, DI
	JGE  done
	BUSY(KEYU)
	JMP  loopu

done:
	VZEROUPPER
	MOVQ R8, ret+56(FP)
	RET

// The bodies of keyRange16's loops: four blocks from byte BX into two
// pairs of accumulators (lows Y0 and Y6, highs Y1 and Y7), so that no
// min or max waits on the one before it; then one block.
#define RANGE4(KEY) \
	VMOVDQU (SI)(BX*1), Y4; \
	VMOVDQU 32(SI)(BX*1), Y5; \
	VMOVDQU 64(SI)(BX*1), Y8; \
	VMOVDQU 96(SI)(BX*1), Y9; \
	KEY(Y4); \
	KEY(Y5); \
	KEY(Y8); \
	KEY(Y9); \
	VPMINUW Y4, Y0, Y0; \
	VPMAXUW Y4, Y1, Y1; \
	VPMINUW Y5, Y6, Y6; \
	VPMAXUW Y5, Y7, Y7; \
	VPMINUW Y8, Y0, Y0; \
	VPMAXUW Y8, Y1, Y1; \
	VPMINUW Y9, Y6, Y6; \
	VPMAXUW Y9, Y7, Y7; \
	ADDQ    $128, BX

#define RANGE1(KEY) \
	VMOVDQU (SI)(BX*1), Y4; \
	KEY(Y4); \
	VPMINUW Y4, Y0, Y0; \
	VPMAXUW Y4, Y1, Y1; \
	ADDQ    $32, BX

// func keyRange16(src []byte, shift, signed uint64) (lo, hi uint64)
TEXT ·keyRange16(SB), NOSPLIT, $0-56
	MOVQ         src_base+0(FP), SI
	MOVQ         src_len+8(FP), CX
	ANDQ         $-32, CX // bytes in whole blocks
	MOVQ         CX, R10
	ANDQ         $-128, R10 // bytes in whole runs of four blocks
	MOVQ         shift+24(FP), AX
	VMOVQ        AX, X2
	VPXOR        Y3, Y3, Y3
	MOVQ         signed+32(FP), DX
	TESTQ        DX, DX
	JZ           rnobias
	MOVQ         $0x8000, AX
	VMOVQ        AX, X3
	VPBROADCASTW X3, Y3

rnobias:
	VPCMPEQW Y0, Y0, Y0 // lows: all ones
	VPXOR    Y1, Y1, Y1 // highs: zero
	VMOVDQU  Y0, Y6
	VMOVDQU  Y1, Y7
	XORQ     BX, BX
	MOVQ     shift+24(FP), AX
	TESTQ    AX, AX
	JNZ      rshifted

r0four:
	CMPQ BX, R10
	JGE  r0one
	RANGE4(KEY0)
	JMP  r0four

r0one:
	CMPQ BX, CX
	JGE  rdone
	RANGE1(KEY0)
	JMP  r0one

rshifted:
	TESTQ DX, DX
	JZ    rufour

rsfour:
	CMPQ BX, R10
	JGE  rsone
	RANGE4(KEYS)
	JMP  rsfour

rsone:
	CMPQ BX, CX
	JGE  rdone
	RANGE1(KEYS)
	JMP  rsone

rufour:
	CMPQ BX, R10
	JGE  ruone
	RANGE4(KEYU)
	JMP  rufour

ruone:
	CMPQ BX, CX
	JGE  rdone
	RANGE1(KEYU)
	JMP  ruone

rdone:
	VPMINUW Y6, Y0, Y0
	VPMAXUW Y7, Y1, Y1

	// Across the lanes: the low of eight words is PHMINPOSUW's; the high
	// is the low of their complements.
	VEXTRACTI128 $1, Y0, X4
	VPMINUW      X4, X0, X0
	VPHMINPOSUW  X0, X0
	VMOVQ        X0, AX
	ANDQ         $0xFFFF, AX
	MOVQ         AX, lo+40(FP)
	VEXTRACTI128 $1, Y1, X4
	VPMAXUW      X4, X1, X1
	VPCMPEQW     X5, X5, X5
	VPXOR        X5, X1, X1
	VPHMINPOSUW  X1, X1
	VMOVQ        X1, AX
	NOTQ         AX
	ANDQ         $0xFFFF, AX
	MOVQ         AX, hi+48(FP)
	VZEROUPPER
	RET
