/* lc_dense_impl.h: the one definition of the dense kernels, included by lc_dense.c once per
 * floating type with REAL (float or double), SFX (f32 or f64) and the math functions
 * EXP, TANH, LOG1P, FABS, SQRT defined.  Not a public header. */

#define LC_CAT_(a, b) a##_##b
#define LC_CAT(a, b) LC_CAT_(a, b)
#define FN(name) LC_CAT(name, SFX)

static inline REAL FN(act_one)(int32_t act, REAL z)
{
    switch (act) {
    case LC_ACT_RELU:
        return z > 0 ? z : (REAL)0;
    case LC_ACT_TANH:
        return TANH(z);
    case LC_ACT_SIGMOID:
        return (REAL)1 / ((REAL)1 + EXP(-z));
    case LC_ACT_SOFTSIGN:
        return z / ((REAL)1 + FABS(z));
    case LC_ACT_LEAKY_RELU:
        return z > 0 ? z : (REAL)LC_LEAKY_SLOPE * z;
    case LC_ACT_SOFTPLUS:
        return LOG1P(EXP(-FABS(z))) + (z > 0 ? z : (REAL)0);
    default:
        return z;
    }
}

/* d act / d z, from the pre-activation z and the activation h = act(z). */
static inline REAL FN(act_deriv)(int32_t act, REAL z, REAL h)
{
    switch (act) {
    case LC_ACT_RELU:
        return z > 0 ? (REAL)1 : (REAL)0;
    case LC_ACT_TANH:
        return (REAL)1 - h * h;
    case LC_ACT_SIGMOID:
        return h * ((REAL)1 - h);
    case LC_ACT_SOFTSIGN: {
        REAL d = (REAL)1 + FABS(z);
        return (REAL)1 / (d * d);
    }
    case LC_ACT_LEAKY_RELU:
        return z > 0 ? (REAL)1 : (REAL)LC_LEAKY_SLOPE;
    case LC_ACT_SOFTPLUS:
        return (REAL)1 / ((REAL)1 + EXP(-z));
    default:
        return (REAL)1;
    }
}

LC_HOT void FN(lc_act_forward)(int32_t act, const REAL *z, REAL *h, int64_t n)
{
    int64_t i;
    switch (act) {
    case LC_ACT_LINEAR:
        for (i = 0; i < n; i++) h[i] = z[i];
        break;
    case LC_ACT_RELU:
        for (i = 0; i < n; i++) h[i] = z[i] > 0 ? z[i] : (REAL)0;
        break;
#if defined(LC_VMATH_FLOAT)
    case LC_ACT_TANH: /* float32: in double, rounded once, 4 x 4 lanes at a time (lc_vmath.h) */
        LC_V4F_APPLY(tanh, z, h, n);
        break;
    case LC_ACT_SIGMOID:
        LC_V4F_APPLY(sigmoid, z, h, n);
        break;
#else
    case LC_ACT_TANH: /* float64: the project's tanh, 4 x 4 lanes at a time (lc_vmath.h) */
        LC_V4D_APPLY(lc_tanh_f64_ways, z, h, n);
        break;
#endif
    default:
        for (i = 0; i < n; i++) h[i] = FN(act_one)(act, z[i]);
    }
}

/* d := act'(z) elementwise, one loop per common activation so each vectorizes. */
LC_HOT void FN(lc_act_deriv)(int32_t act, const REAL *restrict z, const REAL *restrict h,
                             REAL *restrict d, int64_t n)
{
    switch (act) {
    case LC_ACT_LINEAR:
        for (int64_t i = 0; i < n; i++) d[i] = (REAL)1;
        break;
    case LC_ACT_RELU:
        for (int64_t i = 0; i < n; i++) d[i] = z[i] > 0 ? (REAL)1 : (REAL)0;
        break;
    case LC_ACT_TANH:
        for (int64_t i = 0; i < n; i++) d[i] = (REAL)1 - h[i] * h[i];
        break;
    default:
        for (int64_t i = 0; i < n; i++) d[i] = FN(act_deriv)(act, z[i], h[i]);
    }
}

/* C := A M for A (rows, K) read with strides (A[i][k] = A[i * ars + k * acs], so A may be the
 * transpose of a row-major array) and M (K, N), C (rows, N) row-major.  Every C[i][j] is the
 * sum over k in increasing order of A[i][k] M[k][j], starting from zero, whichever path
 * computes it: so the result is the same bit for bit for any vector width and any path.
 * Register blocking (GCC/Clang vector extensions; a vector operation is the same IEEE
 * operation on each lane): tiles of 5 or 4 rows by 64, then 32, then 16 bytes of columns of C
 * stay in registers across the whole k loop, the last 1-3 columns as scalars, in blocks of
 * rows that keep A and a tile's columns of M in L1 (see mm_blocks).  Narrow products (fewer
 * columns than one 32-byte vector holds, e.g. a 1- or 4-output layer) put vectors over rows
 * instead (matmul_narrow), reading A as it is when its rows are contiguous (x^T dz) and
 * otherwise from a transposed copy on the stack (x W, up to FN(MATMUL_PACK) elements of A).
 *
 * No fused multiply-add by default, by decision (lc_set_fma opts in: FN(matmul_fma) below):
 * each term is a rounded product added with one rounded addition, as in the NumPy twin's
 * elementwise steps and in the plain loop, so a result is the same on every x86-64 machine
 * whatever instruction set the load-time dispatch picks.  FMA would round once per term
 * instead of twice: other bits, differing between machines with and without it.  Zen 3 issues vector multiplies and adds to separate pipes, two of each per
 * cycle, the same peak as two FMAs (16 float32 multiply-adds a cycle).  Measured by
 * bench/bench_kernels.c on one Zen 3 core (batch 32, shared machine, best of many runs):
 * 0.07-0.08 cycles per multiply-add (80-92 GFLOP/s) for widths 32-100, x^T dz the same; 1- and
 * 4-column products 0.15-0.4 (they took 0.7-1.3 before the narrow path).  Yet the peak is not
 * the whole cost: a scratch build with FMA contraction ran the medium networks' products
 * 1.15-1.19x faster on that core (best of six alternating runs), with half the instructions
 * to issue.  On Intel cores multiplies and adds share the FMA units' ports, so there this
 * choice halves the products' peak: the price of the same bits everywhere.
 *
 * AVX-512 (FN(matmul_wide)): products of at least 16 float (8 double) columns take the same
 * tiles with 64-byte vectors where the CPU has AVX-512F, so the same bits again.  The machine
 * this was written on (AMD Zen 3) has no AVX-512: the path runs there on an emulated AVX-512
 * CPU (tests/kernels/test_emulated_cpus.py) and its source compiled for AVX2 (LC_TEST_WIDE);
 * its speed has not been measured. */
#if LC_HAVE_VECTOR_EXT
LC_VECTOR_TYPEDEF(FN(lc_vec), REAL, 32);
LC_VECTOR_TYPEDEF(FN(lc_hvec), REAL, 16); /* half a vector: leftover columns */

/* Narrow products (N below one vector's lanes): C[i][j] for the rows [0, r) returned, r a
 * multiple of the lanes, with A's rows contiguous (ars == 1: A[i][k] = A[i + k * acs]), so a
 * vector holds consecutive rows of one column of C and the whole k loop runs in registers,
 * four independent row vectors by one column at a time.  Each lane is the same ordered sum
 * from zero as the other paths compute. */
LC_HOT static int64_t FN(matmul_narrow)(const REAL *restrict A, int64_t acs, const REAL *restrict M,
                                        REAL *restrict C, int64_t rows, int64_t K, int64_t N)
{
    typedef FN(lc_vec) vec;
    enum {
        JB = (int)(sizeof(vec) / sizeof(REAL))
    };
    REAL t[4 * JB];
    int64_t i = 0;
    for (; i + 4 * JB <= rows; i += 4 * JB)
        for (int64_t j = 0; j < N; j++) {
            vec c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, a0, a1, a2, a3;
            for (int64_t k = 0; k < K; k++) {
                const REAL *ak = A + k * acs + i;
                const REAL m = M[k * N + j];
                memcpy(&a0, ak, sizeof a0);
                memcpy(&a1, ak + JB, sizeof a1);
                memcpy(&a2, ak + 2 * JB, sizeof a2);
                memcpy(&a3, ak + 3 * JB, sizeof a3);
                c0 += a0 * m;
                c1 += a1 * m;
                c2 += a2 * m;
                c3 += a3 * m;
            }
            memcpy(t, &c0, sizeof c0);
            memcpy(t + JB, &c1, sizeof c1);
            memcpy(t + 2 * JB, &c2, sizeof c2);
            memcpy(t + 3 * JB, &c3, sizeof c3);
            for (int r = 0; r < 4 * JB; r++) C[(i + r) * N + j] = t[r];
        }
    for (; i + JB <= rows; i += JB) { /* one row vector: four columns at a time, so that four
                                        * independent sums hide the latency of the additions
                                        * (8 rows by 64 by 4, the 4-output layer's share of a
                                        * row part: 0.35 TSC cycles a multiply-add on Zen 3
                                        * one column at a time) */
        int64_t j = 0;
        for (; j + 4 <= N; j += 4) {
            vec c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, a0;
            for (int64_t k = 0; k < K; k++) {
                const REAL *mk = M + k * N + j;
                memcpy(&a0, A + k * acs + i, sizeof a0);
                c0 += a0 * mk[0];
                c1 += a0 * mk[1];
                c2 += a0 * mk[2];
                c3 += a0 * mk[3];
            }
            memcpy(t, &c0, sizeof c0);
            memcpy(t + JB, &c1, sizeof c1);
            memcpy(t + 2 * JB, &c2, sizeof c2);
            memcpy(t + 3 * JB, &c3, sizeof c3);
            for (int r = 0; r < JB; r++)
                for (int q = 0; q < 4; q++) C[(i + r) * N + j + q] = t[q * JB + r];
        }
        for (; j < N; j++) {
            vec c0 = {0}, a0;
            for (int64_t k = 0; k < K; k++) {
                memcpy(&a0, A + k * acs + i, sizeof a0);
                c0 += a0 * M[k * N + j];
            }
            memcpy(t, &c0, sizeof c0);
            for (int r = 0; r < JB; r++) C[(i + r) * N + j] = t[r];
        }
    }
    return i;
}
#endif

void FN(lc_transpose)(const REAL *restrict in, REAL *restrict out, int64_t rows, int64_t cols);

/* Elements of the stack buffer a narrow product packs a row-major A into (16 KiB or less). */
enum {
    FN(MATMUL_PACK) = 2048
};

#if LC_HAVE_VECTOR_EXT
/* One tile of C: R rows (R <= 5) at row i by V vectors (V <= 2) of type VT at column j, the
 * whole k loop in registers: R x V independent ordered sums from zero.  Called with constant
 * R and V, so the loops unroll and c stays in registers (5 x 2: ten accumulators, two rows of
 * M, a broadcast of A and a product, 14 of AVX2's 16 registers). */
