#include <catch2/catch.hpp>

#include <set>

#include "common/ids.h"

namespace rc {
namespace {

TEST_CASE("Sortable ids increase strictly, within a millisecond and when the clock goes back") {
  SortableIds ids;
  std::string last = ids.Next("task", 1'700'000'000'000);
  REQUIRE(last.rfind("task-", 0) == 0);
  REQUIRE(last.size() == 5 + 16);
  std::set<std::string> seen{last};
  const int64_t times[] = {1'700'000'000'000, 1'700'000'000'000, 1'700'000'000'001, 1'699'999'000'000,
                           1'700'000'000'001, 1'700'000'005'000};
  for (int64_t t : times) {
    for (int i = 0; i < 10000; ++i) {
      std::string id = ids.Next("task", t);
      REQUIRE(id > last);
      last = id;
      seen.insert(id);
    }
  }
  REQUIRE(seen.size() == 1 + 6 * 10000);
}

TEST_CASE("Sortable ids continue after a stored id, ignoring random ones from the future") {
  SortableIds before;
  const std::string stored = before.Next("task", 1'700'000'000'000);
  SortableIds after;  // a restart with the clock set back an hour
  after.After(stored, 1'699'996'400'000);
  after.After("task-ffffffffffffffff", 1'699'996'400'000);  // an old random id: ignored
  after.After("not-an-id", 1'699'996'400'000);
  const std::string next = after.Next("task", 1'699'996'400'000);
  REQUIRE(next > stored);
  REQUIRE(next < "task-ffff");
}

}  // namespace
}  // namespace rc
