#pragma once
// Invariant checks for the fuzz targets: a broken invariant is a crash (abort), which
// libFuzzer reports with the input that caused it, like any sanitizer finding.

#include <cstdio>
#include <cstdlib>

#define RC_FUZZ_CHECK(cond, what)                                                     \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                   (what), #cond);                                                    \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)
