/* tensor/cpu: the quantized GEMV kernel of the avx512 level: vpmaddubsw + vpmaddwd on 256-bit vectors with AVX-512's 32 registers; decode streams W from memory, so wider vectors would wait on the same bytes (the body is gemv_quant_simd.h). */
#if defined(__x86_64__) || defined(__i386__)
#define QK_512 1
#define QK_NAME mt_avx512_gemv_q
#define QK_VNNI 0
#define QK_ACT mt_avx512_quant_act
#include "tensor/cpu/gemv_quant_simd.h"
#endif
