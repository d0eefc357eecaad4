/* lc_optim.c: optimizer updates and clipping over flat parameter vectors (see lc_optim.h). */
#include <math.h>

#include "lc_optim.h"

#define REAL float
#define SFX f32
#define POW powf
#define SQRT sqrtf
#include "lc_optim_impl.h"
#undef REAL
#undef SFX
#undef POW
#undef SQRT

#define REAL double
#define SFX f64
#define POW pow
#define SQRT sqrt
#include "lc_optim_impl.h"
