// `http_request`: one HTTP(S) request with libcurl. Redirects are followed up to 5
// (http/https only), the response body is capped (the task fails beyond it), cancel
// and timeout abort the transfer. HTTP error statuses are results, not failures:
// {"status_code", "headers", "body"}; a request that gets no response fails.
#include <curl/curl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/payload.h"

namespace rc::worker {
namespace {

constexpr double kDefaultTimeout = 30;

struct Transfer {
  const StopToken* stop;
  size_t cap;
  std::string body;
  bool over_cap = false;
  nlohmann::json headers = nlohmann::json::object();
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->body.size() + size * n > t->cap) {
    t->over_cap = true;
    return 0;  // aborts the transfer
  }
  t->body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->headers = nlohmann::json::object();  // a redirect's headers are replaced by the final ones
  } else if (size_t colon = line.find(':'); colon != absl::string_view::npos) {
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)));
    t->headers[name] = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Transfer*>(user)->stop->stopped() ? 1 : 0;
}

class HttpRequestHandler final : public Handler {
 public:
  explicit HttpRequestHandler(size_t body_cap) : body_cap_(body_cap) {}

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(Payload p, Payload::Parse(ctx.payload));
    ASSIGN_OR_RETURN(std::optional<std::string> url, p.String("url"));
    if (!url.has_value() || !(absl::StartsWith(*url, "http://") || absl::StartsWith(*url, "https://"))) {
      return absl::InvalidArgumentError("payload.url: required, an http:// or https:// URL");
    }
    ASSIGN_OR_RETURN(std::optional<std::string> method_opt, p.String("method"));
    std::string method = absl::AsciiStrToUpper(method_opt.value_or("GET"));
    static const char* kMethods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    if (std::find(std::begin(kMethods), std::end(kMethods), method) == std::end(kMethods)) {
      return absl::InvalidArgumentError(absl::StrCat("payload.method: unknown method '", method, "'"));
    }
    ASSIGN_OR_RETURN(auto headers, p.StringMap("headers"));
    ASSIGN_OR_RETURN(std::optional<std::string> body, p.String("body"));
    ASSIGN_OR_RETURN(std::optional<double> timeout, p.Seconds("timeout"));

    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return absl::InternalError("curl_easy_init failed");
    Transfer t{.stop = ctx.stop, .cap = body_cap_, .body = {}};
    curl_slist* header_list = nullptr;
    for (const auto& [k, v] : headers) header_list = curl_slist_append(header_list, absl::StrCat(k, ": ", v).c_str());
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(header_list, curl_slist_free_all);
    char error[CURL_ERROR_SIZE] = {0};
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url->c_str());
    // Standard methods through their own options, so that a 301/302/303 turns a POST
    // into a GET as browsers do; others are sent as given.
    if (method == "GET") {
      curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      if (!body.has_value()) curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    } else {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (body.has_value()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.value_or(kDefaultTimeout) * 1000));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "retire-cluster/" RC_VERSION);
    const CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_ABORTED_BY_CALLBACK) return absl::AbortedError("stopped");  // cancel or deadline
    if (t.over_cap) {
      return absl::ResourceExhaustedError(absl::StrCat("response body larger than ", body_cap_, " bytes"));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(absl::StrCat("payload.timeout: no complete response from ", *url,
                                                      " within ", timeout.value_or(kDefaultTimeout), "s"));
    }
    if (rc != CURLE_OK) {
      return absl::UnavailableError(absl::StrCat("request to ", *url, " failed: ", curl_easy_strerror(rc),
                                                 error[0] ? absl::StrCat(" (", error, ")") : ""));
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    HandlerOutput out;
    out.result = nlohmann::json{{"status_code", status}, {"headers", t.headers}, {"body", t.body}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    return out;
  }

 private:
  const size_t body_cap_;
};

}  // namespace

std::unique_ptr<Handler> MakeHttpRequestHandler(size_t body_cap) {
  curl_global_init(CURL_GLOBAL_DEFAULT);  // idempotent; before any thread uses curl
  return std::make_unique<HttpRequestHandler>(body_cap);
}

}  // namespace rc::worker
