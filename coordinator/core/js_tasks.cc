#include "coordinator/core/js_tasks.h"

#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/jsdoc.h"
#include "common/status_macros.h"
#include "coordinator/core/js_payload.h"
#include "spdlog/spdlog.h"

namespace rc::coordinator {
namespace {

// The offset of the first byte that does not belong to well-formed UTF-8 (no overlongs,
// no surrogates, at most U+10FFFF); nullopt when all is well.
std::optional<size_t> Utf8Error(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::nullopt;
}

std::string Quoted(const std::string& owner) {
  return owner.empty() ? std::string("the unnamed local caller (published without client tokens)")
                       : absl::StrCat("'", owner, "'");
}

}  // namespace

std::string Sha256Hex(absl::string_view bytes) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), out);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), sizeof(out)));
}

JsTaskRegistry::JsTaskRegistry(JsTaskStore* store, Clock* clock, size_t max_payload_bytes)
    : store_(store), clock_(clock), max_payload_bytes_(max_payload_bytes) {}

absl::Status JsTaskRegistry::Load() {
  ASSIGN_OR_RETURN(JsTaskCatalog catalog, store_->Load());
  absl::MutexLock lock(&mu_);
  names_.clear();
  for (JsTaskName& n : catalog.names) {
    Entry& e = names_[n.name];
    e.owner = std::move(n.owner);
    e.next_version = n.next_version;
  }
  for (pb::JsTask& t : catalog.versions) {
    auto [it, inserted] = names_.try_emplace(t.name());
    Entry& e = it->second;
    if (inserted) e.owner = t.owner();  // no name row (not written by this release): its versions say
    e.next_version = std::max(e.next_version, t.version() + 1);
    const int32_t v = t.version();
    e.versions[v] = std::move(t);
  }
  size_t versions = 0;
  for (const auto& [name, e] : names_) versions += e.versions.size();
  if (!names_.empty()) spdlog::info("published js tasks: {} names, {} versions", names_.size(), versions);
  return absl::OkStatus();
}

const JsTaskRegistry::Entry* JsTaskRegistry::FindLocked(const std::string& name) const {
  auto it = names_.find(name);
  return it == names_.end() ? nullptr : &it->second;
}

absl::StatusOr<const pb::JsTask*> JsTaskRegistry::VersionLocked(const std::string& name, int32_t version,
                                                                 absl::string_view prefix) const {
  const Entry* e = FindLocked(name);
  if (e == nullptr || e->versions.empty()) {
    return absl::NotFoundError(absl::StrCat(prefix, "no published task '", name, "'"));
  }
  if (version == 0) return &e->versions.rbegin()->second;
  auto it = e->versions.find(version);
  if (it == e->versions.end()) {
    return absl::NotFoundError(absl::StrCat(prefix, "published task '", name, "' has no version ", version));
  }
  return &it->second;
}

absl::StatusOr<std::string> JsTaskRegistry::CodeLocked(const std::string& name, int32_t version) const {
  Entry& e = names_.at(name);
  const bool latest = version == e.versions.rbegin()->first;
  if (latest && e.latest_code.has_value()) return *e.latest_code;
  ASSIGN_OR_RETURN(std::string code, store_->ReadCode(name, version));
  if (latest) e.latest_code = code;
  return code;
}

absl::Status JsTaskRegistry::OwnedLocked(const std::string& name, const Entry& e, const JsPublisher& by) const {
  if (by.admin || e.owner == by.name) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("name: published task '", name, "' belongs to ", Quoted(e.owner),
                                                  " (its first publisher); only it or an admin may publish or "
                                                  "remove it"));
}

