/* tensor/cpu: the quantized GEMV kernel of the avx2 level on CPUs with AVX-VNNI:
 * VEX vpdpbusd / vpdpwssd (the body is gemv_quant_simd.h). */
#if defined(__x86_64__) || defined(__i386__)
#define QK_NAME mt_avxvnni_gemv_q
#define QK_VNNI 1
#include "tensor/cpu/gemv_quant_simd.h"
#endif
