#pragma once
// The JSDoc of a published JavaScript task (DESIGN.md "JavaScript tasks"): a pure parser
// of module text, with no JavaScript engine. It reads the first `/** ... */` block that
// holds an `@task` tag:
//
//   /**
//    * @task domain-info
//    * @description Looks up a domain.
//    *   Continuation lines belong to the description.
//    * @param {string} input.domain - The domain
//    * @param {boolean} [input.includeStats=false] Optional, with a default
//    * @returns {Object} Domain information
//    */
//
// It does not tokenize JavaScript: a "/**" inside a string literal counts as a block.
// Input is any bytes (the caller checks UTF-8); the parse is linear in the text.

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace rc {

struct JsDocParam {
  std::string name;           // "input.includeStats"
  std::string type;           // "boolean" ("" when the tag gives none)
  std::string description;    // continuation lines joined with a space
  bool optional = false;      // [name], [name=default] or {type=}
  std::string default_value;  // "false" for [name=false]; "" when none
};

struct JsDoc {
  std::string task;         // the word after @task ("" when the tag names none)
  std::string description;  // @description, else the block's text before its first tag
  std::vector<JsDocParam> params;
  std::string returns;      // @returns / @return as written: "{Object} Domain information"
};

// The first block holding `@task`; nullopt when no block does (or none is closed).
std::optional<JsDoc> ParseJsDoc(absl::string_view code);

}  // namespace rc
