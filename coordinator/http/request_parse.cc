#include "coordinator/http/request_parse.h"

#include <boost/beast/http/error.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/http/routes.h"

namespace rc::coordinator::http {
namespace bhttp = boost::beast::http;

void ConfigureParser(RequestParser& parser, size_t max_body) {
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(max_body);
}

std::optional<HttpResponse> CheckFraming(const RequestParser& parser) {
  const BeastRequest& m = parser.get();
  auto te = m.find(bhttp::field::transfer_encoding);
  if (te == m.end()) return std::nullopt;
  if (m.find(bhttp::field::content_length) != m.end()) {
    return ErrorResponse(400, "Transfer-Encoding and Content-Length together: the body's length is ambiguous");
  }
  const absl::string_view value(te->value().data(), te->value().size());
  if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(value), "chunked")) {
    return ErrorResponse(400, absl::StrCat("Transfer-Encoding: only \"chunked\" is accepted, got \"",
                                           absl::CEscape(value.substr(0, 64)), "\""));
  }
  return std::nullopt;
}

bool ExpectsContinue(const RequestParser& parser) {
  const BeastRequest& m = parser.get();
  auto e = m.find(bhttp::field::expect);
  if (e == m.end()) return false;
  return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(absl::string_view(e->value().data(), e->value().size())),
                                "100-continue");
}

std::optional<HttpResponse> ParseErrorResponse(const boost::beast::error_code& ec, const std::string& body_too_large) {
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return std::nullopt;
  if (ec == bhttp::error::body_limit) return ErrorResponse(413, body_too_large);
  if (ec == bhttp::error::header_limit) {
    return ErrorResponse(431, absl::StrCat("request headers larger than ", kMaxHeaderBytes, " bytes"));
  }
  if (ec == bhttp::error::buffer_overflow) {
    return ErrorResponse(400, absl::StrCat("chunk-size line (with its extensions) or trailer longer than ",
                                           kMaxBufferBytes, " bytes"));
  }
  if (ec == bhttp::error::bad_content_length) {
    return ErrorResponse(400,
                         "Content-Length: not a number, sent twice with different values, or sent with "
                         "Transfer-Encoding: the body's length is ambiguous");
  }
  if (ec == bhttp::error::bad_transfer_encoding) {
    return ErrorResponse(400, "Transfer-Encoding: sent twice, or after a Content-Length: the body's length is ambiguous");
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
    return ErrorResponse(400, absl::StrCat("malformed HTTP request: ", ec.message()));
  }
  return std::nullopt;  // a socket error, timeout or cancellation: the client is gone
}

std::string PercentDecode(absl::string_view text, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

HttpRequest ToHttpRequest(BeastRequest&& message, std::string peer) {
  HttpRequest r;
  const auto verb = message.method_string();
  r.method = message.method() == bhttp::verb::head ? "GET" : std::string(verb.data(), verb.size());
  const absl::string_view target(message.target().data(), message.target().size());
  const size_t q = target.find('?');
  r.path = PercentDecode(target.substr(0, q), /*plus_is_space=*/false);
  if (q != absl::string_view::npos) {
    for (absl::string_view pair : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
      const size_t eq = pair.find('=');
      r.query.emplace_back(PercentDecode(pair.substr(0, eq), true),
                           eq == absl::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true));
    }
  }
  auto auth = message.find(bhttp::field::authorization);
  if (auth != message.end()) r.authorization.assign(auth->value().data(), auth->value().size());
  r.peer = std::move(peer);
  r.body = std::move(message.body());
  return r;
}

}  // namespace rc::coordinator::http
