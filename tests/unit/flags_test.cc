#include <catch2/catch.hpp>

#include "common/flags.h"

namespace rc {

TEST_CASE("ParseFlags reads every flag form and names bad ones") {
  std::vector<FlagSpec> specs = {{"name", "N", ""}, {"tag", "T", "", true}, {"wait", "", ""}};
  auto f = ParseFlags({"p", "x", "--name", "a", "--tag=t1", "--tag", "t2", "--wait", "y"}, 1, specs);
  REQUIRE(f.ok());
  CHECK(*f->Get("name") == "a");
  CHECK(f->GetAll("tag") == std::vector<std::string>{"t1", "t2"});
  CHECK(f->Has("wait"));
  CHECK(f->positional() == std::vector<std::string>{"x", "y"});

  CHECK(ParseFlags({"p", "--nope"}, 1, specs).status().message() == "unknown flag --nope (see --help)");
  CHECK(ParseFlags({"p", "--name"}, 1, specs).status().message() == "flag --name needs a value (N)");
  CHECK(ParseFlags({"p", "--name", "a", "--name", "b"}, 1, specs).status().message() ==
        "flag --name given more than once");
  CHECK(ParseFlags({"p", "--wait=1"}, 1, specs).status().message() == "flag --wait takes no value");
}

TEST_CASE("ParseFlags can stop at the first positional (sub-commands)") {
  std::vector<FlagSpec> specs = {{"coordinator", "A", ""}};
  size_t end = 0;
  auto f = ParseFlags({"p", "--coordinator", "h:1", "submit", "--priority", "high"}, 1, specs, true, &end);
  REQUIRE(f.ok());
  CHECK(end == 3);
  CHECK(*f->Get("coordinator") == "h:1");
}

TEST_CASE("Flag conversions name the flag") {
  CHECK(FlagInt("slots", "x").status().message() == "--slots: expected an integer, got 'x'");
  CHECK(*FlagDouble("timeout", "1.5") == 1.5);
  CHECK(SplitList(" a, b ,,c") == std::vector<std::string>{"a", "b", "c"});
}

}  // namespace rc
