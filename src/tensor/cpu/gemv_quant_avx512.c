/* tensor/cpu: the quantized GEMV kernel of the avx512 level: Q8_0/Q4_0 on 512-bit
 * vectors, vpmaddubsw + vpmaddwd (the body is gemv_quant_simd.h). */
#if defined(__x86_64__) || defined(__i386__)
#define QK_512 1
#define QK_NAME mt_avx512_gemv_q
#define QK_VNNI 0
#define QK_ACT mt_avx512_quant_act
#define QK_DEQUANT mt_avx512_dequant
#include "tensor/cpu/gemv_quant_simd.h"
#endif