#define LC_MM_TILE(NAME, VT)                                                                       \
    LC_ALWAYS_INLINE void NAME(const REAL *restrict A, int64_t ars, int64_t acs,                   \
                               const REAL *restrict M, REAL *restrict C, int64_t K, int64_t N,     \
                               int64_t i, int64_t j, const int R, const int V)                     \
    {                                                                                              \
        enum {                                                                                     \
            W = (int)(sizeof(VT) / sizeof(REAL))                                                   \
        };                                                                                         \
        VT c[5][2], m[2];                                                                          \
        for (int r = 0; r < R; r++)                                                                \
            for (int v = 0; v < V; v++) c[r][v] = (VT){0};                                         \
        const REAL *a = A + i * ars;                                                               \
        for (int64_t k = 0; k < K; k++) {                                                          \
            for (int v = 0; v < V; v++) memcpy(&m[v], M + k * N + j + v * W, sizeof m[v]);         \
            for (int r = 0; r < R; r++) {                                                          \
                const REAL x = a[r * ars + k * acs];                                               \
                for (int v = 0; v < V; v++) c[r][v] += x * m[v];                                   \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < R; r++)                                                                \
            for (int v = 0; v < V; v++) {                                                          \
                const VT t = c[r][v]; /* c itself not addressed: it stays in registers */          \
                memcpy(C + (i + r) * N + j + v * W, &t, sizeof t);                                 \
            }                                                                                      \
    }
LC_MM_TILE(FN(mm_tile), FN(lc_vec))
LC_MM_TILE(FN(mm_tile_half), FN(lc_hvec))
#if LC_WIDE
LC_VECTOR_TYPEDEF(FN(lc_zvec), REAL, 64); /* one AVX-512 register */
LC_MM_TILE(FN(mm_tile_wide), FN(lc_zvec))
#endif
#undef LC_MM_TILE

/* The tile of C at row i (R rows) and column j of one kind.  AVX2's kinds (wide = 0): 0 two
 * vectors, 1 one, 2 half a vector, 3 one column as R scalar sums.  AVX-512's (wide = 1): 0 two
 * 64-byte vectors, 1 one, then AVX2's 1, 2 and 3 (a 32-byte vector, a 16-byte one, a
 * column).  Each tile is the same ordered sums, so a product may mix them freely. */
LC_ALWAYS_INLINE void FN(mm_tile_kind)(const REAL *restrict A, int64_t ars, int64_t acs,
                                       const REAL *restrict M, REAL *restrict C, int64_t K,
                                       int64_t N, int64_t i, int64_t j, const int R, int kind,
                                       const int wide, const int fused)
{
#if LC_WIDE
    if (wide) {
        if (kind == 0) {
            FN(mm_tile_wide)(A, ars, acs, M, C, K, N, i, j, R, 2);
            return;
        }
        if (kind == 1) {
            FN(mm_tile_wide)(A, ars, acs, M, C, K, N, i, j, R, 1);
            return;
        }
        kind--;
    }
#else
    (void)wide;
#endif
    switch (kind) { /* the vector tiles' c += x * m are fused where the caller contracts */
    case 0:
        FN(mm_tile)(A, ars, acs, M, C, K, N, i, j, R, 2);
        break;
    case 1:
        FN(mm_tile)(A, ars, acs, M, C, K, N, i, j, R, 1);
        break;
    case 2:
        FN(mm_tile_half)(A, ars, acs, M, C, K, N, i, j, R, 1);
        break;
    default: {
        REAL s[5];
        for (int r = 0; r < R; r++) s[r] = 0;
        for (int64_t k = 0; k < K; k++) {
            const REAL mk = M[k * N + j];
            for (int r = 0; r < R; r++) {
                const REAL a = A[(i + r) * ars + k * acs];
                s[r] = fused ? LC_FMA_REAL(a, mk, s[r]) : s[r] + a * mk;
            }
        }
        for (int r = 0; r < R; r++) C[(i + r) * N + j] = s[r];
    }
    }
}
#endif

#if LC_HAVE_VECTOR_EXT
/* The rows [i, rows) of C by register tiles (FN(mm_tile_kind)), wide or not (a constant where it is
 * inlined), with the row strips AVX2 holds (avx2) or four rows (the baseline clone).  Blocks of MC
 * rows; in each, for one column tile after another, the tiles of all its strips, so the tile's
 * columns of M (K x 16 floats, 32 on the AVX-512 path) and the block's rows of A stay in L1 from
 * strip to strip (a 100 x 80 kernel is 32 KiB, the whole L1 of a Zen 3 core: read strip by strip it
 * came from L2 for every strip, 0.089 cycles a multiply-add against 0.072 for the 64 x 64 one).
 * Strips of five rows where AVX2 holds their ten accumulators, and four: a row of A is a broadcast
 * per k, which takes a vector pipe, so more rows per row of M pay (5 x 16 floats: 0.069 cycles a
 * multiply-add on one Zen 3 core, 4 x 16 0.078; 6 x 16 needs all 16 registers and GCC spilled one
 * accumulator).  In a block, left = 5 a + 4 b with b the fewest fours, (4 left) mod 5: 32 rows are
 * 5 5 5 5 4 4 4, eight 4 4.  Without AVX2 fours, as before; 1-3 rows where nothing else is left.
 * The AVX-512 path keeps these strips: its 32 registers would hold more rows, but no machine to
 * measure that on was at hand. */
LC_ALWAYS_INLINE void FN(mm_blocks)(const REAL *restrict A, int64_t ars, int64_t acs,
                                    const REAL *restrict M, REAL *restrict C, int64_t i,
                                    int64_t rows, int64_t K, int64_t N, int avx2, const int wide,
                                    const int fused)
{
    enum {
        JB = (int)(sizeof(FN(lc_vec)) / sizeof(REAL)),
        HB = (int)(sizeof(FN(lc_hvec)) / sizeof(REAL)),
        MC = 40 * 4 / (int)sizeof(REAL) /* A's block: 40 float rows of up to 100, 16 KB */
    };
    /* the columns of a tile of each kind (FN(mm_tile_kind)), AVX2's and AVX-512's */
    static const int64_t kind_cols[2][5] = {{2 * JB, JB, HB, 1, 1}, {4 * JB, 2 * JB, JB, HB, 1}};
    const int64_t *cols = kind_cols[wide != 0];
    for (int64_t i0 = i; i0 < rows; i0 += MC) {
        const int64_t i1 = rows - i0 < MC ? rows : i0 + MC;
        for (int64_t j = 0; j < N;) {
            int kind = 0;
            while (j + cols[kind] > N) kind++; /* the widest tile that fits */
            for (int64_t ii = i0; ii < i1;) {
                const int64_t left = i1 - ii, b = (4 * left) % 5;
                int R;
                if (!avx2)
                    R = left >= 4 ? 4 : (int)left;
                else if (left >= 4 * b)
                    R = left > 4 * b ? 5 : 4;
                else
                    R = left > 5 ? 4 : (int)left;
                switch (R) {
                case 5:
                    FN(mm_tile_kind)(A, ars, acs, M, C, K, N, ii, j, 5, kind, wide, fused);
                    break;
                case 4:
                    FN(mm_tile_kind)(A, ars, acs, M, C, K, N, ii, j, 4, kind, wide, fused);
                    break;
                case 3:
                    FN(mm_tile_kind)(A, ars, acs, M, C, K, N, ii, j, 3, kind, wide, fused);
                    break;
                case 2:
                    FN(mm_tile_kind)(A, ars, acs, M, C, K, N, ii, j, 2, kind, wide, fused);
                    break;
                default:
                    FN(mm_tile_kind)(A, ars, acs, M, C, K, N, ii, j, 1, kind, wide, fused);
                }
                ii += R;
            }
            j += cols[kind];
        }
    }
}

#if LC_WIDE
/* The products of at least one 64-byte vector of columns on AVX-512 (lc_dense.c, LC_WIDE): the
 * AVX2 tiles' source with two 64-byte vectors of columns instead of two 32-byte ones, so the
 * same ordered sums and the same bits.  Not an LC_HOT clone: a clone's preprocessor pass is
 * shared, so its vectors cannot be wider than the others'. */
LC_WIDE_TARGET __attribute__((noinline)) static void
FN(matmul_wide)(const REAL *restrict A, int64_t ars, int64_t acs, const REAL *restrict M,
                REAL *restrict C, int64_t rows, int64_t K, int64_t N)
{
    FN(mm_blocks)(A, ars, acs, M, C, 0, rows, K, N, 1, 1, 0);
}
#endif
#endif

#if LC_FMA
/* The opt-in FMA products (lc_dense.c, lc_set_fma): AVX2's tiles and strips, every shape
 * through them (no narrow path: its sums would not be fused), each term a fused multiply-add,
 * C[i][j] = fma(A[i][K-1], M[K-1][j], ... fma(A[i][0], M[0][j], 0)). */
LC_FMA_TARGET __attribute__((noinline)) static void
FN(matmul_fma)(const REAL *restrict A, int64_t ars, int64_t acs, const REAL *restrict M,
               REAL *restrict C, int64_t rows, int64_t K, int64_t N)
{
    FN(mm_blocks)(A, ars, acs, M, C, 0, rows, K, N, 1, 0, 1);
}
#endif
#if LC_FMA_WIDE
/* The same with AVX-512's tiles for at least one 64-byte vector of columns. */
LC_FMA_WIDE_TARGET __attribute__((noinline)) static void
FN(matmul_wide_fma)(const REAL *restrict A, int64_t ars, int64_t acs, const REAL *restrict M,
                    REAL *restrict C, int64_t rows, int64_t K, int64_t N)
{
    FN(mm_blocks)(A, ars, acs, M, C, 0, rows, K, N, 1, 1, 1);
}
#endif

LC_HOT void FN(lc_matmul)(const REAL *restrict A, int64_t ars, int64_t acs, const REAL *restrict M,
                          REAL *restrict C, int64_t rows, int64_t K, int64_t N)
{
    int64_t i = 0;
#if LC_HAVE_VECTOR_EXT
    enum {
        JB = (int)(sizeof(FN(lc_vec)) / sizeof(REAL))
    };
#if LC_FMA
    if (__atomic_load_n(&lc_fma_on, __ATOMIC_RELAXED)) { /* only ever set where the CPU has it */
#if LC_FMA_WIDE
        if (N >= 2 * JB && lc_cpu_has_wide()) {
            FN(matmul_wide_fma)(A, ars, acs, M, C, rows, K, N);
            return;
        }
#endif
        FN(matmul_fma)(A, ars, acs, M, C, rows, K, N);
        return;
    }
#endif
#if LC_WIDE
    if (N >= 2 * JB && lc_cpu_has_wide()) {
        FN(matmul_wide)(A, ars, acs, M, C, rows, K, N);
        return;
    }
#endif
#if LC_X86_AVX2
    /* Not in the baseline clone, which runs only without AVX2: there GCC lowers the 32-byte
     * vectors through pairs of 16-byte registers (or memory), so matmul_narrow's and the
     * five-row tiles' accumulators do not fit, and the scalar columns and four-row tiles are
     * faster. */
    const int avx2 = lc_cpu_has_avx2();
#else
    const int avx2 = 1;
#endif
    if (avx2 && N < JB && rows >= JB && K > 0) { /* vectors over rows (matmul_narrow) */
        if (ars == 1) {
            i = FN(matmul_narrow)(A, acs, M, C, rows, K, N);
        } else if (acs == 1 && ars == K && rows * K <= FN(MATMUL_PACK)) {
            REAL packed[FN(MATMUL_PACK)]; /* A transposed: data movement only */
            FN(lc_transpose)(A, packed, rows, K);
            i = FN(matmul_narrow)(packed, rows, M, C, rows, K, N);
        }
    }
    FN(mm_blocks)(A, ars, acs, M, C, i, rows, K, N, avx2, 0, 0);
#else
    for (; i < rows; i++) {
        REAL *restrict c = C + i * N;
        for (int64_t j = 0; j < N; j++) c[j] = 0;
        for (int64_t k = 0; k < K; k++) {
            const REAL a = A[i * ars + k * acs];
            const REAL *restrict m = M + k * N;
            for (int64_t j = 0; j < N; j++) c[j] += a * m[j];
        }
    }
#endif
}

/* C := A M for row-major A (rows, K), M (K, N). */
static inline void FN(matmul)(const REAL *A, const REAL *M, REAL *C, int64_t rows, int64_t K,
                              int64_t N)
{
    FN(lc_matmul)(A, K, 1, M, C, rows, K, N);
}

/* out (cols, rows) := in (rows, cols) transposed. */
#if LC_X86_AVX2
/* out (V x V block, row stride ldo) := in (V x V block, row stride ldi) transposed, V the lanes
 * of one AVX register (8 floats or 4 doubles), with in-register shuffles: data movement only, so
 * exactly the plain loop's result. */
__attribute__((target("avx2"))) static void FN(transpose_block)(const REAL *in, int64_t ldi,
                                                                REAL *out, int64_t ldo)
{
#if LC_REAL_IS_FLOAT
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(in + i * ldi);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(out + i * ldo, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * ldo, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
    }
#else
    __m256d r[4], t[4];
    for (int i = 0; i < 4; i++) r[i] = _mm256_loadu_pd(in + i * ldi);
    t[0] = _mm256_unpacklo_pd(r[0], r[1]);
    t[1] = _mm256_unpackhi_pd(r[0], r[1]);
    t[2] = _mm256_unpacklo_pd(r[2], r[3]);
    t[3] = _mm256_unpackhi_pd(r[2], r[3]);
    _mm256_storeu_pd(out, _mm256_permute2f128_pd(t[0], t[2], 0x20));
    _mm256_storeu_pd(out + ldo, _mm256_permute2f128_pd(t[1], t[3], 0x20));
    _mm256_storeu_pd(out + 2 * ldo, _mm256_permute2f128_pd(t[0], t[2], 0x31));
    _mm256_storeu_pd(out + 3 * ldo, _mm256_permute2f128_pd(t[1], t[3], 0x31));
#endif
}
#endif

/* out[c][r] := in[r][c] for the block rows [r0, r1), columns [c0, c1). */
static void FN(transpose_plain)(const REAL *restrict in, REAL *restrict out, int64_t rows,
                                int64_t cols, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    for (int64_t c = c0; c < c1; c++)
        for (int64_t r = r0; r < r1; r++) out[c * rows + r] = in[r * cols + c];
}

/* out[c][r] := in[r][c] for the rows [first, last) of in (rows, cols) and every column: the
 * columns [first, last) of out (cols, rows).  Parts that each own some rows of a kernel write
 * their share of its transpose with it (FN(par_params_run)). */
static void FN(transpose_rows)(const REAL *restrict in, REAL *restrict out, int64_t rows,
                               int64_t cols, int64_t first, int64_t last)
{
    enum {
        TB = 32 / sizeof(REAL)
    }; /* tiles of one AVX register's lanes square */
    int64_t r0 = first, c0 = 0;
#if LC_X86_AVX2
    if (lc_cpu_has_avx2()) {
        for (; r0 + TB <= last; r0 += TB)
            for (c0 = 0; c0 + TB <= cols; c0 += TB)
                FN(transpose_block)(in + r0 * cols + c0, cols, out + c0 * rows + r0, rows);
        FN(transpose_plain)(in, out, rows, cols, first, r0, c0, cols); /* right edge */
    }
#endif
    for (; r0 < last; r0 += TB) { /* the rest (everything without AVX2), tile by tile */
        const int64_t r1 = r0 + TB < last ? r0 + TB : last;
        for (c0 = 0; c0 < cols; c0 += TB)
            FN(transpose_plain)(in, out, rows, cols, r0, r1, c0, c0 + TB < cols ? c0 + TB : cols);
    }
}

void FN(lc_transpose)(const REAL *restrict in, REAL *restrict out, int64_t rows, int64_t cols)
{
    FN(transpose_rows)(in, out, rows, cols, 0, rows);
}

/* dz := da * [|h| <= 1 if clip] * act'(z), one loop per activation so each vectorizes.  Then,
 * with clip, each element stays or becomes +0 where h is outside [-1, 1] (|h| <= 1 is false
 * for NaN too), by a select that vectorizes too: no branch, whose outcome would follow the
 * data (a relu layer's outputs cross 1 at random, a tanh layer's never do, so relu layers paid
 * mispredictions: 0.9 ns an element against 0.15 on Zen 3). */
#define LC_BACK_LOOP(VALUE)                                                                        \
    do {                                                                                           \
        for (int64_t i = 0; i < n; i++) dz[i] = (VALUE);                                           \
        if (clip)                                                                                  \
            for (int64_t i = 0; i < n; i++) dz[i] = FABS(h[i]) <= (REAL)1 ? dz[i] : (REAL)0;       \
    } while (0)

LC_HOT void FN(lc_act_backward)(int32_t act, int32_t clip, const REAL *restrict z,
                                const REAL *restrict h, const REAL *restrict da, REAL *restrict dz,
                                int64_t n)
{
    switch (act) {
    case LC_ACT_LINEAR:
        LC_BACK_LOOP(da[i]);
        break;
    case LC_ACT_RELU:
        LC_BACK_LOOP(z[i] > 0 ? da[i] : (REAL)0);
        break;
    case LC_ACT_TANH:
        LC_BACK_LOOP(da[i] * ((REAL)1 - h[i] * h[i]));
        break;
    case LC_ACT_SIGMOID:
        LC_BACK_LOOP(da[i] * (h[i] * ((REAL)1 - h[i])));
        break;
    default:
        LC_BACK_LOOP(da[i] * FN(act_deriv)(act, z[i], h[i]));
    }
}
#undef LC_BACK_LOOP

/* ---- A layer's elementwise passes, compiled for AVX2 too (LC_HOT) ----
 *
 * Only LC_HOT functions get an AVX2 copy; a loop written in the step's own functions runs at
 * the baseline's four float lanes.  So the elementwise loops of a layer's forward and of its
 * bias gradient live here, used by the one-layer kernels below and by the training step, each
 * value computed by the same IEEE operations in the same order as the separate loops they
 * replaced (the same bits whichever copy runs). */

/* clip(u) to [-1, 1]; NaN stays NaN (neither comparison holds). */
#define LC_CLIP_UNIT(u) ((u) < -(REAL)1 ? -(REAL)1 : ((u) > (REAL)1 ? (REAL)1 : (u)))

/* The fused epilogue of FN(dense_epilogue) for relu (relu 1) or linear (relu 0), with a bias
 * or not and out 0 (a is h, passed as NULL), 1 (a := clip(h)) or 2 (a := h, a copy): one pass
 * over each row.  Inlined with constant flags, so each combination is a loop of its own.  A
 * relu value is +0 or above and never NaN, so its clip's comparison with -1 never holds and
 * only the one with 1 is made: the same values. */
LC_ALWAYS_INLINE void FN(epilogue_rows)(int relu, int bias, int out, const REAL *restrict b,
                                        REAL *restrict z, REAL *restrict h, REAL *restrict a,
                                        int64_t nb, int64_t no)
{
    for (int64_t i = 0; i < nb; i++) {
        REAL *restrict zi = z + i * no, *restrict hi = h + i * no;
        REAL *restrict ai = out ? a + i * no : NULL;
        for (int64_t j = 0; j < no; j++) {
            REAL v = zi[j];
            if (bias) {
                v = v + b[j];
                zi[j] = v;
            }
            const REAL u = relu ? (v > 0 ? v : (REAL)0) : v;
            hi[j] = u;
            if (out == 1) ai[j] = relu ? (u > (REAL)1 ? (REAL)1 : u) : LC_CLIP_UNIT(u);
            if (out == 2) ai[j] = u;
        }
    }
}

/* FN(epilogue_rows) with constant relu and bias flags, for the output that clip and a ask for. */
#define LC_EPILOGUE_OUT(relu, bias)                                                                \
    do {                                                                                           \
        if (clip)                                                                                  \
            FN(epilogue_rows)(relu, bias, 1, b, z, h, a, nb, no);                                  \
        else if (a != h)                                                                           \
            FN(epilogue_rows)(relu, bias, 2, b, z, h, a, nb, no);                                  \
        else                                                                                       \
            FN(epilogue_rows)(relu, bias, 0, b, z, h, NULL, nb, no);                               \
    } while (0)
#define LC_EPILOGUE_CASES(relu)                                                                    \
    do {                                                                                           \
        if (b)                                                                                     \
            LC_EPILOGUE_OUT(relu, 1);                                                              \
        else                                                                                       \
            LC_EPILOGUE_OUT(relu, 0);                                                              \
    } while (0)

/* A layer's forward after its product z (nb rows of no, contiguous) and the accumulator's
 * quantization: z := z + b, each bias added once to the finished ordered sum (b NULL: no
 * bias); h := act(z) (lc_act_forward's values); a := clip(h) to [-1, 1] with clip (then a is
 * its own buffer), else a copy of h where a is not h.  relu and linear run in one pass (z, h
 * and a written together), the other activations in three: the bias, lc_act_forward, the
 * clip or copy. */
LC_HOT static void FN(dense_epilogue)(int32_t act, int32_t clip, const REAL *restrict b, REAL *z,
                                      REAL *h, REAL *a, int64_t nb, int64_t no)
{
    if (act == LC_ACT_RELU) {
        LC_EPILOGUE_CASES(1);
        return;
    }
    if (act == LC_ACT_LINEAR) {
        LC_EPILOGUE_CASES(0);
        return;
    }
    const int64_t n = nb * no;
    if (b)
        for (int64_t i = 0; i < nb; i++) {
            REAL *restrict zi = z + i * no;
            for (int64_t j = 0; j < no; j++) zi[j] += b[j];
        }
    FN(lc_act_forward)(act, z, h, n);
    if (clip) {
        const REAL *restrict hr = h;
        REAL *restrict ar = a;
        for (int64_t i = 0; i < n; i++) ar[i] = LC_CLIP_UNIT(hr[i]);
    } else if (a != h) {
        memcpy(a, h, (size_t)n * sizeof(REAL));
    }
}
#undef LC_EPILOGUE_CASES
#undef LC_EPILOGUE_OUT

/* Columns of the sums in FN(col_sums) held in registers at a time. */
#define LC_COL_BLOCK (64 / (int)sizeof(REAL))

/* s[j] := the sum over rows i in [0, B) of x[i][j] for x (B, n) row-major, each column summed
 * from zero in row order: the bias gradient's sum over samples.  LC_COL_BLOCK columns at a
 * time (16 float32 or 8 float64) stay in registers across the rows. */
/* s[j .. j + W) as FN(col_sums) defines them, W (a constant where inlined, at most
 * 2 LC_COL_BLOCK) sums in registers across the rows. */
LC_ALWAYS_INLINE void FN(col_sums_block)(const REAL *restrict x, int64_t B, int64_t n, int64_t j,
                                         const int W, REAL *restrict s)
{
    REAL acc[2 * LC_COL_BLOCK] = {0};
    for (int64_t i = 0; i < B; i++)
        for (int k = 0; k < W; k++) acc[k] += x[i * n + j + k];
    for (int k = 0; k < W; k++) s[j + k] = acc[k];
}

LC_HOT static void FN(col_sums)(const REAL *restrict x, int64_t B, int64_t n, REAL *restrict s)
{
    int64_t j = 0;
    for (; j + 2 * LC_COL_BLOCK <= n; j += 2 * LC_COL_BLOCK)
        FN(col_sums_block)(x, B, n, j, 2 * LC_COL_BLOCK, s);
    for (; j + LC_COL_BLOCK <= n; j += LC_COL_BLOCK)
        FN(col_sums_block)(x, B, n, j, LC_COL_BLOCK, s);
    if (j < n) { /* the last n - j < LC_COL_BLOCK columns */
        for (int64_t k = j; k < n; k++) s[k] = 0;
        for (int64_t i = 0; i < B; i++)
            for (int64_t k = j; k < n; k++) s[k] += x[i * n + k];
    }
}
#undef LC_COL_BLOCK

void FN(lc_dense_forward)(const REAL *x, int64_t B, int64_t n_in, int64_t n_out, const REAL *W,
                          const REAL *b, int32_t act, int32_t clip, REAL *z, REAL *h, REAL *a)
{
    FN(matmul)(x, W, z, B, n_in, n_out);
    FN(dense_epilogue)(act, clip, b, z, h, a, B, n_out);
}

void FN(lc_dense_backward)(const REAL *x, int64_t B, int64_t n_in, int64_t n_out, const REAL *W,
                           const REAL *z, const REAL *h, const REAL *da, int32_t act, int32_t clip,
                           REAL *work, REAL *gW, REAL *gb, REAL *dx)
{
    REAL *dz = work, *wt = work + B * n_out;
    FN(lc_act_backward)(act, clip, z, h, da, dz, B * n_out);
    /* gW := x^T dz (summing over samples in order), reading x transposed in place */
    FN(lc_matmul)(x, 1, n_in, dz, gW, n_in, B, n_out);
    if (gb) FN(col_sums)(dz, B, n_out, gb); /* gb := sum over samples of dz, in order */
    if (dx) {                               /* dx := dz W^T */
        FN(lc_transpose)(W, wt, n_in, n_out);
        FN(matmul)(dz, wt, dx, B, n_out, n_in);
    }
}

double FN(lc_loss_grad)(int32_t loss, const REAL *f, const REAL *y, int64_t B, int64_t m,
                        REAL *dloss)
{
    const int64_t n = B * m;
    double total = 0.0;
    if (loss == LC_LOSS_MAE) {
        const REAL s = (REAL)(1.0 / (double)n);
        for (int64_t i = 0; i < n; i++) {
            const REAL r = f[i] - y[i];
            total += (double)FABS(r);
            if (dloss) dloss[i] = r > 0 ? s : (r < 0 ? -s : (r == 0 ? (REAL)0 : r));
        }
        return total / (double)n;
    }
    if (loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE) return NAN;
    const double denom = loss == LC_LOSS_HALF_MSE ? 2.0 * (double)B : (double)n;
    const REAL s = loss == LC_LOSS_HALF_MSE ? (REAL)(1.0 / (double)B) : (REAL)(2.0 / (double)n);
    for (int64_t i = 0; i < n; i++) {
        const REAL r = f[i] - y[i];
        total += (double)r * (double)r;
        if (dloss) dloss[i] = s * r;
    }
    return total / denom;
}

/* ---- The training step: one forward and one backward pass for float and QAT ----
 *
 * Quantization is a hook: where t->quant is NULL or a field is off, the step does exactly the
 * float arithmetic; where a field is on, it calls lc_qat_quantize (forward) and lc_qat_gate
 * (the straight-through estimator, backward) at the points lc_qat.h names.  Float training is
 * therefore QAT with every field float by construction.  Every offset comes from the layout
 * table handed in; nothing in a batch loop walks the layers to find one.
 *
 * The step has one body, written for a range of a batch's rows and a range of theta:
 * FN(rows_forward) and FN(rows_backward) run rows [r0, r0 + nb) through the forward pass and
 * the backward chain (dz, dx), FN(params_grad) sums the kernel and bias gradients of a range
 * of theta over all the batch's rows.  The serial step is the whole batch as one row range
 * and theta as one parameter range; the parts of FN(par_step) are the same functions on
 * their ranges (see "Both cores" below). */

/* Workspace of the step for batches of up to B samples.  Per layer: z, h, a (a is h itself
 * when there is no output clipping and no activation quantization), the layer's output out
 * (a, or the batch-normalised y), batch-normalisation intermediates, for quantized fields the
 * quantized operands and their straight-through masks, and the input, kernel and bias as the
 * product saw them.  With a backward pass, per layer also dz, the gated dz (dz itself without
 * accumulator quantization) and the transposed kernel, and shared: two upstream gradients
 * and the batch-normalisation gradient.  For training: the gradient, the increment, the next
 * parameters and a gathered batch. */
typedef struct {
    REAL *block;
    uint8_t *mblock;
    double *scratch;
    void **ptrs;
    REAL **z, **h, **a, **out, **qin, **wq, **bq;
    const REAL **in_used, **w_used, **b_used; /* as the product saw them (b_used NULL: none) */
    REAL **bn_hat, **bn_inv, **bn_mean, **bn_var;
    uint8_t **m_in, **m_w, **m_b, **m_acc, **m_act;
    REAL **dz, **dacc, **wt; /* backward: dz, the gated dz, W^T as the product saw W */
    REAL *da0, *da1, *dbn, *grad, *delta, *next, *Xb, *Yb;
} FN(ws);

enum {
    FN(WS_PTR_ARRAYS) = 22,
    FN(WS_FORWARD) = 0,  /* the forward pass only */
    FN(WS_BACKWARD) = 1, /* and the backward pass */
    FN(WS_TRAIN) = 2     /* and a training step: gradient, increment, next, gathered batch */
};

static void FN(ws_free)(FN(ws) * w)
{
    free(w->block);
    free(w->mblock);
    free(w->scratch);
    free(w->ptrs);
    memset(w, 0, sizeof *w);
}

/* 1 when field f of layer l is quantized. */
static inline int FN(q_on)(const lc_qat *q, int64_t l, int f)
{
    return q != NULL && q->on[l * LC_QF_N + f] != 0;
}

/* Separate output buffer a for layer l (else a aliases h). */
static inline int FN(own_a)(const lc_net *net, const lc_qat *q, int64_t l)
{
    return net->clip_out || FN(q_on)(q, l, LC_QF_ACTIVATION);
}

/* The workspace w for batches of up to B samples; mode FN(WS_FORWARD), FN(WS_BACKWARD) or
 * FN(WS_TRAIN) says which passes it serves.  LC_ERR_NOMEM when out of memory. */
static int FN(ws_alloc)(FN(ws) * w, const lc_net *net, const lc_qat *q, int64_t B, int mode)
{
    const int64_t L = net->n_layers, maxw = lc_net_max_width(net);
    const int train = mode == FN(WS_TRAIN), back = mode != FN(WS_FORWARD);
    const int64_t P = train ? lc_net_n_params(net) : 0;
    int64_t nr = 3 * back * B * maxw + 3 * P;
    int64_t nm = 0;
    if (train) nr += B * (net->sizes[0] + net->sizes[L]);
    for (int64_t l = 0; l < L; l++) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1];
        nr += (2 + FN(own_a)(net, q, l)) * B * no;
        if (back) nr += (1 + FN(q_on)(q, l, LC_QF_ACCUMULATOR)) * B * no + ni * no;
        if (lc_net_bn(net, l)) nr += 2 * B * no + 3 * no;
        if (FN(q_on)(q, l, LC_QF_INPUT)) {
            nr += B * ni;
            nm += B * ni;
        }
        if (FN(q_on)(q, l, LC_QF_WEIGHT)) {
            nr += ni * no;
            nm += ni * no;
        }
        if (FN(q_on)(q, l, LC_QF_BIAS)) {
            nr += no;
            nm += no;
        }
        if (FN(q_on)(q, l, LC_QF_ACCUMULATOR)) nm += B * no;
        if (FN(q_on)(q, l, LC_QF_ACTIVATION)) nm += B * no;
    }
    int64_t ns = 0;
    if (q) {
        ns = B * maxw > maxw * maxw ? B * maxw : maxw * maxw;
        if (lc_net_n_params(net) > ns) ns = lc_net_n_params(net);
    }
    memset(w, 0, sizeof *w);
    w->block = (REAL *)malloc((size_t)(nr > 0 ? nr : 1) * sizeof(REAL));
    w->mblock = (uint8_t *)malloc((size_t)(nm > 0 ? nm : 1));
    w->scratch = (double *)malloc((size_t)(ns > 0 ? ns : 1) * sizeof(double));
    w->ptrs = (void **)calloc((size_t)(FN(WS_PTR_ARRAYS) * L + 1), sizeof(void *));
    if (!w->block || !w->mblock || !w->scratch || !w->ptrs) {
        FN(ws_free)(w);
        return LC_ERR_NOMEM;
    }
    void **pp = w->ptrs;
