// StreamLink, the outbox of one worker stream (issue 18): one write in flight, what is sent
// meanwhile merged into one message, acknowledgements (SendLater) riding along with the
// next message or going at the next Flush, and what waited written before the stream ends.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "coordinator/grpc/stream_link.h"

namespace rc::coordinator {
namespace {

// Records what the link writes; a write completes only when the test says so.
class FakeWriter final : public StreamWriter {
 public:
  void Write(const pb::CoordinatorMessage* message) override { written.push_back(*message); }
  void End(const grpc::Status& status) override { ended.push_back(status); }
  std::vector<pb::CoordinatorMessage> written;
  std::vector<grpc::Status> ended;
};

pb::CoordinatorMessage Assign(const std::string& task_id) {
  pb::CoordinatorMessage m;
  m.add_assignments()->set_task_id(task_id);
  return m;
}

pb::CoordinatorMessage Ack(const std::string& task_id) {
  pb::CoordinatorMessage m;
  pb::RunningAttempt* a = m.add_finished_acks();
  a->set_task_id(task_id);
  a->set_attempt(1);
  return m;
}

std::vector<std::string> Assigned(const pb::CoordinatorMessage& m) {
  std::vector<std::string> ids;
  for (const pb::Assignment& a : m.assignments()) ids.push_back(a.task_id());
  return ids;
}

std::vector<std::string> Acked(const pb::CoordinatorMessage& m) {
  std::vector<std::string> ids;
  for (const pb::RunningAttempt& a : m.finished_acks()) ids.push_back(a.task_id());
  return ids;
}

using Ids = std::vector<std::string>;

}  // namespace

TEST_CASE("StreamLink: an acknowledgement waits for the next message and rides along with it") {
  FakeWriter w;
  StreamLink link(&w);
  link.SendLater(Ack("a"));
  CHECK(w.written.empty());  // no write of its own
  link.Send(Assign("b"));
  REQUIRE(w.written.size() == 1);
  CHECK(Assigned(w.written[0]) == Ids{"b"});
  CHECK(Acked(w.written[0]) == Ids{"a"});
  link.WriteDone(true);
  CHECK(w.written.size() == 1);  // nothing else was waiting
}

TEST_CASE("StreamLink: Flush sends what waited, and nothing when nothing did") {
  FakeWriter w;
  StreamLink link(&w);
  link.Flush();
  CHECK(w.written.empty());
  link.SendLater(Ack("a"));
  link.SendLater(Ack("b"));
  link.Flush();
  REQUIRE(w.written.size() == 1);
  CHECK(Acked(w.written[0]) == Ids{"a", "b"});  // one message for both, in order
  CHECK(w.written[0].assignments_size() == 0);
  link.WriteDone(true);
  link.Flush();
  CHECK(w.written.size() == 1);
}

TEST_CASE("StreamLink: while a write is in flight, what follows is merged into one message") {
  FakeWriter w;
  StreamLink link(&w);
  link.Send(Assign("a"));  // written at once
  link.Send(Assign("b"));  // waits
  link.SendLater(Ack("x"));  // a message waits anyway: joins it
  link.Send(Assign("c"));  // merged with b
  REQUIRE(w.written.size() == 1);
  link.WriteDone(true);
  REQUIRE(w.written.size() == 2);
  CHECK(Assigned(w.written[1]) == Ids{"b", "c"});
  CHECK(Acked(w.written[1]) == Ids{"x"});
  link.WriteDone(true);
  link.Flush();
  CHECK(w.written.size() == 2);  // the ack was not kept back a second time
}

TEST_CASE("StreamLink: acknowledgements past the size bound go without waiting for a Flush") {
  FakeWriter w;
  StreamLink link(&w);
  const std::string long_id(100, 'x');
  size_t sent = 0;
  for (; w.written.empty() && sent < 10'000; ++sent) link.SendLater(Ack(long_id));
  REQUIRE(w.written.size() == 1);
  CHECK(static_cast<size_t>(w.written[0].finished_acks_size()) == sent);
  CHECK(w.written[0].ByteSizeLong() >= kMaxLaterBytes);
  CHECK(w.written[0].ByteSizeLong() < kMaxLaterBytes + 200);
}

TEST_CASE("StreamLink: Close writes what waited, then ends the stream with the status") {
  FakeWriter w;
  StreamLink link(&w);
  link.Send(Assign("a"));
  link.SendLater(Ack("x"));
  link.Close(absl::FailedPreconditionError("bye"));
  link.Send(Assign("late"));  // after Close: dropped
  CHECK(w.ended.empty());     // not while a write is in flight
  link.WriteDone(true);
  REQUIRE(w.written.size() == 2);
  CHECK(Acked(w.written[1]) == Ids{"x"});
  CHECK(w.written[1].assignments_size() == 0);
  CHECK(w.ended.empty());
  link.WriteDone(true);
  REQUIRE(w.ended.size() == 1);
  CHECK(w.ended[0].error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(w.ended[0].error_message() == "bye");
}

TEST_CASE("StreamLink: a failed write drops the rest and ends the stream as broken") {
  FakeWriter w;
  StreamLink link(&w);
  link.Send(Assign("a"));
  link.Send(Assign("b"));
  link.WriteDone(false);
  CHECK(w.written.size() == 1);  // b is not written on a broken stream
  REQUIRE(w.ended.size() == 1);
  CHECK(w.ended[0].error_code() == grpc::StatusCode::UNAVAILABLE);
  link.Detach();
  link.Send(Assign("c"));  // after Detach: nothing
  CHECK(w.written.size() == 1);
}

}  // namespace rc::coordinator
