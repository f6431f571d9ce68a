#pragma once
// Asks a Chromium to close itself over CDP (`Browser.close`), the one way it writes its
// state out: a SIGTERM, to the browser alone or to its process group, ends headless
// Chromium 156 without flushing its cookie store (checked: a cookie set just before is
// gone after a restart; after Browser.close it is there). BrowserPool::Stop sends this
// first, then falls back to signals after a grace.
//
// A minimal WebSocket client, enough for one message to 127.0.0.1 (RFC 6455: the opening
// handshake, then one masked text frame); no reply is read: the caller waits for the
// process to exit.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace rc::worker {

// One client-to-server WebSocket text frame carrying `payload`, masked with `mask`
// (RFC 6455 5.2 and 5.3: a client's frames are always masked). Pure.
std::string WebSocketTextFrame(absl::string_view payload, uint32_t mask);

// The browser's CDP WebSocket path ("/devtools/browser/<id>"), the second line of
// <user_data_dir>/DevToolsActivePort. NOT_FOUND while the file or the line is missing.
absl::StatusOr<std::string> ReadDevToolsBrowserPath(const std::string& user_data_dir);

// Connects to 127.0.0.1:`port`, upgrades `path` to a WebSocket and sends
// {"id":1,"method":"Browser.close"}; each step bounded by `timeout`. UNAVAILABLE naming the
// step that failed.
absl::Status SendBrowserClose(int port, const std::string& path, absl::Duration timeout);

}  // namespace rc::worker