#define LC_WS_ARRAY(field, type) (w->field = (type)(void *)pp, pp += L)
    LC_WS_ARRAY(z, REAL **);
    LC_WS_ARRAY(h, REAL **);
    LC_WS_ARRAY(a, REAL **);
    LC_WS_ARRAY(out, REAL **);
    LC_WS_ARRAY(qin, REAL **);
    LC_WS_ARRAY(wq, REAL **);
    LC_WS_ARRAY(bq, REAL **);
    LC_WS_ARRAY(in_used, const REAL **);
    LC_WS_ARRAY(w_used, const REAL **);
    LC_WS_ARRAY(b_used, const REAL **);
    LC_WS_ARRAY(bn_hat, REAL **);
    LC_WS_ARRAY(bn_inv, REAL **);
    LC_WS_ARRAY(bn_mean, REAL **);
    LC_WS_ARRAY(bn_var, REAL **);
    LC_WS_ARRAY(m_in, uint8_t **);
    LC_WS_ARRAY(m_w, uint8_t **);
    LC_WS_ARRAY(m_b, uint8_t **);
    LC_WS_ARRAY(m_acc, uint8_t **);
    LC_WS_ARRAY(m_act, uint8_t **);
    LC_WS_ARRAY(dz, REAL **);
    LC_WS_ARRAY(dacc, REAL **);
    LC_WS_ARRAY(wt, REAL **);
