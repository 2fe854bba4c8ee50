/* tensor/dtype: names. */
#include "tensor/dtype.h"

const char *mt_dtype_name(mt_dtype t) {
    static const char *names[] = {"F32",  "BF16", "F16",  "I32",  "I64",     "U8",
                                  "Q8_0", "Q4_0", "Q4_K", "Q6_K", "Q4_K_R8", "Q8_0_R8"};
    return (unsigned)t < MT_DTYPE_COUNT ? names[t] : "?";
}
