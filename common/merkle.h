#pragma once
// A Merkle tree over SHA-256, exactly RFC 6962 / RFC 9162 section 2.1 (Certificate
// Transparency), so that one signature covers a batch of signed results and each result
// can be checked alone with its inclusion proof (common/result_signature.h).
//
//   leaf hash  = SHA-256(0x00 || leaf data)
//   node hash  = SHA-256(0x01 || left || right)
//   root of n leaf hashes: the leaf hash itself when n == 1; otherwise, with k the
//   largest power of two below n, node hash(root of the first k, root of the other n-k).
//
// The 0x00/0x01 prefixes keep a leaf from passing for an inner node (and the reverse);
// the split at the largest power of two makes odd counts deterministic without
// duplicating a leaf. Hashes are raw 32-byte strings. Pure functions.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace rc::merkle {

constexpr size_t kHashBytes = 32;

std::string LeafHash(absl::string_view leaf_data);
std::string NodeHash(absl::string_view left, absl::string_view right);

struct Tree {
  std::string root;
  // proofs[i]: the inclusion proof of leaf i, sibling hashes from the leaf upward
  // (RFC 9162's audit path); empty for a 1-leaf tree.
  std::vector<std::vector<std::string>> proofs;
};
// The tree over `leaf_hashes` (at least one) with every leaf's proof; O(n log n).
// INVALID_ARGUMENT for no leaves or a hash that is not 32 bytes.
absl::StatusOr<Tree> Build(absl::Span<const std::string> leaf_hashes);

// The root that `proof` leads to from `leaf_hash` at `index` in a tree of `size` leaves
// (RFC 9162 section 2.1.3.2). INVALID_ARGUMENT, naming what, when the index is not below
// the size, a hash is not 32 bytes, or the proof has too few or too many hashes for
// that index and size.
absl::StatusOr<std::string> RootFromProof(absl::string_view leaf_hash, uint64_t index, uint64_t size,
                                          absl::Span<const std::string> proof);

}  // namespace rc::merkle
