#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>

#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  // Components log to stderr; keep test output to failures unless asked.
  const char* level = std::getenv("RC_TEST_LOG_LEVEL");
  spdlog::set_level(spdlog::level::from_str(level != nullptr ? level : "warn"));
  return Catch::Session().run(argc, argv);
}