#undef LC_WS_ARRAY
    REAL *p = w->block;
    uint8_t *mp = w->mblock;
    for (int64_t l = 0; l < L; l++) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1], s = B * no;
        w->z[l] = p;
        p += s;
        w->h[l] = p;
        p += s;
        w->a[l] = w->h[l];
        if (FN(own_a)(net, q, l)) {
            w->a[l] = p;
            p += s;
        }
        w->out[l] = w->a[l];
        if (lc_net_bn(net, l)) {
            w->out[l] = p;
            p += s;
            w->bn_hat[l] = p;
            p += s;
            w->bn_inv[l] = p;
            p += no;
            w->bn_mean[l] = p;
            p += no;
            w->bn_var[l] = p;
            p += no;
        }
        if (FN(q_on)(q, l, LC_QF_INPUT)) {
            w->qin[l] = p;
            p += B * ni;
            w->m_in[l] = mp;
            mp += B * ni;
        }
        if (FN(q_on)(q, l, LC_QF_WEIGHT)) {
            w->wq[l] = p;
            p += ni * no;
            w->m_w[l] = mp;
            mp += ni * no;
        }
        if (FN(q_on)(q, l, LC_QF_BIAS)) {
            w->bq[l] = p;
            p += no;
            w->m_b[l] = mp;
            mp += no;
        }
        if (FN(q_on)(q, l, LC_QF_ACCUMULATOR)) {
            w->m_acc[l] = mp;
            mp += s;
        }
        if (FN(q_on)(q, l, LC_QF_ACTIVATION)) {
            w->m_act[l] = mp;
            mp += s;
        }
        if (back) { /* dz, the gated dz (dz itself unless the accumulator is quantized), W^T */
            const int gated = FN(q_on)(q, l, LC_QF_ACCUMULATOR);
            w->dz[l] = p;
            w->dacc[l] = p + gated * s;
            w->wt[l] = p + (1 + gated) * s;
            p += (1 + gated) * s + ni * no;
        }
    }
    if (back) { /* two upstream gradients, the batch-normalisation gradient */
        w->da0 = p;
        w->da1 = p + B * maxw;
        w->dbn = p + 2 * B * maxw;
        p += 3 * B * maxw;
    }
    if (train) {
        w->grad = p;
        p += P;
        w->delta = p;
        p += P;
        w->next = p;
        p += P;
        w->Xb = p;
        p += B * net->sizes[0];
        w->Yb = p;
    }
    return LC_OK;
}

/* Batch normalisation of a (B, n) into y.  Training (state_in NULL): the batch's mean and
 * biased variance, kept with 1/sqrt(var + eps) and the normalised values for the backward
 * pass.  Inference: the moving mean and variance state_in[0..n), state_in[n..2n). */
static void FN(bn_forward)(const REAL *a, int64_t B, int64_t n, const REAL *gamma, const REAL *beta,
                           REAL eps, const REAL *state_in, REAL *mean, REAL *var, REAL *inv,
                           REAL *hat, REAL *y)
{
    for (int64_t j = 0; j < n; j++) {
        REAL mu, va;
        if (state_in) {
            mu = state_in[j];
            va = state_in[n + j];
        } else {
            REAL sm = 0, sv = 0;
            for (int64_t i = 0; i < B; i++) sm += a[i * n + j];
            mu = sm / (REAL)B;
            for (int64_t i = 0; i < B; i++) {
                const REAL d = a[i * n + j] - mu;
                sv += d * d;
            }
            va = sv / (REAL)B;
            mean[j] = mu;
            var[j] = va;
        }
        const REAL iv = (REAL)1 / SQRT(va + eps);
        if (inv) inv[j] = iv;
        for (int64_t i = 0; i < B; i++) {
            const REAL t = (a[i * n + j] - mu) * iv;
            if (hat) hat[i * n + j] = t;
            y[i * n + j] = gamma[j] * t + beta[j];
        }
    }
}

