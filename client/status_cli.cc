// retire-cluster-status HOST:PORT [--devices] [--device ID] [--json]
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/cli_common.h"
#include "client/client.h"
#include "client/format.h"
#include "common/json_view.h"
#include "common/tls.h"

namespace rc::client {
namespace {

constexpr char kUsage[] =
    "usage: retire-cluster-status HOST:PORT [--devices] [--device ID] [--json]\n\n"
    "Shows the cluster's state: workers, slots and tasks by status; --devices lists\n"
    "every worker, --device ID shows one.\n\n";

std::vector<FlagSpec> Specs() {
  std::vector<FlagSpec> specs = {{"devices", "", "list every worker"},
                                 {"device", "ID", "show one worker"},
                                 {"json", "", "print JSON"},
                                 {"help", "", "show this help"},
                                 {"version", "", "print the version"}};
  for (FlagSpec& s : TlsClientFlagSpecs()) specs.push_back(std::move(s));
  for (FlagSpec& s : ClientTokenFlagSpecs()) specs.push_back(std::move(s));
  return specs;
}

}  // namespace

Json WorkersJson(const std::vector<pb::Worker>& workers) {
  Json j = {{"workers", Json::array()}};
  for (const auto& w : workers) j["workers"].push_back(WorkerToJson(w));
  return j;
}

int RunStatusCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<ParsedFlags> f = ParseFlags(args, 1, Specs());
  if (!f.ok()) return Fail(err, f.status());
  if (f->Has("help")) {
    out << kUsage << FormatFlagHelp(Specs());
    return kExitOk;
  }
  if (f->Has("version")) {
    out << "retire-cluster-status " << RC_VERSION << "\n";
    return kExitOk;
  }
  if (f->positional().size() != 1) {
    err << kUsage;
    return kExitUsage;
  }
  const std::string target = f->positional()[0];
  if (absl::Status s = ValidateAddress("HOST:PORT", target); !s.ok()) return Fail(err, s);
  const bool json = f->Has("json");
  bool use_tls = false;
  TlsFiles tls;
  if (absl::Status s = ApplyTlsClientFlags(*f, &use_tls, &tls); !s.ok()) return Fail(err, s);
  std::string token;
  if (absl::Status s = ApplyClientTokenFlags(*f, &token); !s.ok()) return Fail(err, s);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = MakeChannelCredentials(tls, use_tls);
  if (!creds.ok()) return Fail(err, creds.status());
  Client client(ClientOptions{target, absl::Seconds(10), *creds, token, use_tls && tls.cert.empty()});
  absl::StatusOr<pb::Stats> stats = client.Stats();
  if (!stats.ok()) return Fail(err, stats.status());

  if (auto id = f->Get("device")) {
    absl::StatusOr<std::vector<pb::Worker>> w = client.Workers(*id);
    if (!w.ok()) return Fail(err, w.status());
    out << (json ? WorkerToJson(w->front()).dump(2) + "\n" : FormatWorker(w->front()));
    return kExitOk;
  }
  std::vector<pb::Worker> workers;
  if (f->Has("devices")) {
    absl::StatusOr<std::vector<pb::Worker>> w = client.Workers();
    if (!w.ok()) return Fail(err, w.status());
    workers = std::move(*w);
  }
  if (json) {
    Json j = {{"stats", StatsToJson(*stats)}};
    if (f->Has("devices")) j["devices"] = WorkersJson(workers)["workers"];
    out << j.dump(2) << "\n";
    return kExitOk;
  }
  out << "cluster at " << target << "\n" << FormatStats(*stats);
  if (f->Has("devices")) out << "\n" << FormatWorkerTable(workers);
  return kExitOk;
}

}  // namespace rc::client
