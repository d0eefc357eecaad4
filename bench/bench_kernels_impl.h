/* bench_kernels_impl.h: the per-type half of bench_kernels.c, included once with REAL and SFX
 * defined (float, f32 and double, f64). */

#define B_CAT_(a, b) a##_##b
#define B_CAT(a, b) B_CAT_(a, b)
#define BF(name) B_CAT(name, SFX)

static REAL *BF(filled)(int64_t n, double amp)
{
    REAL *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(REAL));
    for (int64_t i = 0; i < n; i++) p[i] = (REAL)(amp * uniform());
    return p;
}

/* Each product, activation pass and the optimizer step of one network at batch 32, then whole
 * epochs of N samples (Adam 1e-3, parameters and outputs clipped, MSE, stored order). */
static void BF(net)(const char *name, int64_t L, const int64_t *sizes, const int32_t *acts,
                    int64_t N)
{
    const int64_t B = 32;
    const int reps = 200 * scale;
    printf("\n== %s, batch %lld\n", name, (long long)B);
    int64_t P = 0, macs = 0;
    for (int64_t l = 0; l < L; l++) {
        const int64_t ni = sizes[l], no = sizes[l + 1];
        P += ni * no + no;
        macs += ni * no;
        REAL *x = BF(filled)(B * ni, 1), *W = BF(filled)(ni * no, 0.5), *z = BF(filled)(B * no, 0);
        REAL *h = BF(filled)(B * no, 0), *da = BF(filled)(B * no, 0.1), *dz = BF(filled)(B * no, 0);
        REAL *gW = BF(filled)(ni * no, 0), *wt = BF(filled)(ni * no, 0),
             *dx = BF(filled)(B * ni, 0);
        char what[96];
        double t;
        snprintf(what, sizeof what, "layer %lld %lld->%lld: x W", (long long)l, (long long)ni,
                 (long long)no);
        TIME_MIN(t, reps, B_CAT(lc_matmul, SFX)(x, ni, 1, W, z, B, ni, no));
        report(what, t, (double)(B * ni * no));
        mix(z, (size_t)(B * no) * sizeof(REAL));
        snprintf(what, sizeof what, "  act %d forward", acts[l]);
        TIME_MIN(t, reps, B_CAT(lc_act_forward, SFX)(acts[l], z, h, B * no));
        report(what, t, 0);
        mix(h, (size_t)(B * no) * sizeof(REAL));
        snprintf(what, sizeof what, "  act %d backward (clip)", acts[l]);
        TIME_MIN(t, reps, B_CAT(lc_act_backward, SFX)(acts[l], 1, z, h, da, dz, B * no));
        report(what, t, 0);
        mix(dz, (size_t)(B * no) * sizeof(REAL));
        TIME_MIN(t, reps, B_CAT(lc_matmul, SFX)(x, 1, ni, dz, gW, ni, B, no));
        report("  x^T dz (x read transposed)", t, (double)(B * ni * no));
        mix(gW, (size_t)(ni * no) * sizeof(REAL));
        if (l > 0) {
            TIME_MIN(t, reps, B_CAT(lc_transpose, SFX)(W, wt, ni, no));
            report("  W^T (transpose)", t, 0);
            TIME_MIN(t, reps, B_CAT(lc_matmul, SFX)(dz, no, 1, wt, dx, B, no, ni));
            report("  dz W^T", t, (double)(B * ni * no));
            mix(dx, (size_t)(B * ni) * sizeof(REAL));
        }
        free(x), free(W), free(z), free(h), free(da), free(dz), free(gW), free(wt), free(dx);
    }
    {
        const lc_optim opt = {LC_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-7, 0.0, 0};
        REAL *th = BF(filled)(P, 0.5), *g = BF(filled)(P, 0.01), *m = BF(filled)(P, 0);
        REAL *v = BF(filled)(P, 0), *next = BF(filled)(P, 0);
        double t;
        int64_t step = 1;
        B_CAT(lc_optim_next, SFX)(&opt, th, g, m, v, P, step++, 1, next);
        mix(next, (size_t)P * sizeof(REAL));
        TIME_MIN(t, reps, B_CAT(lc_optim_next, SFX)(&opt, th, g, m, v, P, step++, 1, next));
        char what[96];
        snprintf(what, sizeof what, "Adam step, %lld parameters", (long long)P);
        report(what, t, 0);
        free(th), free(g), free(m), free(v), free(next);
    }
    {
        int32_t bias[8];
        for (int64_t l = 0; l < L; l++) bias[l] = 1;
        const lc_net net = {L, sizes, acts, bias, 1, NULL, NULL, NULL};
        lc_layer_offsets lay[8];
        lc_net_layout(&net, lay);
        const lc_optim opt = {LC_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-7, 0.0, 0};
        const lc_train tr = {&net, lay, LC_LOSS_MSE, &opt, 1, NULL};
        REAL *th0 = BF(filled)(P, 0.5), *th = BF(filled)(P, 0), *m = BF(filled)(P, 0);
        REAL *v = BF(filled)(P, 0), *X = BF(filled)(N * sizes[0], 1);
        REAL *Y = BF(filled)(N * sizes[L], 0.8);
        memcpy(th, th0, (size_t)P * sizeof(REAL));
        int64_t step = 0, n_done = 0;
        double loss_sum = 0, t;
        B_CAT(lc_train_epoch, SFX)(&tr, th, m, v, NULL, X, Y, N, NULL, B, &step, NULL, &loss_sum,
                                   &n_done);
        mix(th, (size_t)P * sizeof(REAL));
        mix(&loss_sum, sizeof loss_sum);
        t = 1e30; /* thread CPU time: an epoch is long enough to be preempted on a busy machine */
        for (int r = 0; r < 5 * scale; r++) {
            const double t0 = cpu_ns();
            B_CAT(lc_train_epoch, SFX)(&tr, th, m, v, NULL, X, Y, N, NULL, B, &step, NULL,
                                       &loss_sum, &n_done);
            const double d = cpu_ns() - t0;
            if (d < t) t = d;
        }
        char what[96];
        snprintf(what, sizeof what, "whole epoch, %lld samples (CPU)", (long long)N);
        report(what, t, 3.0 * (double)(N * macs));
        free(th0), free(th), free(m), free(v), free(X), free(Y);
    }
}