#define QSEED(l, field, part) lc_qat_seed(q->seed, step, L, (l), (field), (part))

/* A batch of B rows as the step's one body sees it.  The serial step fills one for the whole
 * batch; the parts of FN(par_step) share one (FN(par)). */
typedef struct {
    const lc_train *t;    /* net, layout, loss and the quantization hook */
    FN(ws) * w;           /* the workspace, B rows or more */
    const REAL *theta;    /* parameters of the step */
    int64_t step;         /* the iteration, for the seeds of stochastic rounding */
    int64_t B;            /* rows of the batch */
    const REAL *X;        /* the batch's inputs, B rows */
    const REAL *bn_state; /* inference: the moving statistics; NULL: the batch's */
    REAL *grad;           /* the gradient (theta's layout); NULL without a backward pass */
    REAL *dX;             /* dL/dX, B rows, or NULL */
    int prepare;          /* 1: FN(rows_forward) prepares each layer (FN(layer_prepare)) */
} FN(batch);

/* Layer l's kernel and bias as the products see them (quantized where asked) and its input
 * (the quantized one where asked), into c->w's w_used, b_used and in_used; when transpose is
 * set, the transposed kernel for dx = dz W^T (layer 0 only when dL/dX is asked).  A
 * quantization error: its status. */
static int FN(layer_prepare)(const FN(batch) * c, int64_t l, int transpose)
{
    const lc_net *net = c->t->net;
    const lc_layer_offsets *lay = c->t->layout;
    const lc_qat *q = c->t->quant;
    FN(ws) *w = c->w;
    const int64_t L = net->n_layers, step = c->step;
    const int64_t ni = net->sizes[l], no = net->sizes[l + 1];
    const lc_fixfmt *F = q ? q->fmts + l * LC_QF_N : NULL;
    const double nr = q ? q->near_rail : 0.0;
    const REAL *W = c->theta + lay[l].w;
    const REAL *b = lay[l].b >= 0 ? c->theta + lay[l].b : NULL;
    int s;
    if (FN(q_on)(q, l, LC_QF_WEIGHT)) {
        s = QAT_Q(F + LC_QF_WEIGHT, W, w->wq[l], w->m_w[l], ni * no, QSEED(l, LC_QF_WEIGHT, 0), nr,
                  NULL, w->scratch);
        if (s) return s;
        W = w->wq[l];
    }
    if (b && FN(q_on)(q, l, LC_QF_BIAS)) {
        s = QAT_Q(F + LC_QF_BIAS, b, w->bq[l], w->m_b[l], no, QSEED(l, LC_QF_BIAS, 0), nr, NULL,
                  w->scratch);
        if (s) return s;
        b = w->bq[l];
    }
    w->w_used[l] = W;
    w->b_used[l] = b;
    w->in_used[l] = FN(q_on)(q, l, LC_QF_INPUT) ? w->qin[l] : (l ? w->out[l - 1] : c->X);
    if (transpose && (l > 0 || c->dX)) FN(lc_transpose)(W, w->wt[l], ni, no);
    return LC_OK;
}

/* ---- The batch's gather ---- */

/* dst := the rows idx[0..n) of src, each of width elements, one after another: a shuffled
 * batch's inputs or targets.  Data movement only (the same bits).  Rows of 1-8 elements (the
 * networks' 1-4 inputs or outputs) are copied by a loop of its own per width, each copy of a
 * constant size the compiler expands inline: no C library call per row.  A wider row (100
 * inputs) is one memcpy, whose call costs little beside its copy (callgrind: fewer
 * instructions than inline copies). */
#define LC_GATHER_CASE(W)                                                                          \
    case W:                                                                                        \
        for (int64_t i = 0; i < n; i++) memcpy(dst + i * W, src + idx[i] * W, W * sizeof(REAL));   \
        return

LC_HOT static void FN(gather_rows)(const REAL *restrict src, int64_t width,
                                   const int64_t *restrict idx, int64_t n, REAL *restrict dst)
{
    switch (width) {
        LC_GATHER_CASE(1);
        LC_GATHER_CASE(2);
        LC_GATHER_CASE(3);
        LC_GATHER_CASE(4);
        LC_GATHER_CASE(5);
        LC_GATHER_CASE(6);
        LC_GATHER_CASE(7);
        LC_GATHER_CASE(8);
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + i * width, src + idx[i] * width, (size_t)width * sizeof(REAL));
    }
}
#undef LC_GATHER_CASE

/* Forward of rows [r0, r0 + nb) of the batch through every layer, their state into c->w (at
 * those rows); scratch: nb x max width doubles for the quantizations of rows.  With
 * c->prepare each layer is prepared on the way, after its input's quantization (the serial
 * order of the quantizations, so the first failing one is the serial one); else
 * FN(layer_prepare) has run for every layer.  Quantized fields (q not NULL):
 * z = q_acc(q_in(x) q_w(W)) + q_b(b); a = q_act(clip(act(z))).  Batch normalisation uses the
 * rows' own statistics (c->bn_state NULL) or the moving ones: the former only with every row
 * (r0 = 0, nb = B).  A quantization error: its status. */
static int FN(rows_forward)(const FN(batch) * c, int64_t r0, int64_t nb, double *scratch)
{
    const lc_net *net = c->t->net;
    const lc_layer_offsets *lay = c->t->layout;
    const lc_qat *q = c->t->quant;
    FN(ws) *w = c->w;
    const int64_t L = net->n_layers, step = c->step;
    const double nr = q ? q->near_rail : 0.0;
    const REAL *in = c->X + r0 * net->sizes[0];
    int s;
    for (int64_t l = 0; l < L; l++) {
        const lc_fixfmt *F = q ? q->fmts + l * LC_QF_N : NULL;
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1], n = nb * no;
        if (FN(q_on)(q, l, LC_QF_INPUT)) {
            REAL *qi = w->qin[l] + r0 * ni;
            s = QAT_Q(F + LC_QF_INPUT, in, qi, w->m_in[l] + r0 * ni, nb * ni,
                      QSEED(l, LC_QF_INPUT, 0), nr, NULL, scratch);
            if (s) return s;
            in = qi;
        }
        if (c->prepare && (s = FN(layer_prepare)(c, l, c->grad != NULL)) != LC_OK) return s;
        const REAL *b = w->b_used[l];
        REAL *z = w->z[l] + r0 * no, *h = w->h[l] + r0 * no, *a = w->a[l] + r0 * no;
        FN(matmul)(in, w->w_used[l], z, nb, ni, no);
        if (FN(q_on)(q, l, LC_QF_ACCUMULATOR)) {
            s = QAT_Q(F + LC_QF_ACCUMULATOR, z, z, w->m_acc[l] + r0 * no, n,
                      QSEED(l, LC_QF_ACCUMULATOR, 0), nr, NULL, scratch);
            if (s) return s;
        }
        FN(dense_epilogue)(net->acts[l], net->clip_out, b, z, h, a, nb, no);
        if (FN(q_on)(q, l, LC_QF_ACTIVATION)) {
            s = QAT_Q(F + LC_QF_ACTIVATION, a, a, w->m_act[l] + r0 * no, n,
                      QSEED(l, LC_QF_ACTIVATION, 0), nr, NULL, scratch);
            if (s) return s;
        }
        if (lc_net_bn(net, l)) {
            const REAL *g = c->theta + lay[l].bn;
            const REAL *st = c->bn_state ? c->bn_state + lay[l].bn_state : NULL;
            FN(bn_forward)(a, nb, no, g, g + no, (REAL)net->bn_epsilon[l], st, w->bn_mean[l],
                           w->bn_var[l], w->bn_inv[l], w->bn_hat[l] + r0 * no, w->out[l] + r0 * no);
        }
        in = w->out[l] + r0 * no;
    }
    return LC_OK;
}

/* moving := moving * momentum + batch * (1 - momentum), per batch-normalised layer. */
static void FN(bn_update_state)(const lc_net *net, const lc_layer_offsets *lay, const FN(ws) * w,
                                REAL *bn_state)
{
    for (int64_t l = 0; l < net->n_layers; l++) {
        if (!lc_net_bn(net, l)) continue;
        const int64_t no = net->sizes[l + 1];
        const REAL mom = (REAL)net->bn_momentum[l], c = (REAL)1 - mom;
        REAL *st = bn_state + lay[l].bn_state;
        for (int64_t j = 0; j < no; j++) {
            st[j] = st[j] * mom + w->bn_mean[l][j] * c;
            st[no + j] = st[no + j] * mom + w->bn_var[l][j] * c;
        }
    }
}

/* r[k] := max(r[k], count / n) */
static inline void FN(rail_max)(double *r, int k, int64_t count, int64_t n)
{
    const double f = (double)count / (double)n;
    if (f > r[k]) r[k] = f;
}

/* Gradient quantization of grad (theta's layout): rail statistics into r (any[1]). */
static int FN(grad_quant)(const lc_net *net, const lc_layer_offsets *lay, const lc_qat *q,
                          int64_t step, REAL *grad, double *scratch, double *r, int *any)
{
    const int64_t L = net->n_layers;
    lc_rail_counts st;
    for (int64_t l = 0; q && l < L; l++) {
        if (!FN(q_on)(q, l, LC_QF_GRADIENT)) continue;
        for (int part = 0; part < 2; part++) {
            const int64_t off = part ? lay[l].b : lay[l].w;
            const int64_t n = part ? net->sizes[l + 1] : net->sizes[l] * net->sizes[l + 1];
            if (off < 0) continue;
            const int s =
                QAT_Q(q->fmts + l * LC_QF_N + LC_QF_GRADIENT, grad + off, grad + off, NULL, n,
                      QSEED(l, LC_QF_GRADIENT, part), q->near_rail, &st, scratch);
            if (s) return s;
            any[1] = 1;
            FN(rail_max)(r, LC_RAIL_GRAD_SAT, st.saturated, n);
            FN(rail_max)(r, LC_RAIL_GRAD_NEAR, st.near_rail, n);
        }
    }
    return LC_OK;
}

/* Backward chain of rows [r0, r0 + nb) whose forward state is in c->w, from dL/d(output) of
 * those rows in da: per layer dz and the gated dz into c->w (at those rows), and dL/dx into
 * the other of da, da_prev (nb x max width each, swapped layer by layer) for the layer below;
 * dL/dX into c->dX when not NULL.  Where a field is quantized the gradient passes its
 * straight-through gate.  Batch normalisation (only with every row, r0 = 0 and nb = B): its
 * dgamma and dbeta into c->grad and dL/da of the layer through it. */
