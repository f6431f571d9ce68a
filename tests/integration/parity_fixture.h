#pragma once
// What the parity tests (client_api_parity_test.cc, js_tasks_parity_test.cc) share: one token
// of each role, and a coordinator configured with them.
#include <string>

#include "tests/integration/cluster_fixture.h"

namespace rc::testing {

inline const std::string kAdmin = "admin-token-0123456789abcdef";
inline const std::string kAlice = "alice-token-0123456789abcdef";
inline const std::string kBob = "bob-token-0123456789abcdef00";
inline const std::string kReader = "read-token-0123456789abcdef0";

inline CoordinatorConfig WithTokens() {
  CoordinatorConfig c = Cluster::FastConfig();
  c.client_tokens = {"admin " + kAdmin + " root", "submit " + kAlice + " alice", "submit " + kBob + " bob",
                     "read " + kReader + " auditor"};
  return c;
}

}  // namespace rc::testing