/* Products of odd shapes into the checksum (widths 1..100, rows not a multiple of the block,
 * read transposed or not). */
static void BF(odd_shapes)(void)
{
    static const int64_t dims[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 63, 65, 80, 100};
    const int64_t nd = (int64_t)(sizeof dims / sizeof dims[0]);
    REAL *A = BF(filled)(100 * 100, 1), *M = BF(filled)(100 * 100, 1),
         *C = BF(filled)(100 * 100, 0);
    for (int64_t a = 0; a < nd; a++)
        for (int64_t b = 0; b < nd; b++)
            for (int64_t c = 0; c < nd; c++) {
                const int64_t rows = dims[a], K = dims[b], N = dims[c];
                B_CAT(lc_matmul, SFX)(A, K, 1, M, C, rows, K, N);
                mix(C, (size_t)(rows * N) * sizeof(REAL));
                B_CAT(lc_matmul, SFX)(A, 1, rows, M, C, rows, K, N);
                mix(C, (size_t)(rows * N) * sizeof(REAL));
            }
    REAL *z = BF(filled)(4096, 6), *h = BF(filled)(4096, 0), *d = BF(filled)(4096, 0);
    for (int i = 0; i < 64; i++) z[i] = (REAL)((i - 32) / 16.0); /* around 0, +-1 and 2 */
    z[100] = (REAL)NAN, z[101] = (REAL)INFINITY, z[102] = -(REAL)INFINITY, z[103] = (REAL)-0.0;
    for (int32_t act = 0; act < LC_N_ACTIVATIONS; act++)
        for (int64_t n = 1; n <= 4096; n = n < 40 ? n + 1 : n * 2) {
            B_CAT(lc_act_forward, SFX)(act, z, h, n);
            mix(h, (size_t)n * sizeof(REAL));
            for (int32_t clip = 0; clip < 2; clip++) {
                B_CAT(lc_act_backward, SFX)(act, clip, z, h, A, d, n);
                mix(d, (size_t)n * sizeof(REAL));
            }
        }
    free(A), free(M), free(C), free(z), free(h), free(d);
}

#undef BF
#undef B_CAT
#undef B_CAT_
