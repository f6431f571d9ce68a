#pragma once
// TLS for the gRPC listeners and channels, from PEM files named in the config. One
// place builds credentials, so that the coordinator, workers and clients agree.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace rc {

struct TlsFiles {
  std::string cert;  // this side's certificate (chain), PEM
  std::string key;   // its private key, PEM
  std::string ca;    // the authority that signed the peer's certificate, PEM
};

// The coordinator's listener: plaintext when `tls.cert` is empty; with `tls.ca`, every
// client must present a certificate that authority signed (mTLS). INVALID_ARGUMENT
// naming the file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const TlsFiles& tls);

// A worker's or client's channel: plaintext unless `use_tls`; then the server is
// verified against `tls.ca` (the system's authorities when empty), and `tls.cert`/`key`
// are presented when set. INVALID_ARGUMENT naming the file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const TlsFiles& tls, bool use_tls);

// True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost).
bool IsLoopbackHost(absl::string_view host);

}  // namespace rc
