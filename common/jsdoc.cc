#include "common/jsdoc.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace rc {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// A block's line without its decoration: leading space, one '*', then the text.
absl::string_view Undecorate(absl::string_view line) {
  while (!line.empty() && IsSpace(line.front())) line.remove_prefix(1);
  if (!line.empty() && line.front() == '*') line.remove_prefix(1);
  return Trim(line);
}

// The text from `s`'s opening `open` to its matching `close` (nesting counted), and the
// rest after it. Unmatched: everything after the opening, and no rest.
std::pair<absl::string_view, absl::string_view> Enclosed(absl::string_view s, char open, char close) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == open) ++depth;
    if (s[i] == close && --depth == 0) return {s.substr(1, i - 1), s.substr(i + 1)};
  }
  return {s.substr(1), absl::string_view()};
}

// `{type} [name=default] - text`, `{type} name text`, `name text`.
JsDocParam ParseParam(absl::string_view s) {
  JsDocParam p;
  s = Trim(s);
  if (!s.empty() && s.front() == '{') {
    auto [type, rest] = Enclosed(s, '{', '}');
    type = Trim(type);
    if (!type.empty() && type.back() == '=') {  // Closure-style optional: {string=}
      p.optional = true;
      type = Trim(type.substr(0, type.size() - 1));
    }
    p.type = std::string(type);
    s = Trim(rest);
  }
  if (!s.empty() && s.front() == '[') {
    auto [inner, rest] = Enclosed(s, '[', ']');
    p.optional = true;
    const size_t eq = inner.find('=');
    p.name = std::string(Trim(inner.substr(0, eq)));
    if (eq != absl::string_view::npos) p.default_value = std::string(Trim(inner.substr(eq + 1)));
    s = Trim(rest);
  } else {
    size_t end = 0;
    while (end < s.size() && !IsSpace(s[end])) ++end;
    p.name = std::string(s.substr(0, end));
    s = Trim(s.substr(end));
  }
  if (!s.empty() && s.front() == '-' && (s.size() == 1 || IsSpace(s[1]))) s = Trim(s.substr(1));
  p.description = std::string(s);
  return p;
}

// Joins a continuation line on: '\n' keeps lines (blank ones too, inside the text), ' '
// runs them together (blank ones dropped).
void AppendLine(std::string* to, absl::string_view line, char sep) {
  if (sep == ' ' && line.empty()) return;
  if (!to->empty()) to->push_back(sep);
  to->append(line.data(), line.size());
}

// Blank lines at either end of a multi-line text go.
std::string TrimLines(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && (s[begin] == '\n' || IsSpace(s[begin]))) ++begin;
  while (end > begin && (s[end - 1] == '\n' || IsSpace(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

// One block's body (between "/**" and "*/"); nullopt without an @task tag.
std::optional<JsDoc> ParseBlock(absl::string_view body) {
  enum class In { kLead, kDescription, kParam, kReturns, kOther };
  JsDoc doc;
  bool has_task = false;
  bool has_description_tag = false;
  std::string lead;
  In in = In::kLead;
  for (absl::string_view raw : absl::StrSplit(body, '\n')) {
    const absl::string_view line = Undecorate(raw);
    if (line.size() >= 2 && line[0] == '@' && absl::ascii_isalpha(static_cast<unsigned char>(line[1]))) {
      size_t n = 1;
      while (n < line.size() && absl::ascii_isalpha(static_cast<unsigned char>(line[n]))) ++n;
      const absl::string_view tag = line.substr(1, n - 1);
      const absl::string_view text = Trim(line.substr(n));
      if (tag == "task") {
        if (!has_task) {
          size_t end = 0;
          while (end < text.size() && !IsSpace(text[end])) ++end;
          doc.task = std::string(text.substr(0, end));
        }
        has_task = true;
        in = In::kOther;
      } else if (tag == "description" || tag == "desc") {
        has_description_tag = true;
        AppendLine(&doc.description, text, '\n');
        in = In::kDescription;
      } else if (tag == "param" || tag == "arg" || tag == "argument") {
        JsDocParam p = ParseParam(text);
        if (p.name.empty()) {
          in = In::kOther;  // a tag without a name documents nothing anyone could pass
        } else {
          doc.params.push_back(std::move(p));
          in = In::kParam;
        }
      } else if (tag == "returns" || tag == "return") {
        if (doc.returns.empty()) {
          doc.returns = std::string(text);
          in = In::kReturns;
        } else {
          in = In::kOther;
        }
      } else {
        in = In::kOther;
      }
      continue;
    }
    switch (in) {
      case In::kLead: AppendLine(&lead, line, '\n'); break;
      case In::kDescription: AppendLine(&doc.description, line, '\n'); break;
      case In::kParam: AppendLine(&doc.params.back().description, line, ' '); break;
      case In::kReturns: AppendLine(&doc.returns, line, ' '); break;
      case In::kOther: break;
    }
  }
  if (!has_task) return std::nullopt;
  doc.description = TrimLines(has_description_tag ? doc.description : lead);
  return doc;
}

}  // namespace

std::optional<JsDoc> ParseJsDoc(absl::string_view code) {
  size_t pos = 0;
  while (true) {
    const size_t start = code.find("/**", pos);
    if (start == absl::string_view::npos) return std::nullopt;
    if (start + 3 < code.size() && code[start + 3] == '/') {  // "/**/": an empty plain comment
      pos = start + 4;
      continue;
    }
    const size_t end = code.find("*/", start + 3);
    if (end == absl::string_view::npos) return std::nullopt;
    const absl::string_view body = code.substr(start + 3, end - start - 3);
    // Cheap test first: most blocks of a module are not the task's.
    if (absl::StrContains(body, "@task")) {
      if (std::optional<JsDoc> doc = ParseBlock(body)) return doc;
    }
    pos = end + 2;
  }
}

}  // namespace rc
