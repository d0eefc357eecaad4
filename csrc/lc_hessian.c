/* lc_hessian.c: R-operator Hessian-vector products (see lc_hessian.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_dense.h"
#include "lc_hessian.h"
#include "lc_parallel.h"

int64_t lc_hvp_state_len(const lc_net *net, int64_t N)
{
    int64_t w = net->sizes[0];
    for (int64_t l = 0; l < net->n_layers; l++) w += 4 * net->sizes[l + 1];
    return N * w;
}

#define REAL float
#define SFX f32
#define EXP expf
#define FABS fabsf
#include "lc_hessian_impl.h"
#undef REAL
#undef SFX
#undef EXP
#undef FABS

#define REAL double
#define SFX f64
#define EXP exp
#define FABS fabs
#include "lc_hessian_impl.h"
