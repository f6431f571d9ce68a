// The JSDoc of published JavaScript tasks (common/jsdoc.h): module text from any
// publisher, read by the coordinator at publish. Invariants beyond "no crash": the parse is
// deterministic; no @task anywhere means no doc; the task name is one word of the input;
// one-line fields hold no newline; the description is trimmed; text before the module
// that cannot open or close a comment changes nothing.
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "common/jsdoc.h"
#include "fuzz/fuzz_check.h"

namespace {

bool Same(const std::optional<rc::JsDoc>& a, const std::optional<rc::JsDoc>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a.has_value()) return true;
  if (a->task != b->task || a->description != b->description || a->returns != b->returns ||
      a->params.size() != b->params.size()) {
    return false;
  }
  for (size_t i = 0; i < a->params.size(); ++i) {
    const rc::JsDocParam& p = a->params[i];
    const rc::JsDocParam& q = b->params[i];
    if (p.name != q.name || p.type != q.type || p.description != q.description || p.optional != q.optional ||
        p.default_value != q.default_value) {
      return false;
    }
  }
  return true;
}

bool OneLine(const std::string& s) { return s.find('\n') == std::string::npos; }

bool Trimmed(const std::string& s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  return s.empty() || (!space(s.front()) && !space(s.back()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string code(reinterpret_cast<const char*>(data), size);
  const std::optional<rc::JsDoc> doc = rc::ParseJsDoc(code);
  RC_FUZZ_CHECK(Same(doc, rc::ParseJsDoc(code)), "two parses of one text differ");
  if (!absl::StrContains(code, "@task")) RC_FUZZ_CHECK(!doc.has_value(), "a doc without @task in the text");
  if (doc.has_value()) {
    RC_FUZZ_CHECK(absl::StrContains(code, doc->task), "a task name that is not in the text");
    for (char c : doc->task) RC_FUZZ_CHECK(c != ' ' && c != '\t' && c != '\n' && c != '\r', "a task name with a space");
    RC_FUZZ_CHECK(OneLine(doc->returns), "@returns across lines");
    RC_FUZZ_CHECK(Trimmed(doc->description), "an untrimmed description");
    for (const rc::JsDocParam& p : doc->params) {
      RC_FUZZ_CHECK(!p.name.empty(), "a param without a name");
      RC_FUZZ_CHECK(OneLine(p.name) && OneLine(p.type) && OneLine(p.default_value) && OneLine(p.description),
                    "a param field across lines");
    }
  }
  RC_FUZZ_CHECK(Same(doc, rc::ParseJsDoc("// module\n" + code)), "a leading line comment changed the doc");
  return 0;
}
