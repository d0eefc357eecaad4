/* lc_common.h: enums and status codes shared by every linncore kernel and by the Python layer.
 *
 * The numeric values are part of the contract with linncore/_util/codes.py; the core exports
 * them (linncore._core.constants()) and tests/test_codes.py compares them in full. */
#ifndef LC_COMMON_H
#define LC_COMMON_H

#include <stdint.h>

#include "lc_portable.h" /* LC_HOT, LC_RESTRICT, ...: compiler specifics */

/* Activations: y := act(z). */
typedef enum {
    LC_ACT_LINEAR = 0,     /* z */
    LC_ACT_RELU = 1,       /* max(z, 0); derivative 0 at z = 0 */
    LC_ACT_TANH = 2,       /* tanh(z) */
    LC_ACT_SIGMOID = 3,    /* 1 / (1 + exp(-z)) */
    LC_ACT_SOFTSIGN = 4,   /* z / (1 + |z|) */
    LC_ACT_LEAKY_RELU = 5, /* z > 0 ? z : LC_LEAKY_SLOPE * z */
    LC_ACT_SOFTPLUS = 6    /* log(1 + exp(z)) */
} lc_activation;

#define LC_N_ACTIVATIONS 7
#define LC_LEAKY_SLOPE 0.2 /* Keras 3 keras.activations.leaky_relu default */

/* Losses over a batch of B samples with m outputs, residual r = f(x) - y. */
typedef enum {
    LC_LOSS_MSE = 0,      /* sum r^2 / (B m)       (Keras "mse") */
    LC_LOSS_HALF_MSE = 1, /* 0.5 sum r^2 / B */
    LC_LOSS_MAE = 2       /* sum |r| / (B m)       (Keras "mae") */
} lc_loss;

/* Optimizers (Keras 3 update rules). */
typedef enum {
    LC_OPT_SGD = 0,
    LC_OPT_ADAM = 1
} lc_optimizer_kind;

/* Status codes returned by kernels. */
typedef enum {
    LC_OK = 0,
    LC_ERR_NONFINITE_LOSS = 1,   /* a batch loss was NaN or inf; parameters left as before it */
    LC_ERR_NONFINITE_PARAMS = 2, /* an update made a parameter non-finite; the update was undone */
    LC_ERR_NOMEM = 3,            /* workspace allocation failed */
    LC_ERR_ARGS = 4              /* inconsistent arguments (a bug in the caller) */
} lc_status;

/* A feed-forward stack of dense layers.  Parameters live in one flat vector theta in this
 * order: per layer the kernel (sizes[l], sizes[l+1]) row-major, then the bias when present. */
typedef struct {
    int64_t n_layers;
    const int64_t *sizes;    /* n_layers + 1 widths: input, then each layer's outputs */
    const int32_t *acts;     /* n_layers lc_activation codes */
    const int32_t *has_bias; /* n_layers flags */
    int32_t clip_out;        /* 1: every layer output is clipped to [-1, 1] after activation */
    /* Batch normalisation of a layer's (clipped) output, Keras semantics: in training
     * y = gamma (a - mean_B) / sqrt(var_B + eps) + beta with the batch's mean and (biased)
     * variance, and moving := moving * momentum + batch * (1 - momentum); in inference the
     * moving statistics replace the batch's.  gamma and beta follow the layer's bias in theta;
     * the moving mean and variance of every such layer, in layer order, form a separate state
     * vector (lc_net_bn_state_len values). */
    const int32_t *bn;         /* n_layers flags, or NULL for none */
    const double *bn_momentum; /* n_layers (read where bn) */
    const double *bn_epsilon;  /* n_layers (read where bn) */
} lc_net;

/* Optimizer hyper-parameters; unused fields are ignored by the kind that does not need them. */
typedef struct {
    int32_t kind;     /* lc_optimizer_kind */
    double lr;        /* learning rate */
    double beta_1;    /* Adam */
    double beta_2;    /* Adam */
    double epsilon;   /* Adam */
    double momentum;  /* SGD */
    int32_t nesterov; /* SGD */
} lc_optim;

/* Number of parameters of a network and the offset of every layer's kernel and bias. */
int64_t lc_net_n_params(const lc_net *net);
/* w_off[l], b_off[l] (b_off[l] = -1 without bias); both arrays n_layers long. */
void lc_net_offsets(const lc_net *net, int64_t *w_off, int64_t *b_off);
/* 1 when layer l is batch-normalised; any layer: lc_net_has_bn. */
int lc_net_bn(const lc_net *net, int64_t l);
int lc_net_has_bn(const lc_net *net);
/* Length of the state vector: 2 n_out per batch-normalised layer. */
int64_t lc_net_bn_state_len(const lc_net *net);
/* Widest layer (including the input). */
int64_t lc_net_max_width(const lc_net *net);

#endif
