#pragma once
// What the server decides about a request's bytes, as pure functions over Beast's parsed
// message: strict framing, the answers to malformed requests, and the conversion to the
// transport-neutral HttpRequest. The connection and the fuzzer (fuzz/fuzz_http_body.cc)
// both use these, so the fuzzer exercises the server's real decisions.

#include <optional>
#include <string>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/strings/string_view.h"
#include "coordinator/http/http_types.h"

namespace rc::coordinator::http {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

inline constexpr size_t kMaxHeaderBytes = 16 << 10;
// What a connection buffers at most: the header, or one chunk-size line (with its
// extensions), or the trailer, plus what a read brings beyond it. Sized so that
// the header limit is met first.
inline constexpr size_t kMaxBufferBytes = kMaxHeaderBytes + (16 << 10);

// A parser for one request with the server's limits.
void ConfigureParser(RequestParser& parser, size_t max_body);

// Called once the headers are in: the 400 to answer when the framing is ambiguous
// (Transfer-Encoding other than exactly "chunked", or with a Content-Length; Beast
// itself refuses differing Content-Lengths and repeated Transfer-Encodings), else nullopt.
std::optional<HttpResponse> CheckFraming(const RequestParser& parser);

// True when the client asked for "100 Continue" before sending its body.
bool ExpectsContinue(const RequestParser& parser);

// The answer to a request the parser refused with `ec`: 400 naming the problem, 413
// with `body_too_large` past the body limit, 431 past the header limit, 400 past the
// buffer bound (an endless chunk line or trailer). nullopt when
// there is nobody to answer (the client closed, the read timed out or was cancelled).
std::optional<HttpResponse> ParseErrorResponse(const boost::beast::error_code& ec,
                                               const std::string& body_too_large);

// The message as a handler sees it. HEAD becomes GET (the server drops the body).
HttpRequest ToHttpRequest(BeastRequest&& message, std::string peer);

// %XX decoded (malformed escapes stay as they are); with `plus_is_space`, '+' is ' '
// (query strings).
std::string PercentDecode(absl::string_view text, bool plus_is_space);

}  // namespace rc::coordinator::http
