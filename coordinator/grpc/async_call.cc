#include "coordinator/grpc/async_call.h"

namespace rc::coordinator {

void CallQueue::Run() {
  thread_ = std::thread([this] {
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) AsyncCall::Dispatch(tag, ok);
  });
}

bool CallQueue::Begin(absl::FunctionRef<void()> start) {
  absl::ReaderMutexLock lock(&mu_);
  if (closed_) return false;
  start();
  return true;
}

void CallQueue::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    cq_->Shutdown();
  }
  if (thread_.joinable()) {
    thread_.join();
  } else {  // never ran: what is pending still gets delivered, so that every call goes
    void* tag = nullptr;
    bool ok = false;
    while (cq_->Next(&tag, &ok)) AsyncCall::Dispatch(tag, ok);
  }
}

void AsyncCall::Listen() {
  for (int k = 0; k < kKinds; ++k) tags_[k] = Tag{this, static_cast<Kind>(k)};
  {
    absl::MutexLock lock(&mu_);
    held_ = 2;  // the request and the done notification
  }
  // Asked for before the call starts (gRPC's rule); it comes only for a call that started.
  ctx_.AsyncNotifyWhenDone(&tags_[kDone]);
  if (!queue_->Begin([&] { Request(queue_->cq(), &tags_[kRequest]); })) delete this;
}

void AsyncCall::Dispatch(void* tag, bool ok) {
  auto* t = static_cast<Tag*>(tag);
  t->call->Complete(t->kind, ok);
}

bool AsyncCall::Begin(Kind kind, absl::FunctionRef<void(void*)> start) {
  {
    absl::MutexLock lock(&mu_);
    ++held_;
  }
  if (queue_->Begin([&] { start(&tags_[kind]); })) return true;
  Release();
  return false;
}

void AsyncCall::Retain() {
  absl::MutexLock lock(&mu_);
  ++held_;
}

void AsyncCall::Complete(Kind kind, bool ok) {
  switch (kind) {
    case kRequest:
      if (!ok) {  // the server is shutting down: no call, and no done notification
        delete this;
        return;
      }
      Another()->Listen();
      OnStart();
      break;
    case kRead:
      OnReadDone(ok);
      break;
    case kWrite:
      OnWriteDone(ok);
      break;
    case kFinish:
      break;
    case kDone: {
      if (ctx_.IsCancelled()) OnCancel();
      absl::MutexLock lock(&mu_);
      done_ = true;
      break;
    }
    case kKinds:
      break;
  }
  Release();
}

void AsyncCall::Release() {
  bool end = false;
  {
    absl::MutexLock lock(&mu_);
    if (--held_ > 0 || !done_) return;
    if (!ended_) {
      // Held through OnDone: another thread may begin an operation until it detaches.
      ended_ = end = true;
      held_ = 1;
    }
  }
  if (end) {
    OnDone();
    absl::MutexLock lock(&mu_);
    if (--held_ > 0) return;  // the last of those operations deletes it
  }
  delete this;
}

}  // namespace rc::coordinator
