// An executable plugin: task type `word_count`. Reads the payload {"text": "..."} on
// stdin, prints {"words": N, "lines": N, "characters": N} on stdout; exits 1 with a
// message on stderr when the payload is wrong. Copy it into a worker's --plugin-dir
// and start the worker with --allow word_count.
#include <iostream>
#include <iterator>
#include <sstream>

#include "nlohmann/json.hpp"

int main() {
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  nlohmann::json payload = nlohmann::json::parse(input, nullptr, false);
  if (payload.is_discarded() || !payload.is_object() || !payload.contains("text") || !payload["text"].is_string()) {
    std::cerr << "payload.text: required, a string\n";
    return 1;
  }
  const std::string text = payload["text"];
  std::istringstream words(text);
  size_t count = 0, lines = 0;
  for (std::string w; words >> w;) ++count;
  for (char c : text) lines += c == '\n';
  if (!text.empty() && text.back() != '\n') ++lines;
  std::cout << nlohmann::json{{"words", count}, {"lines", lines}, {"characters", text.size()}}.dump() << "\n";
  return 0;
}
