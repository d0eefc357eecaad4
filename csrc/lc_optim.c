/* lc_optim.c: optimizer updates and clipping over flat parameter vectors (see lc_optim.h). */
#include <float.h>
#include <math.h>

#include "lc_optim.h"

#define REAL float
#define SFX f32
#define POW powf
#define SQRT sqrtf
#define FABS fabsf
#define TINY FLT_MIN
#define HUGEV FLT_MAX
#include "lc_optim_impl.h"
#undef REAL
#undef SFX
#undef POW
#undef SQRT
#undef FABS
#undef TINY
#undef HUGEV

#define REAL double
#define SFX f64
#define POW pow
#define SQRT sqrt
#define FABS fabs
#define TINY DBL_MIN
#define HUGEV DBL_MAX
#include "lc_optim_impl.h"
