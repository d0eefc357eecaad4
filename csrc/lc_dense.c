/* lc_dense.c: dense forward/backward, losses and the training step (see lc_dense.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lc_dense.h"
#include "lc_optim.h"
#include "lc_parallel.h"
#include "lc_vmath.h"

/* AVX2 paths written with intrinsics (GCC or Clang on x86-64), chosen at run time; each gives
 * the same bits as its plain loop.  LC_BASELINE_ONLY and LC_PORTABLE keep the plain loops alone. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&                            \
    !defined(LC_BASELINE_ONLY) && !(defined(LC_PORTABLE) && LC_PORTABLE)
#define LC_X86_AVX2 1
#include <immintrin.h>
static int lc_cpu_has_avx2(void)
{
    return __builtin_cpu_supports("avx2");
}
#else
#define LC_X86_AVX2 0
#endif

/* The products' AVX-512 path (lc_dense_impl.h, matmul_wide): the same source as the AVX2 tiles
 * with vectors twice as wide, compiled for AVX-512F with GCC or Clang on x86-64 and taken at
 * run time where the CPU and the operating system have it (__builtin_cpu_supports checks
 * both).  LC_TEST_WIDE=1 compiles that path for the build's own instruction set instead and
 * takes it on every CPU: GCC and Clang lower its 64-byte vectors to pairs of narrower
 * operations with the same lane-wise results, so the path's logic and bits can be tested on a
 * machine without AVX-512 (tests/kernels/test_products.py, test_portable.py). */
#if defined(LC_TEST_WIDE) && LC_TEST_WIDE && LC_HAVE_VECTOR_EXT
#define LC_WIDE 1
#define LC_WIDE_TARGET
#define LC_WIDE_PATH LC_PRODUCTS_WIDE_TEST
static int lc_cpu_has_wide(void)
{
    return 1;
}
#elif LC_X86_AVX2 && LC_HAVE_VECTOR_EXT
#define LC_WIDE 1
#define LC_WIDE_TARGET __attribute__((target("avx512f")))
#define LC_WIDE_PATH LC_PRODUCTS_AVX512
static int lc_cpu_has_wide(void)
{
    return __builtin_cpu_supports("avx512f");
}
#else
#define LC_WIDE 0
#endif

/* Opt-in FMA products (lc_set_fma): the same tiles compiled with fused multiply-adds, each
 * term one rounding instead of two.  GCC on x86-64 alone: its optimize attribute contracts the
 * tiles' a * m + c where the products' functions are compiled for AVX2 and FMA (Clang has no
 * such attribute, and its pragma would have to sit in the tiles' source).  LC_TEST_WIDE builds
 * keep them to AVX2 (their wide path is compiled for the build's own instruction set). */
#if LC_X86_AVX2 && LC_HAVE_VECTOR_EXT && defined(__GNUC__) && !defined(__clang__)
#define LC_FMA 1
#define LC_FMA_TARGET __attribute__((target("avx2,fma"), optimize("fp-contract=fast")))
#if LC_WIDE && !(defined(LC_TEST_WIDE) && LC_TEST_WIDE)
#define LC_FMA_WIDE 1
#define LC_FMA_WIDE_TARGET __attribute__((target("avx512f,fma"), optimize("fp-contract=fast")))
#else
#define LC_FMA_WIDE 0
#endif
static int lc_fma_on; /* set by lc_set_fma only where lc_fma_available() */
#else
#define LC_FMA 0
#define LC_FMA_WIDE 0
#endif

int lc_fma_available(void)
{
#if LC_FMA
    return lc_cpu_has_avx2() && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int lc_set_fma(int on)
{
    if (on && !lc_fma_available()) return LC_ERR_ARGS;
#if LC_FMA
    __atomic_store_n(&lc_fma_on, on ? 1 : 0, __ATOMIC_RELAXED);
#endif
    return LC_OK;
}

int lc_get_fma(void)
{
#if LC_FMA
    return __atomic_load_n(&lc_fma_on, __ATOMIC_RELAXED);
#else
    return 0;
#endif
}

/* The same tests as lc_matmul's dispatch, in its order. */
int lc_products_path(void)
{
#if LC_WIDE
    if (lc_cpu_has_wide()) return LC_WIDE_PATH;
#endif
#if LC_X86_AVX2 && LC_HAVE_VECTOR_EXT
    if (lc_cpu_has_avx2()) return LC_PRODUCTS_AVX2;
#endif
    return LC_HAVE_VECTOR_EXT ? LC_PRODUCTS_VECTOR : LC_PRODUCTS_PLAIN;
}

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

void lc_net_layout(const lc_net *net, lc_layer_offsets *layout)
{
    int64_t p = 0, st = 0;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t no = net->sizes[l + 1];
        layout[l].w = p;
        const int64_t after_w = p + net->sizes[l] * no;
        layout[l].b = net->has_bias[l] ? after_w : -1;
        layout[l].bn = lc_net_bn(net, l) ? after_w + (net->has_bias[l] ? no : 0) : -1;
        layout[l].bn_state = lc_net_bn(net, l) ? st : -1;
        p += layer_params(net, l);
        st += lc_net_bn(net, l) ? 2 * no : 0;
    }
}

int lc_train_check(const lc_train *t)
{
    if (!t || !t->net || !t->layout || !t->opt) return LC_ERR_ARGS;
    if (t->loss != LC_LOSS_MSE && t->loss != LC_LOSS_HALF_MSE && t->loss != LC_LOSS_MAE)
        return LC_ERR_ARGS;
    if (t->opt->kind != LC_OPT_SGD && t->opt->kind != LC_OPT_ADAM) return LC_ERR_ARGS;
    if (t->quant) {
        if (lc_net_has_bn(t->net)) return LC_ERR_ARGS; /* no QAT of batch normalisation yet */
        for (int64_t i = 0; i < t->net->n_layers * LC_QF_N; i++)
            if (t->quant->on[i] && lc_fixfmt_check(t->quant->fmts + i) != LC_OK)
                return LC_FIX_ERR_FORMAT;
    }
    return LC_OK;
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
#define LC_FMA_REAL __builtin_fmaf
#define LC_REAL_IS_FLOAT 1
#define QAT_Q lc_qat_quantize_f32
#define QAT_GATE lc_qat_gate_f32
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
#undef QAT_Q
#undef QAT_GATE
#undef LC_REAL_IS_FLOAT
#undef LC_FMA_REAL

#define REAL double
#define SFX f64
#define LC_FMA_REAL __builtin_fma
#define LC_REAL_IS_FLOAT 0
#define QAT_Q lc_qat_quantize_f64
#define QAT_GATE lc_qat_gate_f64
#define EXP exp
#define TANH lc_tanh_f64 /* lc_vmath.h: the same bits on every machine, unlike libm's */
#define LOG1P log1p
#define FABS fabs
#define SQRT sqrt
#include "lc_dense_impl.h"