absl::StatusOr<JsTaskRegistry::Published> JsTaskRegistry::Publish(const std::string& code, const std::string& name,
                                                                  const JsPublisher& by) {
  if (code.empty()) return absl::InvalidArgumentError("code: must not be empty");
  if (code.size() > kMaxJsCodeBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("code: ", code.size(), " bytes, over the limit of ", kMaxJsCodeBytes, " (512 KiB)"));
  }
  if (std::optional<size_t> at = Utf8Error(code)) {
    return absl::InvalidArgumentError(absl::StrCat("code: not valid UTF-8 (at byte ", *at, ")"));
  }
  std::optional<JsDoc> doc = ParseJsDoc(code);
  if (!doc.has_value()) {
    return absl::InvalidArgumentError("code: no JSDoc @task tag (start the file with /** @task NAME ... */)");
  }
  const std::string& chosen = name.empty() ? doc->task : name;
  if (chosen.empty()) {
    return absl::InvalidArgumentError("name: the JSDoc @task tag names no task: write /** @task NAME */ or give a name");
  }
  RETURN_IF_ERROR(CheckJsTaskName("name", chosen));
  const std::string sha256 = Sha256Hex(code);

  absl::MutexLock lock(&mu_);
  const Entry* existing = FindLocked(chosen);
  if (existing != nullptr) {
    RETURN_IF_ERROR(OwnedLocked(chosen, *existing, by));
    if (!existing->versions.empty() && existing->versions.rbegin()->second.sha256() == sha256) {
      Published same{existing->versions.rbegin()->second, true};
      same.task.set_versions(static_cast<int32_t>(existing->versions.size()));
      return same;
    }
  }
  pb::JsTask t;
  t.set_name(chosen);
  t.set_version(existing != nullptr ? existing->next_version : 1);
  t.set_sha256(sha256);
  t.set_description(doc->description);
  for (const JsDocParam& p : doc->params) {
    pb::JsTaskParam* out = t.add_params();
    out->set_name(p.name);
    out->set_type(p.type);
    out->set_optional(p.optional);
    // JsTaskParam has no default field: the default joins the description.
    out->set_description(p.default_value.empty()
                             ? p.description
                             : absl::StrCat(p.description, p.description.empty() ? "" : " ", "(default: ",
                                            p.default_value, ")"));
  }
  t.set_returns(doc->returns);
  t.set_owner(existing != nullptr ? existing->owner : by.name);
  t.set_created_at_ms(clock_->NowMs());
  t.set_code_bytes(static_cast<int64_t>(code.size()));
  const JsTaskName row{chosen, t.owner(), t.version() + 1};
  RETURN_IF_ERROR(store_->Add(t, code, row));

  Entry& e = names_[chosen];
  e.owner = row.owner;
  e.next_version = row.next_version;
  e.versions[t.version()] = t;
  e.latest_code = code;
  Published out{std::move(t), false};
  out.task.set_versions(static_cast<int32_t>(e.versions.size()));
  spdlog::info("published js task {} version {} ({} bytes) by {}", chosen, out.task.version(), code.size(),
               by.name.empty() ? "the local caller" : by.name);
  return out;
}

std::vector<pb::JsTask> JsTaskRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<pb::JsTask> out;
  for (const auto& [name, e] : names_) {
    if (e.versions.empty()) continue;
    out.push_back(e.versions.rbegin()->second);
    out.back().set_versions(static_cast<int32_t>(e.versions.size()));
  }
  return out;
}

absl::StatusOr<pb::JsTask> JsTaskRegistry::Get(const std::string& name, int32_t version) const {
  if (name.empty()) return absl::InvalidArgumentError("name: must not be empty");
  if (version < 0) {
    return absl::InvalidArgumentError(absl::StrCat("version: must be 0 (the latest) or more, got ", version));
  }
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(const pb::JsTask* found, VersionLocked(name, version, ""));
  pb::JsTask t = *found;
  ASSIGN_OR_RETURN(std::string code, CodeLocked(name, t.version()));
  t.set_code(std::move(code));
  t.set_versions(static_cast<int32_t>(names_.at(name).versions.size()));
  return t;
}

absl::StatusOr<int32_t> JsTaskRegistry::Remove(const std::string& name, int32_t version, const JsPublisher& by) {
  if (name.empty()) return absl::InvalidArgumentError("name: must not be empty");
  if (version < 0) {
    return absl::InvalidArgumentError(absl::StrCat("version: must be 0 (every version) or more, got ", version));
  }
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(VersionLocked(name, version, "").status());
  Entry& e = names_.at(name);
  RETURN_IF_ERROR(OwnedLocked(name, e, by));
  RETURN_IF_ERROR(store_->Remove(name, version));
  const int32_t latest = e.versions.rbegin()->first;
  int32_t removed = 0;
  if (version == 0) {
    removed = static_cast<int32_t>(e.versions.size());
    e.versions.clear();
  } else {
    removed = static_cast<int32_t>(e.versions.erase(version));
  }
  if (version == 0 || version == latest) e.latest_code.reset();
  spdlog::info("removed {} version(s) of js task {} by {}", removed, name, by.name.empty() ? "the local caller" : by.name);
  return removed;
}

absl::Status JsTaskRegistry::Resolve(pb::TaskSpec* spec) const {
  if (spec->task_type() != kJsTaskType || spec->payload().size() > max_payload_bytes_) return absl::OkStatus();
  ASSIGN_OR_RETURN(JsPayload p, ParseSubmittedJsPayload(spec->payload()));
  if (!p.name.has_value()) return absl::OkStatus();
  std::string resolved;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(const pb::JsTask* t, VersionLocked(*p.name, static_cast<int32_t>(p.version), "payload.name: "));
    const int32_t version = t->version();
    const std::string sha256 = t->sha256();
    ASSIGN_OR_RETURN(std::string code, CodeLocked(*p.name, version));
    resolved = ResolvedJsPayload(p, *p.name, version, sha256, code);
    if (resolved.size() > max_payload_bytes_) {
      return absl::InvalidArgumentError(absl::StrCat("payload: ", resolved.size(), " bytes once published task '",
                                                     *p.name, "' version ", version,
                                                     " is resolved (its code included), over the limit of ",
                                                     max_payload_bytes_, " (max_payload_bytes)"));
    }
  }
  spec->set_payload(std::move(resolved));
  return absl::OkStatus();
}

}  // namespace rc::coordinator
