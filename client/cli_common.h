#pragma once
// Pieces shared by the two command lines.

#include <functional>
#include <ostream>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/client.h"
#include "common/config.h"
#include "common/json_view.h"
#include "retire_cluster/v1/worker.pb.h"

namespace rc::client {

// Prints "error: MESSAGE" and returns the exit code for the status's code.
inline int Fail(std::ostream& err, const absl::Status& s) {
  err << "error: " << s.message() << "\n";
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: return kExitUsage;
    case absl::StatusCode::kNotFound: return kExitNotFound;
    case absl::StatusCode::kUnavailable: return kExitUnavailable;
    case absl::StatusCode::kDeadlineExceeded: return kExitTimeout;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied: return kExitDenied;
    default: return kExitTaskFailed;
  }
}

// Tells a task's progress on `err` ("ID: queued (why)", "ID: running on w1"), each new
// unfinished status once, unless `quiet`: the `on_update` of Client::Wait and SubmitAndWait.
std::function<void(const ::retire_cluster::v1::Task&)> ShowProgress(bool quiet, std::ostream& err);

Json WorkersJson(const std::vector<::retire_cluster::v1::Worker>& workers);

}  // namespace rc::client
