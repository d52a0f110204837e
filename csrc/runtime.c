#include "nlpk.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int nlpk_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int nlpk_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
