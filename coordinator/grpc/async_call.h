#pragma once
// The coordinator's gRPC calls on the async API: one completion queue and one thread that
// runs every call's reactions (issue 18). With the callback API, gRPC handed each event
// from the thread that polled it to one of its two "nexting" threads (a context switch
// or more per event): on a loopback ping-pong on this VM that cost 76-100 us of server
// CPU and 3-6 context switches per round trip, against 34-46 us and 1 here
// (bench/README "Issue 18, eighth session").
//
// The call classes mirror the callback API's reactors (StartRead, StartWrite, Finish;
// OnReadDone, OnWriteDone, OnCancel, OnDone), so the services read as they did. An
// operation may be started from any thread (the core's writer answers calls); its
// completion runs on the queue's thread.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace rc::coordinator {

// One completion queue and the thread that drains it.
class CallQueue {
 public:
  explicit CallQueue(std::unique_ptr<grpc::ServerCompletionQueue> cq) : cq_(std::move(cq)) {}
  ~CallQueue() { Shutdown(); }
  CallQueue(const CallQueue&) = delete;
  CallQueue& operator=(const CallQueue&) = delete;

  grpc::ServerCompletionQueue* cq() const { return cq_.get(); }
  // Starts the thread.
  void Run();
  // Runs `start`, which begins one operation on this queue, unless the queue is closing:
  // false then, and `start` did not run. Any thread.
  bool Begin(absl::FunctionRef<void()> start);
  // After the server's Shutdown: nothing begins any more, the thread delivers what is
  // pending (every call ends) and stops. Idempotent.
  void Shutdown();

 private:
  const std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// One call's life on a CallQueue. It counts the operations it began (and the holds its
// answer takes, Retain) and deletes itself once gRPC reports the call done and none is
// outstanding, after OnDone. A new object Listens for its method's next call.
class AsyncCall {
 public:
  AsyncCall(const AsyncCall&) = delete;
  AsyncCall& operator=(const AsyncCall&) = delete;

  // Asks for the next call of this object's method; a queue already closing deletes it.
  void Listen();

 protected:
  explicit AsyncCall(CallQueue* queue) : queue_(queue) {}
  virtual ~AsyncCall() = default;

  enum Kind { kRequest, kRead, kWrite, kFinish, kDone, kKinds };

  // gRPC's Request<Method> for this object's method, with `tag`.
  virtual void Request(grpc::ServerCompletionQueue* cq, void* tag) = 0;
  // A fresh object for the same method (it listens for the call after this one).
  virtual AsyncCall* Another() const = 0;
  // The call arrived (the queue's thread).
  virtual void OnStart() = 0;
  virtual void OnReadDone(bool /*ok*/) {}
  virtual void OnWriteDone(bool /*ok*/) {}
  // The client cancelled or the connection broke (before OnDone).
  virtual void OnCancel() {}
  // The call is over; operations begun from now on only complete (ok false) before
  // the object goes. Detach whatever may begin operations from other threads.
  virtual void OnDone() {}

  // Begins the operation of `kind` (at most one of each kind at a time): `start(tag)`
  // issues it. False when the queue is closing (nothing began).
  bool Begin(Kind kind, absl::FunctionRef<void(void*)> start);
  CallQueue* queue() const { return queue_; }
  // Keeps the object while an answer is owed from another thread; Release when given.
  void Retain();
  void Release();

  grpc::ServerContext ctx_;

 private:
  // Completion of the operation of `kind` (the queue's thread).
  void Complete(Kind kind, bool ok);
  friend class CallQueue;
  // What the queue's thread does with a tag it got back.
  static void Dispatch(void* tag, bool ok);

  // The tag of each kind of operation: which call, which kind.
  struct Tag {
    AsyncCall* call;
    Kind kind;
  };
  CallQueue* const queue_;
  Tag tags_[kKinds];
  absl::Mutex mu_;
  int held_ ABSL_GUARDED_BY(mu_) = 0;  // operations outstanding and answers owed
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;  // OnDone ran
};

// A bidirectional stream (ServerBidiReactor's shape).
template <typename Req, typename Resp>
class AsyncBidi : public AsyncCall {
 protected:
  using AsyncCall::AsyncCall;
  void StartRead(Req* r) {
    Begin(kRead, [&](void* tag) { stream_.Read(r, tag); });
  }
  void StartWrite(const Resp* m) {
    Begin(kWrite, [&](void* tag) { stream_.Write(*m, tag); });
  }
  void Finish(const grpc::Status& s) {
    Begin(kFinish, [&](void* tag) { stream_.Finish(s, tag); });
  }
  grpc::ServerAsyncReaderWriter<Resp, Req> stream_{&ctx_};
};

// A server stream (ServerWriteReactor's shape); the request comes with the call.
template <typename Req, typename Resp>
class AsyncWriter : public AsyncCall {
 protected:
  using AsyncCall::AsyncCall;
  void StartWrite(const Resp* m) {
    Begin(kWrite, [&](void* tag) { stream_.Write(*m, tag); });
  }
  void StartWriteAndFinish(const Resp* m, const grpc::Status& s) {
    Begin(kFinish, [&](void* tag) { stream_.WriteAndFinish(*m, grpc::WriteOptions(), s, tag); });
  }
  void Finish(const grpc::Status& s) {
    Begin(kFinish, [&](void* tag) { stream_.Finish(s, tag); });
  }
  Req request_;
  grpc::ServerAsyncWriter<Resp> stream_{&ctx_};
};

// A unary call: one answer, possibly from another thread (Retain/Release around it).
template <typename Req, typename Resp>
class AsyncUnary : public AsyncCall {
 protected:
  using AsyncCall::AsyncCall;
  // Sends `response_` with `s` (an error sends no response).
  void Finish(const grpc::Status& s) {
    Begin(kFinish, [&](void* tag) {
      if (s.ok()) {
        responder_.Finish(response_, s, tag);
      } else {
        responder_.FinishWithError(s, tag);
      }
    });
  }
  Req request_;
  Resp response_;
  grpc::ServerAsyncResponseWriter<Resp> responder_{&ctx_};
};

}  // namespace rc::coordinator
