// Built-in handlers that are safe everywhere: echo, sleep, system_info.
#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "worker/capability_probe.h"
#include "worker/handler.h"

namespace rc::worker {
namespace {

using json = nlohmann::ordered_json;

class EchoHandler final : public Handler {
 public:
  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    HandlerOutput out;
    out.result = ctx.payload;
    return out;
  }
  bool Instant() const override { return true; }
};

// {"duration": seconds} -> {"slept_for": seconds}. Wakes at once on cancel/deadline.
class SleepHandler final : public Handler {
 public:
  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    json p = json::parse(ctx.payload, nullptr, false);
    if (p.is_discarded() || !p.is_object()) return absl::InvalidArgumentError("payload must be a JSON object");
    auto it = p.find("duration");
    if (it == p.end() || !it->is_number()) {
      return absl::InvalidArgumentError("payload.duration: required, a number of seconds");
    }
    double seconds = it->get<double>();
    if (!(seconds >= 0) || seconds > 30 * 24 * 3600) {
      return absl::InvalidArgumentError(absl::StrCat("payload.duration: must be 0..2592000, got ", seconds));
    }
    absl::Time start = ctx.stop->clock().Now();
    if (ctx.stop->WaitUntil(start + absl::Seconds(seconds))) {
      return absl::AbortedError("stopped");  // the executor reports cancel/timeout
    }
    HandlerOutput out;
    out.result = json{{"slept_for", seconds}}.dump();
    return out;
  }
};

class SystemInfoHandler final : public Handler {
 public:
  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    static const pb::Capabilities kNone;
    const pb::Capabilities& c = ctx.worker.capabilities != nullptr ? *ctx.worker.capabilities : kNone;
    LoadInfo load = ReadLoad();
    json j = {
        {"device_id", c.device_id()},   {"hostname", c.hostname()},     {"platform", c.platform()},
        {"arch", c.arch()},             {"role", c.role()},             {"cpu_cores", c.cpu_cores()},
        {"memory_gb", c.memory_gb()},   {"storage_gb", c.storage_gb()}, {"gpu", c.gpu()},
        {"gpu_name", c.gpu_name()},     {"internet", c.internet()},     {"tags", c.tags()},
        {"task_types", c.task_types()}, {"slots", c.slots()},           {"version", c.version()},
        {"load",
         {{"running", ctx.worker.running},
          {"slots", c.slots()},
          {"load_average", {load.load1, load.load5, load.load15}},
          {"memory_available_gb", load.memory_available_gb}}},
    };
    HandlerOutput out;
    out.result = j.dump();
    return out;
  }
};

}  // namespace

void HandlerRegistry::Add(std::string type, std::unique_ptr<Handler> handler) {
  handlers_[std::move(type)] = std::move(handler);
}

Handler* HandlerRegistry::Find(const std::string& type) const {
  auto it = handlers_.find(type);
  return it == handlers_.end() ? nullptr : it->second.get();
}

std::vector<std::string> HandlerRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& [type, h] : handlers_) out.push_back(type);
  std::sort(out.begin(), out.end());
  return out;
}

void AddBuiltinHandlers(HandlerRegistry* registry) {
  registry->Add("echo", std::make_unique<EchoHandler>());
  registry->Add("sleep", std::make_unique<SleepHandler>());
  registry->Add("system_info", std::make_unique<SystemInfoHandler>());
}

}  // namespace rc::worker
