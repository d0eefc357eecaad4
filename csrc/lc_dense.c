/* lc_dense.c: dense forward/backward, losses and fused training epochs (see lc_dense.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_dense.h"
#include "lc_optim.h"

int64_t lc_net_n_params(const lc_net *net)
{
    int64_t p = 0;
    for (int64_t l = 0; l < net->n_layers; l++)
        p += net->sizes[l] * net->sizes[l + 1] + (net->has_bias[l] ? net->sizes[l + 1] : 0);
    return p;
}

void lc_net_offsets(const lc_net *net, int64_t *w_off, int64_t *b_off)
{
    int64_t p = 0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        w_off[l] = p;
        p += net->sizes[l] * net->sizes[l + 1];
        if (net->has_bias[l]) {
            b_off[l] = p;
            p += net->sizes[l + 1];
        } else {
            b_off[l] = -1;
        }
    }
}

int64_t lc_net_max_width(const lc_net *net)
{
    int64_t w = 1;
    for (int64_t l = 0; l <= net->n_layers; l++)
        if (net->sizes[l] > w) w = net->sizes[l];
    return w;
}

#define REAL float
#define SFX f32
#define EXP expf
#define TANH tanhf
#define LOG1P log1pf
#define FABS fabsf
#define SQRT sqrtf
#include "lc_dense_impl.h"
#undef REAL
#undef SFX
#undef EXP
#undef TANH
#undef LOG1P
#undef FABS
#undef SQRT

#define REAL double
#define SFX f64
#define EXP exp
#define TANH tanh
#define LOG1P log1p
#define FABS fabs
#define SQRT sqrt
#include "lc_dense_impl.h"
