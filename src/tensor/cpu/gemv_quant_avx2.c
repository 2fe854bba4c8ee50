/* tensor/cpu: the quantized GEMV kernel of the avx2 level: vpmaddubsw + vpmaddwd (the body is gemv_quant_simd.h). */
#if defined(__x86_64__) || defined(__i386__)
#define QK_NAME mt_avx2_gemv_q
#define QK_VNNI 0
#define QK_ACT mt_avx2_quant_act
#define QK_DEQUANT mt_avx2_dequant
#include "tensor/cpu/gemv_quant_simd.h"
#endif
