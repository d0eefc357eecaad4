/* lc_dense.c: dense forward/backward, losses and fused training epochs (see lc_dense.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_dense.h"
#include "lc_optim.h"
#include "lc_vmath.h"

int lc_net_bn(const lc_net *net, int64_t l)
{
    return net->bn != NULL && net->bn[l] != 0;
}

int lc_net_has_bn(const lc_net *net)
{
    for (int64_t l = 0; l < net->n_layers; l++)
        if (lc_net_bn(net, l)) return 1;
    return 0;
}

/* Parameters of layer l: kernel, bias, gamma and beta. */
static int64_t layer_params(const lc_net *net, int64_t l)
{
    const int64_t no = net->sizes[l + 1];
    return net->sizes[l] * no + (net->has_bias[l] ? no : 0) + (lc_net_bn(net, l) ? 2 * no : 0);
}

int64_t lc_net_n_params(const lc_net *net)
{
    int64_t p = 0;
    for (int64_t l = 0; l < net->n_layers; l++) p += layer_params(net, l);
    return p;
}

void lc_net_offsets(const lc_net *net, int64_t *w_off, int64_t *b_off)
{
    int64_t p = 0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        w_off[l] = p;
        b_off[l] = net->has_bias[l] ? p + net->sizes[l] * net->sizes[l + 1] : -1;
        p += layer_params(net, l);
    }
}

int64_t lc_net_bn_offset(const lc_net *net, int64_t l)
{
    if (!lc_net_bn(net, l)) return -1;
    int64_t p = 0;
    for (int64_t k = 0; k < l; k++) p += layer_params(net, k);
    return p + net->sizes[l] * net->sizes[l + 1] + (net->has_bias[l] ? net->sizes[l + 1] : 0);
}

int64_t lc_net_bn_state_offset(const lc_net *net, int64_t l)
{
    if (!lc_net_bn(net, l)) return -1;
    int64_t p = 0;
    for (int64_t k = 0; k < l; k++)
        if (lc_net_bn(net, k)) p += 2 * net->sizes[k + 1];
    return p;
}

int64_t lc_net_bn_state_len(const lc_net *net)
{
    int64_t p = 0;
    for (int64_t l = 0; l < net->n_layers; l++)
        if (lc_net_bn(net, l)) p += 2 * net->sizes[l + 1];
    return p;
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
#if defined(LC_HAVE_VMATH)
#define LC_VMATH_FLOAT 1
#endif
#define EXP expf
#define TANH tanhf
#define LOG1P log1pf
#define FABS fabsf
#define SQRT sqrtf
#include "lc_dense_impl.h"
#undef REAL
#undef SFX
#undef LC_VMATH_FLOAT
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
