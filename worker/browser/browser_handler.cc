// `browser` tasks: start, stop or look at the worker's persistent browser of a profile.
// The handler only translates: every decision about processes is the pool's.
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "worker/browser/browser_handlers.h"

namespace rc::worker {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("payload.", field, ": ", why));
}

class BrowserHandler final : public Handler {
 public:
  explicit BrowserHandler(std::shared_ptr<BrowserPool> pool) : pool_(std::move(pool)) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    absl::StatusOr<BrowserRequest> req = ParseBrowserRequest(ctx.payload);
    if (!req.ok()) return req.status();
    absl::StatusOr<BrowserState> state;
    if (req->operation == "start") {
      state = pool_->Start(req->profile, req->headless);
    } else if (req->operation == "stop") {
      state = pool_->Stop(req->profile);
    } else {
      state = pool_->Status(req->profile);
    }
    if (!state.ok()) return state.status();
    HandlerOutput out;
    out.result = BrowserStateJson(*state);
    return out;
  }

 private:
  std::shared_ptr<BrowserPool> pool_;
};

}  // namespace

absl::StatusOr<BrowserRequest> ParseBrowserRequest(const std::string& payload) {
  nlohmann::json j = nlohmann::json::parse(payload.empty() ? "{}" : payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("payload must be a JSON object");
  for (const char* key : {"port", "cdp_port"}) {
    if (j.contains(key)) {
      return Bad(key, absl::StrCat("the CDP port is chosen by Chromium (--remote-debugging-port=0); remove payload.",
                                   key));
    }
  }
  static const std::set<std::string> kKnown = {"operation", "profile", "headless"};
  std::vector<std::string> unknown;
  for (const auto& [key, value] : j.items()) {
    if (kKnown.count(key) == 0) unknown.push_back(key);
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("payload: unknown key", unknown.size() > 1 ? "s " : " ",
                                                   absl::StrJoin(unknown, ", "),
                                                   " (a browser task takes operation, profile and headless)"));
  }
  BrowserRequest req;
  if (!j.contains("operation")) return Bad("operation", "required: start, stop or status");
  if (!j["operation"].is_string()) return Bad("operation", "expected a string: start, stop or status");
  req.operation = j["operation"].get<std::string>();
  if (req.operation != "start" && req.operation != "stop" && req.operation != "status") {
    return Bad("operation", absl::StrCat("unknown operation '", req.operation, "' (start, stop or status)"));
  }
  if (j.contains("profile") && !j["profile"].is_null()) {
    if (!j["profile"].is_string()) return Bad("profile", "expected a string");
    req.profile = j["profile"].get<std::string>();
  }
  if (absl::Status s = CheckProfileName(req.profile, "payload.profile"); !s.ok()) return s;
  if (j.contains("headless") && !j["headless"].is_null()) {
    if (!j["headless"].is_boolean()) return Bad("headless", "expected true or false");
    req.headless = j["headless"].get<bool>();
  }
  return req;
}

std::unique_ptr<Handler> MakeBrowserHandler(std::shared_ptr<BrowserPool> pool) {
  return std::make_unique<BrowserHandler>(std::move(pool));
}

}  // namespace rc::worker