static void FN(rows_backward)(const FN(batch) * c, int64_t r0, int64_t nb, REAL *da, REAL *da_prev)
{
    const lc_net *net = c->t->net;
    const lc_layer_offsets *lay = c->t->layout;
    const lc_qat *q = c->t->quant;
    FN(ws) *w = c->w;
    for (int64_t l = net->n_layers - 1; l >= 0; l--) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1], n = nb * no;
        REAL *dlayer = da; /* dL/da of this layer */
        if (lc_net_bn(net, l)) {
            /* dgamma = sum da hat; dbeta = sum da; with dh = da gamma,
             * da_pre = inv / B (B dh - sum dh - hat sum dh hat) */
            const int64_t go = lay[l].bn;
            const REAL *g = c->theta + go, *hat = w->bn_hat[l], *inv = w->bn_inv[l];
            REAL *dg = c->grad + go, *db = c->grad + go + no, *o = w->dbn;
            for (int64_t j = 0; j < no; j++) {
                REAL sd = 0, sdh = 0, sg = 0;
                for (int64_t i = 0; i < nb; i++) {
                    const REAL d = da[i * no + j];
                    sg += d * hat[i * no + j];
                    sd += d;
                }
                dg[j] = sg;
                db[j] = sd;
                sd *= g[j];
                sdh = sg * g[j];
                for (int64_t i = 0; i < nb; i++) {
                    const REAL dh = da[i * no + j] * g[j];
                    o[i * no + j] =
                        inv[j] / (REAL)nb * ((REAL)nb * dh - sd - hat[i * no + j] * sdh);
                }
            }
            dlayer = o;
        }
        if (FN(q_on)(q, l, LC_QF_ACTIVATION)) QAT_GATE(dlayer, w->m_act[l] + r0 * no, n);
        REAL *dz = w->dz[l] + r0 * no;
        FN(lc_act_backward)(net->acts[l], net->clip_out, w->z[l] + r0 * no, w->h[l] + r0 * no,
                            dlayer, dz, n);
        const REAL *dacc = dz;
        if (FN(q_on)(q, l, LC_QF_ACCUMULATOR)) {
            REAL *gated = w->dacc[l] + r0 * no;
            memcpy(gated, dz, (size_t)n * sizeof(REAL));
            QAT_GATE(gated, w->m_acc[l] + r0 * no, n);
            dacc = gated;
        }
        REAL *dx = l > 0 ? da_prev : (c->dX ? c->dX + r0 * ni : NULL);
        if (dx) { /* dx := dacc W^T */
            FN(matmul)(dacc, w->wt[l], dx, nb, no, ni);
            if (FN(q_on)(q, l, LC_QF_INPUT)) QAT_GATE(dx, w->m_in[l] + r0 * ni, nb * ni);
        }
        REAL *u = da;
        da = da_prev;
        da_prev = u;
    }
}

/* The kernel and bias gradients in the range [p0, p1) of theta (cut at kernel rows and
 * biases) into c->grad, from the backward chain of all the batch's rows: each summed over the
 * rows in order, as the whole product does, and gated where the kernel or bias is quantized.
 * The serial step's range is [0, P). */
static void FN(params_grad)(const FN(batch) * c, int64_t p0, int64_t p1)
{
    const lc_net *net = c->t->net;
    const lc_layer_offsets *lay = c->t->layout;
    const lc_qat *q = c->t->quant;
    const FN(ws) *w = c->w;
    const int64_t B = c->B;
    for (int64_t l = 0; l < net->n_layers; l++) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1], wo = lay[l].w;
        const int64_t lo = p0 > wo ? (p0 - wo) / no : 0;
        const int64_t hi = p1 < wo + ni * no ? (p1 - wo) / no : ni;
        if (lo < hi) { /* gW rows [lo, hi) := (x^T dacc) rows */
            REAL *gW = c->grad + wo + lo * no;
            FN(lc_matmul)(w->in_used[l] + lo, 1, ni, w->dacc[l], gW, hi - lo, B, no);
            if (FN(q_on)(q, l, LC_QF_WEIGHT)) QAT_GATE(gW, w->m_w[l] + lo * no, (hi - lo) * no);
        }
        const int64_t bo = lay[l].b;
        if (bo >= p0 && bo < p1) { /* gb := sum over samples of dz, in sample order */
            REAL *gb = c->grad + bo;
            FN(col_sums)(w->dz[l], B, no, gb);
            if (FN(q_on)(q, l, LC_QF_BIAS)) QAT_GATE(gb, w->m_b[l], no);
        }
    }
}

/* The gradient half of a step on the B samples X, Y at theta, as one row range and one
 * parameter range: forward, loss (*value), and, when the loss is finite, backward into
 * w->grad, then the gradient quantization (rail statistics into r, any[1]).
 * LC_ERR_NONFINITE_LOSS for a non-finite loss. */
static int FN(step_grad)(const lc_train *t, const REAL *theta, const REAL *X, const REAL *Y,
                         int64_t B, int64_t step, FN(ws) * w, double *value, double *r, int *any)
{
    const lc_net *net = t->net;
    const int64_t L = net->n_layers;
    const FN(batch) c = {t, w, theta, step, B, X, NULL, w->grad, NULL, 1}; /* all rows */
    int s = FN(rows_forward)(&c, 0, B, w->scratch);
    if (s) return s;
    *value = FN(lc_loss_grad)(t->loss, w->out[L - 1], Y, B, net->sizes[L], w->da0);
    if (!isfinite(*value)) return LC_ERR_NONFINITE_LOSS;
    FN(rows_backward)(&c, 0, B, w->da0, w->da1);
    FN(params_grad)(&c, 0, lc_net_n_params(net));
    return FN(grad_quant)(net, t->layout, t->quant, step, w->grad, w->scratch, r, any);
}

static int FN(step_store)(const lc_train *t, REAL *next, int64_t step, FN(ws) * w, double *r,
                          int *any);

/* 1 when field f is quantized in some layer. */
static int FN(any_field)(const lc_qat *q, int64_t L, int f)
{
    for (int64_t l = 0; l < L; l++)
        if (FN(q_on)(q, l, f)) return 1;
    return 0;
}

/* The update half for the increment in w->delta: update quantization; next := clip(theta +
 * delta) when every value is finite (else LC_ERR_NONFINITE_PARAMS, next undefined, theta
 * untouched); storage quantization of next.  Rail statistics into r (any[0], any[2]). */
static int FN(step_apply)(const lc_train *t, const REAL *theta, REAL *next, int64_t step,
                          FN(ws) * w, double *r, int *any)
{
    const lc_net *net = t->net;
    const lc_layer_offsets *lay = t->layout;
    const lc_qat *q = t->quant;
    const int64_t L = net->n_layers, P = lc_net_n_params(net);
    lc_rail_counts st;
    int s;
    for (int64_t l = 0; q && l < L; l++) { /* update quantization */
        if (!FN(q_on)(q, l, LC_QF_UPDATE)) continue;
        for (int part = 0; part < 2; part++) {
            const int64_t off = part ? lay[l].b : lay[l].w;
            const int64_t n = part ? net->sizes[l + 1] : net->sizes[l] * net->sizes[l + 1];
            if (off < 0) continue;
            s = QAT_Q(q->fmts + l * LC_QF_N + LC_QF_UPDATE, w->delta + off, w->delta + off, NULL, n,
                      QSEED(l, LC_QF_UPDATE, part), q->near_rail, &st, w->scratch);
            if (s) return s;
            any[2] = 1;
            FN(rail_max)(r, LC_RAIL_UPDATE_SAT, st.saturated, n);
            FN(rail_max)(r, LC_RAIL_UPDATE_UNDER, st.underflow, n);
        }
    }
    if (!FN(lc_add_clip_finite)(theta, w->delta, next, P, t->clip_params))
        return LC_ERR_NONFINITE_PARAMS;
    return FN(step_store)(t, next, step, w, r, any);
}

/* Storage quantization of the next parameters through the weight and bias formats; rail
 * statistics into r (any[0]). */
static int FN(step_store)(const lc_train *t, REAL *next, int64_t step, FN(ws) * w, double *r,
                          int *any)
{
    const lc_net *net = t->net;
    const lc_layer_offsets *lay = t->layout;
    const lc_qat *q = t->quant;
    const int64_t L = net->n_layers;
    lc_rail_counts st;
    int s;
    for (int64_t l = 0; q && l < L; l++) { /* storage quantization */
        for (int part = 0; part < 2; part++) {
            const int field = part ? LC_QF_BIAS : LC_QF_WEIGHT;
            const int64_t off = part ? lay[l].b : lay[l].w;
            const int64_t n = part ? net->sizes[l + 1] : net->sizes[l] * net->sizes[l + 1];
            if (off < 0 || !FN(q_on)(q, l, field)) continue;
            s = QAT_Q(q->fmts + l * LC_QF_N + field, next + off, next + off, NULL, n,
                      QSEED(l, field, 1), q->near_rail, &st, w->scratch);
            if (s) return s;
            any[0] = 1;
            FN(rail_max)(r, LC_RAIL_WEIGHT_SAT, st.saturated, n);
            FN(rail_max)(r, LC_RAIL_WEIGHT_NEAR, st.near_rail, n);
        }
    }
    return LC_OK;
}

/* ---- Both cores: the step split into parts fixed by the problem's size ----
 *
 * Everything of a step up to the parameter gradient is per sample row: the forward products
 * z = a W (+ b), the activations, the loss gradient, dz through the activation derivative and
 * dx = dz W^T.  A batch's rows are therefore cut into row parts (FN(par_rows_part)), and each
 * part runs the step's row body (FN(rows_forward), FN(rows_backward)) on its rows through
 * every layer with no synchronisation between layers; lc_matmul gives every row of a product
 * the same bits whichever rows it is called with.  After one barrier, the parameter gradient
 * gW = a^T dz, a sum over the batch's rows, is cut by its output instead: parameter parts
 * (FN(par_params_part)) run the step's parameter body (FN(params_grad)) on contiguous ranges
 * of theta cut at kernel rows and biases, each summing over all rows in row order exactly as
 * the whole product does.  The optimizer (elementwise) runs on the same range, and then the
 * part transposes its rows of the next kernels for the next step's dx products
 * (FN(par_params_run)).  The calling thread prepares the layers (FN(layer_prepare): the
 * kernels' and biases' quantization, and the transposes the parts have not written) before
 * the first, and sums the loss in the serial order between the two.
 * The part counts come from the network and the batch size, never from the thread count:
 * every count of threads gives the same bits as the serial step, which is the same bodies on
 * one row range and one parameter range.
 *
 * Serial: batch-normalised networks (batch statistics), input, accumulator or activation
 * quantization with stochastic rounding (its draws are indexed from the start of the whole
 * array), steps too small to pay for a second thread, and every step when one thread is
 * allowed (FN(par_plan)): the parts cost a lone core time (more passes of narrower products
 * over each kernel) and change no bit.  With gradient,
 * update, weight or bias quantization, the quantizations of the kernels and biases and the
 * tail of the step from the gradient quantization on run on the calling thread.  A part that
 * meets a quantization error makes the step run again serially, so the status (and the first
 * failing quantization it names) is the serial step's. */

/* Returned by FN(par_step) when the step is to run serially (not a status of the API). */
#ifndef LC_PAR_SERIAL
#define LC_PAR_SERIAL (-1)
#endif

/* Multiply-adds of one product (batch rows times parameters) from which a step runs in parts.
 * The tutorial network (1-32-32-32-1 at batch 32: 7e4, about 15 us a step) stays serial: forced
 * into parts it measured 0.82x on two threads of the project's 2-core Zen 3 (shared, busy;
 * minima of 40 runs).  The vendor's medium networks (batch 32: 5e5 and more) run in parts. */
#ifndef LC_TRAIN_PAR_MIN_WORK
#define LC_TRAIN_PAR_MIN_WORK 200000
#endif
/* Fewest rows in a row part (a multiple of the product's 4-row register block). */
#define LC_TRAIN_PART_ROWS 8
/* Fewest parameters in a parameter part. */
#define LC_TRAIN_PART_PARAMS 1024

typedef struct {
    FN(batch) bt;        /* the batch: workspace (B_max rows), rows, parameters, iteration */
    int64_t rows;        /* rows of a row part */
    const REAL *Yb;      /* the batch's targets (perm NULL), else gathered by the parts into w */
    const REAL *X, *Y;   /* the epoch's arrays, for the gather (into w's Xb, Yb) */
    const int64_t *perm; /* the batch's indices (already offset), or NULL */
    REAL *next, *m, *v;  /* the optimizer's outputs (fused) */
    int fused;           /* the optimizer in the parameter parts */
    REAL *pda;           /* per row part: two upstream gradients, rows x max width */
    double *pscratch;    /* per row part: quantization scratch, rows x max width */
    int64_t n_qparts, qb[LC_MAX_PARTS + 1]; /* parameter parts [qb[k], qb[k + 1]) */
    int pstatus[LC_MAX_PARTS];              /* per row part: status */
    int qbad[LC_MAX_PARTS];                 /* per parameter part: a non-finite next */
    REAL *block;
    double *dblock;
    /* The transposes in w's wt are of the kernels of wt_of at step wt_step (wt_of NULL:
     * none yet): a fused parameter part writes its rows' share for the next step. */
    const REAL *wt_of;
    int64_t wt_step;
} FN(par);

