// retire-cluster-status: one-shot view of a cluster (see client/status_cli.cc).
#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) {
  return rc::client::RunStatusCli(std::vector<std::string>(argv, argv + argc), std::cout, std::cerr);
}
