#include <catch2/catch.hpp>

#include "coordinator/scheduling/task_queue.h"

namespace rc::coordinator {

TEST_CASE("Tasks with equal type and requirements share a class, whatever the tag order") {
  TaskQueue q;
  pb::Requirements r1, r2, r3;
  r1.add_required_tags("a");
  r1.add_required_tags("b");
  r2.add_required_tags("b");
  r2.add_required_tags("a");
  r2.set_timeout_seconds(5);  // not part of the class
  r2.set_max_retries(0);
  r3.add_required_tags("a");
  ClassId c1 = q.Intern("echo", r1);
  CHECK(q.Intern("echo", r2) == c1);
  CHECK(q.Intern("echo", r3) != c1);
  CHECK(q.Intern("sleep", r1) != c1);
  CHECK_FALSE(q.spec(c1).requirements.has_timeout_seconds());
  CHECK(q.class_count() == 3);
}

TEST_CASE("A class yields priority first, then submission order") {
  TaskQueue q;
  ClassId c = q.Intern("echo", pb::Requirements());
  q.Push(c, {pb::PRIORITY_NORMAL, 1}, "n1");
  q.Push(c, {pb::PRIORITY_LOW, 2}, "l2");
  q.Push(c, {pb::PRIORITY_URGENT, 3}, "u3");
  q.Push(c, {pb::PRIORITY_NORMAL, 4}, "n4");
  q.Push(c, {pb::PRIORITY_HIGH, 5}, "h5");
  CHECK(q.size() == 5);
  CHECK(q.count_by_priority(pb::PRIORITY_NORMAL) == 2);
  std::vector<std::string> order;
  while (auto head = q.Head(c)) {
    order.emplace_back(head->second);
    REQUIRE(q.Remove(c, head->first));
  }
  CHECK(order == std::vector<std::string>{"u3", "h5", "n1", "n4", "l2"});
  CHECK(q.size() == 0);
  CHECK(q.non_empty().empty());
}

TEST_CASE("Removing a queued task (cancel) leaves the rest in order") {
  TaskQueue q;
  ClassId c = q.Intern("echo", pb::Requirements());
  q.Push(c, {pb::PRIORITY_NORMAL, 1}, "a");
  q.Push(c, {pb::PRIORITY_NORMAL, 2}, "b");
  CHECK(q.Remove(c, {pb::PRIORITY_NORMAL, 1}));
  CHECK_FALSE(q.Remove(c, {pb::PRIORITY_NORMAL, 1}));
  CHECK(q.Head(c)->second == "b");
  CHECK(q.non_empty().contains(c));
}

}  // namespace rc::coordinator
