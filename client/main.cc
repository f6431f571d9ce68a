// retire-cluster: the command-line client (see client/cli.cc).
#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) {
  return rc::client::RunCli(std::vector<std::string>(argv, argv + argc), std::cin, std::cout, std::cerr);
}