static void FN(par_free)(FN(par) * c)
{
    free(c->block);
    free(c->dblock);
    c->block = NULL;
    c->dblock = NULL;
}

/* 1 when field f of some layer is quantized with stochastic rounding. */
static int FN(any_stoch)(const lc_qat *q, int64_t L, int f)
{
    for (int64_t l = 0; l < L; l++)
        if (FN(q_on)(q, l, f) && q->fmts[l * LC_QF_N + f].rounding == LC_ROUND_STOCH) return 1;
    return 0;
}

/* Decides whether the epoch's steps (batches of up to B_max rows) run in parts, and
 * prepares c: 1 when they do, 0 for the serial step, -1 when out of memory.  The parts
 * themselves (how many, where they cut) come from the network and the batch size only. */
static int FN(par_plan)(FN(par) * c, const lc_train *t, FN(ws) * w, int64_t B_max)
{
    const lc_net *net = t->net;
    const lc_qat *q = t->quant;
    const int64_t L = net->n_layers, P = lc_net_n_params(net), maxw = lc_net_max_width(net);
    memset(c, 0, sizeof *c);
    if (lc_get_num_threads() < 2 || lc_net_has_bn(net) || B_max * P < LC_TRAIN_PAR_MIN_WORK)
        return 0;
    if (FN(any_stoch)(q, L, LC_QF_INPUT) || FN(any_stoch)(q, L, LC_QF_ACCUMULATOR) ||
        FN(any_stoch)(q, L, LC_QF_ACTIVATION))
        return 0;
    int64_t rows = (B_max + LC_MAX_PARTS - 1) / LC_MAX_PARTS;
    rows = (rows + 3) / 4 * 4;
    if (rows < LC_TRAIN_PART_ROWS) rows = LC_TRAIN_PART_ROWS;
    int64_t Q = P / LC_TRAIN_PART_PARAMS;
    Q = Q < 1 ? 1 : (Q > LC_MAX_PARTS ? LC_MAX_PARTS : Q);
    if ((B_max + rows - 1) / rows < 2 && Q < 2) return 0;
    c->bt.t = t;
    c->bt.w = w;
    c->bt.grad = w->grad;
    c->rows = rows;
    c->fused = !FN(any_field)(q, L, LC_QF_GRADIENT) && !FN(any_field)(q, L, LC_QF_UPDATE) &&
               !FN(any_field)(q, L, LC_QF_WEIGHT) && !FN(any_field)(q, L, LC_QF_BIAS);
    /* parameter parts: cut at the first boundary at or past k P / Q of a kernel's rows (every
     * fourth row, the product's register block), its bias or the next layer */
    c->qb[0] = 0;
    int64_t k = 1, p = 0;
    for (int64_t l = 0; l < L && k < Q; l++) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1];
        for (int64_t u = 1; u <= ni + (net->has_bias[l] ? 1 : 0) && k < Q; u++) {
            p += no; /* past unit u - 1: kernel row u - 1, or the bias */
            if (u % 4 != 0 && u < ni) continue;
            if (p >= k * P / Q && p < P) c->qb[k++] = p;
        }
    }
    c->qb[k] = P;
    c->n_qparts = k;
    const int64_t nr = 2 * LC_MAX_PARTS * rows * maxw, nd = q ? LC_MAX_PARTS * rows * maxw : 1;
    c->block = (REAL *)malloc((size_t)nr * sizeof(REAL));
    c->dblock = (double *)malloc((size_t)nd * sizeof(double));
    if (!c->block || !c->dblock) {
        FN(par_free)(c);
        return -1;
    }
    c->pda = c->block;
    c->pscratch = c->dblock;
    return 1;
}

/* dL/df of rows of a batch of B rows (m outputs each) into d: the dloss of lc_loss_grad for
 * nb of its rows, f and y at those rows. */
static void FN(dloss_rows)(int32_t loss, const REAL *f, const REAL *y, int64_t B, int64_t m,
                           int64_t nb, REAL *d)
{
    const int64_t n = B * m, k = nb * m;
    if (loss == LC_LOSS_MAE) {
        const REAL s = (REAL)(1.0 / (double)n);
        for (int64_t i = 0; i < k; i++) {
            const REAL r = f[i] - y[i];
            d[i] = r > 0 ? s : (r < 0 ? -s : (r == 0 ? (REAL)0 : r));
        }
        return;
    }
    const REAL s = loss == LC_LOSS_HALF_MSE ? (REAL)(1.0 / (double)B) : (REAL)(2.0 / (double)n);
    for (int64_t i = 0; i < k; i++) d[i] = s * (f[i] - y[i]);
}

/* Row part p: gather its rows, then the step's row body on them (forward, loss gradient,
 * backward chain). */
static void FN(par_rows_part)(void *ctx, int64_t p)
{
    FN(par) *c = (FN(par) *)ctx;
    const lc_net *net = c->bt.t->net;
    FN(ws) *w = c->bt.w;
    const int64_t L = net->n_layers, maxw = lc_net_max_width(net), B = c->bt.B;
    const int64_t n_in = net->sizes[0], n_out = net->sizes[L];
    const int64_t r0 = p * c->rows, nb = B - r0 < c->rows ? B - r0 : c->rows;
    if (c->perm) { /* this part's rows */
        FN(gather_rows)(c->X, n_in, c->perm + r0, nb, w->Xb + r0 * n_in);
        FN(gather_rows)(c->Y, n_out, c->perm + r0, nb, w->Yb + r0 * n_out);
    }
    const int s = FN(rows_forward)(&c->bt, r0, nb, c->pscratch + p * c->rows * maxw);
    if (s == LC_OK) {
        REAL *da = c->pda + 2 * p * c->rows * maxw;
        FN(dloss_rows)(c->bt.t->loss, w->out[L - 1] + r0 * n_out, c->Yb + r0 * n_out, B, n_out, nb,
                       da);
        FN(rows_backward)(&c->bt, r0, nb, da, da + c->rows * maxw);
    }
    c->pstatus[p] = s;
}

/* Parameter part k: the step's parameter body on the range [qb[k], qb[k + 1]) of theta; when
 * fused, the optimizer on the range. */
static void FN(par_params_part)(void *ctx, int64_t k)
{
    FN(par) *c = (FN(par) *)ctx;
    const lc_train *t = c->bt.t;
    const int64_t p0 = c->qb[k], p1 = c->qb[k + 1];
    FN(params_grad)(&c->bt, p0, p1);
    if (!c->fused) return;
    c->qbad[k] = !FN(lc_optim_next)(t->opt, c->bt.theta + p0, c->bt.grad + p0, c->m + p0, c->v + p0,
                                    p1 - p0, c->bt.step + 1, t->clip_params, c->next + p0);
}

/* Parameter part k (FN(par_params_part)) and, when the part ran the optimizer, the transposes
 * of its rows of the next kernels, which the next step's row parts read (dx = dz W^T): so they
 * are written by the core that holds those rows, in parallel, instead of all of them on the
 * calling thread between steps (1.6 us a step of 100-80-64-64-32-1 on Zen 3, when the
 * other core waits).  Only the buffers of the transposes are written, which no part of this
 * step reads any more: the row parts have finished. */
static void FN(par_params_run)(void *ctx, int64_t k)
{
    FN(par) *c = (FN(par) *)ctx;
    FN(par_params_part)(ctx, k);
    if (!c->fused || c->qbad[k]) return;
    const lc_net *net = c->bt.t->net;
    const lc_layer_offsets *lay = c->bt.t->layout;
    const int64_t p0 = c->qb[k], p1 = c->qb[k + 1];
    for (int64_t l = 1; l < net->n_layers; l++) {
        const int64_t ni = net->sizes[l], no = net->sizes[l + 1], wo = lay[l].w;
        const int64_t lo = p0 > wo ? (p0 - wo) / no : 0;
        const int64_t hi = p1 < wo + ni * no ? (p1 - wo) / no : ni;
        if (lo < hi) FN(transpose_rows)(c->next + wo, c->bt.w->wt[l], ni, no, lo, hi);
    }
}

/* Every layer prepared (FN(layer_prepare)) on the calling thread before the row parts: the
 * kernels and biases as the products see them (quantized where asked) and their transposes,
 * unless the previous step's parameter parts wrote those (FN(par_params_run)).  A
 * quantization error: its status. */
static int FN(par_prepare)(FN(par) * c)
{
    const FN(batch) *bt = &c->bt;
    const int fresh = c->wt_of != NULL && c->wt_of == bt->theta && c->wt_step == bt->step;
    for (int64_t l = 0; l < bt->t->net->n_layers; l++) {
        const int s = FN(layer_prepare)(bt, l, !fresh);
        if (s) return s;
    }
    c->wt_of = NULL; /* until this step's parameter parts write the next ones */
    return LC_OK;
}

#undef QSEED

/* rail[k] := r[k] for the columns in cols (0: weight, 1: gradient, 2: update), NaN for the
 * roles no variable was quantized in. */
static void FN(rail_finish)(const double *r, const int *any, const int *cols, double *rail)
{
    static const int first[3] = {LC_RAIL_WEIGHT_SAT, LC_RAIL_GRAD_SAT, LC_RAIL_UPDATE_SAT};
    for (int role = 0; role < 3; role++) {
        if (!cols[role]) continue;
        const int k = first[role];
        rail[k] = any[role] ? r[k] : NAN;
        rail[k + 1] = any[role] ? r[k + 1] : NAN;
    }
}

/* The forward pass of lc_net_forward in parts: part p runs the chunks [p per, (p + 1) per) of
 * rows with its own workspace.  Rows are independent, so the parts change no bit. */
typedef struct {
    lc_train t; /* the network and its layout */
    const REAL *theta, *bn_state, *X;
    REAL *Y;
    int64_t N, chunk, per;
    FN(ws) * ws;
} FN(fwd);

static void FN(fwd_part)(void *ctx, int64_t p)
{
    const FN(fwd) *f = (const FN(fwd) *)ctx;
    const lc_net *net = f->t.net;
    const int64_t L = net->n_layers, n_in = net->sizes[0], n_out = net->sizes[L];
    const int64_t end = (p + 1) * f->per * f->chunk < f->N ? (p + 1) * f->per * f->chunk : f->N;
    for (int64_t s = p * f->per * f->chunk; s < end; s += f->chunk) {
        const int64_t B = end - s < f->chunk ? end - s : f->chunk;
        const REAL *Xs = f->X + s * n_in;
        const FN(batch) c = {&f->t, f->ws + p, f->theta, 0, B, Xs, f->bn_state, NULL, NULL, 1};
        FN(rows_forward)(&c, 0, B, NULL); /* no quantization: no scratch */
        memcpy(f->Y + s * n_out, f->ws[p].out[L - 1], (size_t)(B * n_out) * sizeof(REAL));
    }
}

int FN(lc_net_forward)(const lc_net *net, const REAL *theta, const REAL *bn_state, const REAL *X,
                       int64_t N, REAL *Y)
{
    const int64_t L = net->n_layers, chunk = N < 256 ? (N > 0 ? N : 1) : 256;
    if (lc_net_has_bn(net) && !bn_state) return LC_ERR_ARGS;
    if (N <= 0) return LC_OK;
    const int64_t n_chunks = (N + chunk - 1) / chunk;
    /* parts of whole chunks, from the problem's size: one unless the pass is worth a team */
    int64_t parts = N * lc_net_n_params(net) >= 4 * LC_TRAIN_PAR_MIN_WORK ? n_chunks : 1;
    parts = parts > LC_MAX_PARTS ? LC_MAX_PARTS : (parts < 1 ? 1 : parts);
    FN(fwd) f = {{net, NULL, 0, NULL, 0, NULL}, theta, bn_state, X, Y, N, chunk, 0, NULL};
    f.per = (n_chunks + parts - 1) / parts;
    parts = (n_chunks + f.per - 1) / f.per;
    lc_layer_offsets *lay = (lc_layer_offsets *)malloc((size_t)L * sizeof *lay);
    FN(ws) *ws = (FN(ws) *)calloc((size_t)(parts > 0 ? parts : 1), sizeof *ws);
    int status = lay && ws ? LC_OK : LC_ERR_NOMEM;
    int64_t made = 0;
    for (; status == LC_OK && made < parts; made++)
        if (FN(ws_alloc)(ws + made, net, NULL, chunk, FN(WS_FORWARD)) != LC_OK)
            status = LC_ERR_NOMEM;
    if (status == LC_OK) {
        lc_net_layout(net, lay);
        f.t.layout = lay;
        f.ws = ws;
        if (parts > 1) {
            lc_team *team = lc_team_start(parts);
            lc_team_run(team, parts, FN(fwd_part), &f);
            lc_team_end(team);
        } else if (parts == 1) {
            FN(fwd_part)(&f, 0);
        }
    }
    for (int64_t p = 0; ws && p < made; p++) FN(ws_free)(ws + p);
    free(ws);
    free(lay);
    return status;
}

