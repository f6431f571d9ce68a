#pragma once
// `retire-cluster complete [ID] [--failed] [--result JSON|@FILE|-] [--error MSG] [--json]`
// (DESIGN.md "Browser automation"): completes a running attempt from outside, with the
// task's own token ($RETIRE_CLUSTER_TOKEN inside the task, or --token). ID defaults to
// $RETIRE_CLUSTER_TASK_ID, so a program a task started completes it with `complete`.

#include <iosfwd>
#include <vector>

#include "client/client.h"
#include "common/flags.h"

namespace rc::client {

// Its flags beside the global ones.
std::vector<FlagSpec> CompleteFlagSpecs();
int RunComplete(const ParsedFlags& f, Client& client, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace rc::client
