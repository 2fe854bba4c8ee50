/* tensor/cpu: the quantized GEMV kernel of the avx512 level on CPUs with
 * AVX-512-VNNI: vpdpbusd / vpdpwssd (the body is gemv_quant_simd.h). */
#if defined(__x86_64__) || defined(__i386__)
#define QK_512 1
#define QK_NAME mt_avx512vnni_gemv_q
#define QK_VNNI 2
#include "tensor/cpu/gemv_quant_simd.h"
#endif