int FN(lc_net_loss_grad)(const lc_net *net, const REAL *theta, const REAL *X, const REAL *Y,
                         int64_t N, int32_t loss, REAL *grad, REAL *dX, REAL *bn_state,
                         double *loss_out)
{
    const int64_t L = net->n_layers;
    if (loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE && loss != LC_LOSS_MAE) return LC_ERR_ARGS;
    lc_layer_offsets *lay = (lc_layer_offsets *)malloc((size_t)L * sizeof *lay);
    FN(ws) w;
    if (!lay || FN(ws_alloc)(&w, net, NULL, N, FN(WS_BACKWARD)) != LC_OK) {
        free(lay);
        return LC_ERR_NOMEM;
    }
    lc_net_layout(net, lay);
    const lc_train t = {net, lay, loss, NULL, 0, NULL};
    const FN(batch) c = {&t, &w, theta, 0, N, X, NULL, grad, dX, 1}; /* all rows */
    FN(rows_forward)(&c, 0, N, w.scratch);
    *loss_out = FN(lc_loss_grad)(loss, w.out[L - 1], Y, N, net->sizes[L], w.da0);
    FN(rows_backward)(&c, 0, N, w.da0, w.da1);
    FN(params_grad)(&c, 0, lc_net_n_params(net)); /* one parameter range */
    if (bn_state) FN(bn_update_state)(net, lay, &w, bn_state);
    FN(ws_free)(&w);
    free(lay);
    return LC_OK;
}

/* The optimizer half of a step from w->grad: next := the updated cur (m, v updated), through
 * the update formats when some layer quantizes updates, then stored through the weight and
 * bias formats.  LC_ERR_NONFINITE_PARAMS for a non-finite next. */
static int FN(step_update)(const lc_train *t, const REAL *cur, REAL *next, REAL *m, REAL *v,
                           int64_t step, FN(ws) * w, double *r, int *any)
{
    const int64_t P = lc_net_n_params(t->net);
    if (!FN(any_field)(t->quant, t->net->n_layers, LC_QF_UPDATE)) { /* one pass */
        if (!FN(lc_optim_next)(t->opt, cur, w->grad, m, v, P, step + 1, t->clip_params, next))
            return LC_ERR_NONFINITE_PARAMS;
        return FN(step_store)(t, next, step, w, r, any);
    }
    FN(lc_optim_delta)(t->opt, w->grad, m, v, P, step + 1, w->delta);
    return FN(step_apply)(t, cur, next, step, w, r, any);
}

/* One step in parts (c prepared by FN(par_plan), its batch and parameters set): the loss
 * into *value and next := the updated parameters.  LC_PAR_SERIAL when a part met a
 * quantization error: the caller then runs the step serially, for the serial status. */
static int FN(par_step)(FN(par) * c, lc_team *team, double *value, double *r, int *any)
{
    const lc_train *t = c->bt.t;
    const lc_net *net = t->net;
    FN(ws) *w = c->bt.w;
    const int64_t L = net->n_layers, B = c->bt.B, R = (B + c->rows - 1) / c->rows;
    int s = FN(par_prepare)(c);
    if (s != LC_OK) return LC_PAR_SERIAL;
    lc_team_run(team, R, FN(par_rows_part), c);
    for (int64_t p = 0; p < R; p++)
        if (c->pstatus[p] != LC_OK) return LC_PAR_SERIAL;
    *value = FN(lc_loss_grad)(t->loss, w->out[L - 1], c->Yb, B, net->sizes[L], NULL);
    if (!isfinite(*value)) return LC_ERR_NONFINITE_LOSS;
    lc_team_run(team, c->n_qparts, FN(par_params_run), c);
    if (!c->fused) {
        s = FN(grad_quant)(net, t->layout, t->quant, c->bt.step, w->grad, w->scratch, r, any);
        if (s != LC_OK) return s;
        return FN(step_update)(t, c->bt.theta, c->next, c->m, c->v, c->bt.step, w, r, any);
    }
    for (int64_t k = 0; k < c->n_qparts; k++)
        if (c->qbad[k]) return LC_ERR_NONFINITE_PARAMS;
    c->wt_of = c->next; /* the parts wrote the transposes of the next kernels */
    c->wt_step = c->bt.step + 1;
    return LC_OK;
}

int FN(lc_train_epoch)(const lc_train *t, REAL *theta, REAL *m, REAL *v, REAL *bn_state,
                       const REAL *X, const REAL *Y, int64_t N, const int64_t *perm,
                       int64_t batch_size, int64_t *step, double *rail, double *loss_sum,
                       int64_t *n_done)
{
    *loss_sum = 0.0;
    *n_done = 0;
    int status = lc_train_check(t);
    if (status != LC_OK) return status;
    const lc_net *net = t->net;
    const int64_t L = net->n_layers, P = lc_net_n_params(net);
    const int64_t n_in = net->sizes[0], n_out = net->sizes[L];
    const int64_t B_max = batch_size < N ? batch_size : N;
    if (batch_size <= 0 || (lc_net_has_bn(net) && !bn_state)) return LC_ERR_ARGS;
    if (N == 0) return LC_OK;
    FN(ws) w;
    if (FN(ws_alloc)(&w, net, t->quant, B_max, FN(WS_TRAIN)) != LC_OK) return LC_ERR_NOMEM;
    FN(par) c;
    const int par = FN(par_plan)(&c, t, &w, B_max);
    lc_team *team = NULL;
    if (par > 0) {
        const int64_t R = (B_max + c.rows - 1) / c.rows;
        team = lc_team_start(R > c.n_qparts ? R : c.n_qparts); /* one team for the epoch */
    }
    if (par < 0 || (par > 0 && !team)) {
        FN(par_free)(&c);
        FN(ws_free)(&w);
        return LC_ERR_NOMEM;
    }
    static const int all_cols[3] = {1, 1, 1};
    REAL *cur = theta, *next = w.next; /* the step writes next; a completed step swaps them */
    int64_t row = 0;
    for (int64_t s = 0; s < N; s += batch_size, row++) {
        const int64_t B = N - s < batch_size ? N - s : batch_size;
        double r[LC_RAIL_N] = {0, 0, 0, 0, 0, 0}, value = 0.0;
        int any[3] = {0, 0, 0}; /* weight, gradient, update */
        status = LC_PAR_SERIAL; /* the serial step unless the parts ran it */
        if (par > 0) {
            c.bt.B = B;
            c.bt.X = perm ? w.Xb : X + s * n_in;
            c.bt.theta = cur;
            c.bt.step = *step;
            c.X = X;
            c.Y = Y;
            c.perm = perm ? perm + s : NULL;
            c.Yb = perm ? w.Yb : Y + s * n_out;
            c.next = next;
            c.m = m;
            c.v = v;
            status = FN(par_step)(&c, team, &value, r, any);
        }
        if (status == LC_PAR_SERIAL) {
            const REAL *Xb = X + s * n_in, *Yb = Y + s * n_out;
            if (perm) {
                FN(gather_rows)(X, n_in, perm + s, B, w.Xb);
                FN(gather_rows)(Y, n_out, perm + s, B, w.Yb);
                Xb = w.Xb;
                Yb = w.Yb;
            }
            status = FN(step_grad)(t, cur, Xb, Yb, B, *step, &w, &value, r, any);
            if (status == LC_OK) status = FN(step_update)(t, cur, next, m, v, *step, &w, r, any);
        }
        if (status != LC_OK) break;
        REAL *tmp = cur;
        cur = next;
        next = tmp;
        if (bn_state) FN(bn_update_state)(net, t->layout, &w, bn_state);
        if (rail) FN(rail_finish)(r, any, all_cols, rail + row * LC_RAIL_N);
        *step += 1;
        *loss_sum += value * (double)B;
        *n_done += B;
    }
    lc_team_end(team);
    if (cur != theta) memcpy(theta, cur, (size_t)P * sizeof(REAL));
    FN(par_free)(&c);
    FN(ws_free)(&w);
    return status;
}

int FN(lc_train_loss_grad)(const lc_train *t, const REAL *theta, const REAL *X, const REAL *Y,
                           int64_t B, int64_t step, REAL *grad, double *rail, double *loss_out)
{
    int s = lc_train_check(t);
    if (s != LC_OK) return s;
    if (lc_net_has_bn(t->net) || B <= 0) return LC_ERR_ARGS;
    FN(ws) w;
    if (FN(ws_alloc)(&w, t->net, t->quant, B, FN(WS_TRAIN)) != LC_OK) return LC_ERR_NOMEM;
    double r[LC_RAIL_N] = {0, 0, 0, 0, 0, 0};
    int any[3] = {0, 0, 0};
    static const int cols[3] = {0, 1, 0};
    s = FN(step_grad)(t, theta, X, Y, B, step, &w, loss_out, r, any);
    if (s == LC_OK) {
        memcpy(grad, w.grad, (size_t)lc_net_n_params(t->net) * sizeof(REAL));
        if (rail) FN(rail_finish)(r, any, cols, rail);
    }
    FN(ws_free)(&w);
    return s;
}

int FN(lc_train_apply)(const lc_train *t, REAL *theta, const REAL *delta, int64_t step,
                       double *rail)
{
    int s = lc_train_check(t);
    if (s != LC_OK) return s;
    if (lc_net_has_bn(t->net)) return LC_ERR_ARGS;
    const int64_t P = lc_net_n_params(t->net);
    FN(ws) w;
    if (FN(ws_alloc)(&w, t->net, t->quant, 1, FN(WS_TRAIN)) != LC_OK) return LC_ERR_NOMEM;
    memcpy(w.delta, delta, (size_t)P * sizeof(REAL));
    double r[LC_RAIL_N] = {0, 0, 0, 0, 0, 0};
    int any[3] = {0, 0, 0};
    static const int cols[3] = {1, 0, 1};
    s = FN(step_apply)(t, theta, w.next, step, &w, r, any);
    if (s == LC_OK) {
        memcpy(theta, w.next, (size_t)P * sizeof(REAL));
        if (rail) FN(rail_finish)(r, any, cols, rail);
    }
    FN(ws_free)(&w);
    return s;
}

/* The loss of net(X) against Y over N samples in inference mode, without a gradient: the
 * predictions of lc_net_forward, then lc_loss_grad over all of them, so the value has the bits
 * those two calls give.  Allocates the N x n_out predictions (lc_net_forward its workspace). */
int FN(lc_net_loss)(const lc_net *net, const REAL *theta, const REAL *bn_state, const REAL *X,
                    const REAL *Y, int64_t N, int32_t loss, double *loss_out)
{
    const int64_t n_out = net->sizes[net->n_layers];
    if (loss != LC_LOSS_MSE && loss != LC_LOSS_HALF_MSE && loss != LC_LOSS_MAE) return LC_ERR_ARGS;
    REAL *F = (REAL *)malloc((size_t)(N * n_out > 0 ? N * n_out : 1) * sizeof(REAL));
    if (!F) return LC_ERR_NOMEM;
    const int status = FN(lc_net_forward)(net, theta, bn_state, X, N, F);
    if (status == LC_OK) *loss_out = FN(lc_loss_grad)(loss, F, Y, N, n_out, NULL);
    free(F);
    return status;
}

#undef FN
#undef LC_CAT
#undef LC_CAT_
