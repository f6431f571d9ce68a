#include "common/jsdoc.h"

#include <catch2/catch.hpp>

namespace rc {
namespace {

TEST_CASE("JSDoc: the @task block gives name, multi-line description, params and returns") {
  const std::optional<JsDoc> doc = ParseJsDoc(R"(// a header comment
/**
 * @task domain-info
 * @description Looks up a domain.
 *   Continuation lines belong to the description.
 *
 *   Even after a blank line.
 * @param {string} input.domain - The domain
 *   to look up
 * @param {boolean} [input.includeStats=false] Whether to count
 * @param {{a: number, b: string}} input.shape nested braces
 * @param input.loose untyped
 * @returns {Object} Domain information
 *   and more
 */
module.exports = async function execute(input, context) { return 1; };
)");
  REQUIRE(doc.has_value());
  CHECK(doc->task == "domain-info");
  CHECK(doc->description ==
        "Looks up a domain.\nContinuation lines belong to the description.\n\nEven after a blank line.");
  REQUIRE(doc->params.size() == 4);
  CHECK(doc->params[0].name == "input.domain");
  CHECK(doc->params[0].type == "string");
  CHECK(doc->params[0].description == "The domain to look up");
  CHECK_FALSE(doc->params[0].optional);
  CHECK(doc->params[1].name == "input.includeStats");
  CHECK(doc->params[1].type == "boolean");
  CHECK(doc->params[1].optional);
  CHECK(doc->params[1].default_value == "false");
  CHECK(doc->params[1].description == "Whether to count");
  CHECK(doc->params[2].type == "{a: number, b: string}");
  CHECK(doc->params[2].name == "input.shape");
  CHECK(doc->params[2].description == "nested braces");
  CHECK(doc->params[3].name == "input.loose");
  CHECK(doc->params[3].type.empty());
  CHECK(doc->params[3].description == "untyped");
  CHECK(doc->returns == "{Object} Domain information and more");
}

TEST_CASE("JSDoc: the first block holding @task counts, without @description the leading text is the description") {
  const std::optional<JsDoc> doc = ParseJsDoc(
      "/** License: MIT */\n/**/\n/**\n * Adds numbers.\n * Two lines.\n * @task adder extra words\n"
      " * @param {number[]} [input.values] - the values\n */\n/** @task later */\n");
  REQUIRE(doc.has_value());
  CHECK(doc->task == "adder");
  CHECK(doc->description == "Adds numbers.\nTwo lines.");
  REQUIRE(doc->params.size() == 1);
  CHECK(doc->params[0].type == "number[]");
  CHECK(doc->params[0].optional);
  CHECK(doc->params[0].default_value.empty());
  CHECK(doc->params[0].description == "the values");
  CHECK(doc->returns.empty());
}

TEST_CASE("JSDoc: one-line blocks, CRLF, Closure optional types and nested default brackets") {
  std::optional<JsDoc> one = ParseJsDoc("/** @task hello */ module.exports = () => 'hi';");
  REQUIRE(one.has_value());
  CHECK(one->task == "hello");
  CHECK(one->description.empty());

  std::optional<JsDoc> crlf = ParseJsDoc("/**\r\n * @task crlf\r\n * @param {string=} [a=[1,2]] - x\r\n */\r\n");
  REQUIRE(crlf.has_value());
  CHECK(crlf->task == "crlf");
  REQUIRE(crlf->params.size() == 1);
  CHECK(crlf->params[0].type == "string");
  CHECK(crlf->params[0].optional);
  CHECK(crlf->params[0].name == "a");
  CHECK(crlf->params[0].default_value == "[1,2]");
  CHECK(crlf->params[0].description == "x");
}

TEST_CASE("JSDoc: no @task tag, an unclosed block or a look-alike tag gives no doc") {
  CHECK_FALSE(ParseJsDoc("").has_value());
  CHECK_FALSE(ParseJsDoc("module.exports = () => 1; // @task x").has_value());
  CHECK_FALSE(ParseJsDoc("/** @description no task */").has_value());
  CHECK_FALSE(ParseJsDoc("/* @task plain comment */").has_value());
  CHECK_FALSE(ParseJsDoc("/** @task unterminated").has_value());
  CHECK_FALSE(ParseJsDoc("/** @taskname x */").has_value());
  // @task without a name still marks the block: the publisher must give the name.
  std::optional<JsDoc> unnamed = ParseJsDoc("/** @task\n * @description d */");
  REQUIRE(unnamed.has_value());
  CHECK(unnamed->task.empty());
  CHECK(unnamed->description == "d");
}

TEST_CASE("JSDoc: malformed params keep what they hold and never read past the text") {
  std::optional<JsDoc> doc = ParseJsDoc("/** @task t\n * @param {string\n * @param [open\n * @param {x}\n * @param\n */");
  REQUIRE(doc.has_value());
  // "{string" has no closing brace: a type and no name (dropped); "[open": optional name
  // "open"; "{x}" and a bare @param name nothing (dropped).
  REQUIRE(doc->params.size() == 1);
  CHECK(doc->params[0].name == "open");
  CHECK(doc->params[0].optional);
}

}  // namespace
}  // namespace rc
