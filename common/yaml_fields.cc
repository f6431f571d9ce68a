#include "common/yaml_fields.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rc {

absl::Status YamlFields::Parse(const std::string& text, const std::string& source, YamlFields* out) {
  out->source_ = source;
  try {
    out->node_ = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid YAML: ", e.what()));
  }
  if (out->node_.IsNull()) {
    out->node_ = YAML::Node(YAML::NodeType::Map);
  } else if (!out->node_.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a mapping of key: value"));
  }
  return absl::OkStatus();
}

absl::Status YamlFields::Error(const std::string& key, const std::string& problem) const {
  return absl::InvalidArgumentError(absl::StrCat(source_, ": key '", key, "': ", problem));
}

absl::Status YamlFields::Read(const std::string& key, std::string* out) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  if (!n.IsScalar()) return Error(key, "expected a string");
  *out = n.Scalar();
  return absl::OkStatus();
}

absl::Status YamlFields::Read(const std::string& key, std::optional<std::string>* out) {
  std::string value;
  const bool present = node_[key].IsDefined() && !node_[key].IsNull();
  if (absl::Status s = Read(key, &value); !s.ok()) return s;
  if (present) *out = std::move(value);
  return absl::OkStatus();
}

namespace {
// Integers of any width: a value outside the type's range is refused, never truncated.
template <typename Int>
absl::Status ReadInteger(const YAML::Node& n, Int* out, std::string* problem) {
  const std::string text = n.IsScalar() ? n.Scalar() : "(not a scalar)";
  Int v;
  if (n.IsScalar() && absl::SimpleAtoi(text, &v)) {
    *out = v;
    return absl::OkStatus();
  }
  const bool digits = !text.empty() && text.find_first_not_of("-+0123456789") == std::string::npos;
  *problem = digits ? absl::StrCat("out of range (", std::numeric_limits<Int>::min(), "..",
                                   std::numeric_limits<Int>::max(), "), got '", text, "'")
                    : absl::StrCat("expected an integer, got '", text, "'");
  return absl::InvalidArgumentError(*problem);
}
}  // namespace

absl::Status YamlFields::Read(const std::string& key, int* out) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  std::string problem;
  if (!ReadInteger(n, out, &problem).ok()) return Error(key, problem);
  return absl::OkStatus();
}

absl::Status YamlFields::Read(const std::string& key, int64_t* out) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  std::string problem;
  if (!ReadInteger(n, out, &problem).ok()) return Error(key, problem);
  return absl::OkStatus();
}

absl::Status YamlFields::Read(const std::string& key, bool* out) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  const std::string s = n.IsScalar() ? n.Scalar() : "";
  if (s == "true" || s == "yes" || s == "on") {
    *out = true;
  } else if (s == "false" || s == "no" || s == "off") {
    *out = false;
  } else {
    return Error(key, absl::StrCat("expected true or false, got '", s, "'"));
  }
  return absl::OkStatus();
}

absl::Status YamlFields::Read(const std::string& key, std::vector<std::string>* out) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  if (!n.IsSequence()) return Error(key, "expected a list, e.g. [a, b]");
  out->clear();
  for (const YAML::Node& item : n) {
    if (!item.IsScalar()) return Error(key, "every list item must be a string");
    out->push_back(item.Scalar());
  }
  return absl::OkStatus();
}

absl::Status YamlFields::ReadNumber(const std::string& key, double* out) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), out)) {
    return Error(key, absl::StrCat("expected a number, got '", n.IsScalar() ? n.Scalar() : "(not a scalar)", "'"));
  }
  return absl::OkStatus();
}

absl::Status YamlFields::ReadSeconds(const std::string& key, absl::Duration* out) {
  used_.insert(key);
  YAML::Node n = node_[key];
  if (!n.IsDefined() || n.IsNull()) return absl::OkStatus();
  double v;
  if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &v)) {
    return Error(key, absl::StrCat("expected a number of seconds, got '", n.IsScalar() ? n.Scalar() : "(not a scalar)", "'"));
  }
  *out = absl::Seconds(v);
  return absl::OkStatus();
}

absl::Status YamlFields::CheckNoUnknownKeys() const {
  for (const auto& kv : node_) {
    std::string key = kv.first.as<std::string>("");
    if (!used_.contains(key)) return Error(key, "unknown key");
  }
  return absl::OkStatus();
}

absl::Status ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string msg = absl::StrCat("cannot read ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return absl::OkStatus();
}

}  // namespace rc
