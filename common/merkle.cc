#include "common/merkle.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"

namespace rc::merkle {
namespace {

// SHA-256 of prefix || a || b. EVP_Digest fails only when OpenSSL cannot allocate; an
// empty hash then never matches a 32-byte one, so nothing verifies by accident.
std::string Hash(char prefix, absl::string_view a, absl::string_view b = {}) {
  std::string in;
  in.reserve(1 + a.size() + b.size());
  in.push_back(prefix);
  in.append(a.data(), a.size());
  in.append(b.data(), b.size());
  std::string out(kHashBytes, '\0');
  unsigned int len = 0;
  if (EVP_Digest(in.data(), in.size(), reinterpret_cast<unsigned char*>(out.data()), &len, EVP_sha256(), nullptr) !=
          1 ||
      len != kHashBytes) {
    return "";
  }
  return out;
}

// Largest power of two strictly below n (n >= 2).
size_t SplitPoint(size_t n) {
  size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// The root of leaves[begin, end); appends each leaf's sibling at every level on the way
// up, deepest first (the recursion reaches the deeper levels before this one appends).
std::string BuildRange(absl::Span<const std::string> leaves, size_t begin, size_t end,
                       std::vector<std::vector<std::string>>* proofs) {
  if (end - begin == 1) return leaves[begin];
  const size_t mid = begin + SplitPoint(end - begin);
  std::string left = BuildRange(leaves, begin, mid, proofs);
  std::string right = BuildRange(leaves, mid, end, proofs);
  for (size_t i = begin; i < mid; ++i) (*proofs)[i].push_back(right);
  for (size_t i = mid; i < end; ++i) (*proofs)[i].push_back(left);
  return NodeHash(left, right);
}

}  // namespace

std::string LeafHash(absl::string_view leaf_data) { return Hash('\x00', leaf_data); }

std::string NodeHash(absl::string_view left, absl::string_view right) { return Hash('\x01', left, right); }

absl::StatusOr<Tree> Build(absl::Span<const std::string> leaf_hashes) {
  if (leaf_hashes.empty()) return absl::InvalidArgumentError("a Merkle tree needs at least one leaf");
  for (size_t i = 0; i < leaf_hashes.size(); ++i) {
    if (leaf_hashes[i].size() != kHashBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("leaf hash ", i, " has ", leaf_hashes[i].size(), " bytes, not ", kHashBytes));
    }
  }
  Tree tree;
  tree.proofs.resize(leaf_hashes.size());
  tree.root = BuildRange(leaf_hashes, 0, leaf_hashes.size(), &tree.proofs);
  return tree;
}

absl::StatusOr<std::string> RootFromProof(absl::string_view leaf_hash, uint64_t index, uint64_t size,
                                          absl::Span<const std::string> proof) {
  if (index >= size) {
    return absl::InvalidArgumentError(absl::StrCat("leaf index ", index, " is not below the batch size ", size));
  }
  if (leaf_hash.size() != kHashBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the leaf hash has ", leaf_hash.size(), " bytes, not ", kHashBytes));
  }
  // RFC 9162 2.1.3.2: fn walks the leaf's position up the tree, sn the last leaf's; where
  // fn is a right child (or the rightmost node of its level, which has no right sibling
  // and is carried up unchanged) the proof hash goes on the left.
  uint64_t fn = index, sn = size - 1;
  std::string r(leaf_hash);
  for (size_t i = 0; i < proof.size(); ++i) {
    if (proof[i].size() != kHashBytes) {
      return absl::InvalidArgumentError(absl::StrCat("proof hash ", i, " has ", proof[i].size(), " bytes, not ",
                                                     kHashBytes));
    }
    if (sn == 0) {
      return absl::InvalidArgumentError(absl::StrCat("the proof has ", proof.size(), " hashes, more than leaf ", index,
                                                     " of ", size, " needs"));
    }
    if ((fn & 1) == 1 || fn == sn) {
      r = NodeHash(proof[i], r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, proof[i]);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the proof has ", proof.size(), " hashes, fewer than leaf ", index,
                                                   " of ", size, " needs"));
  }
  return r;
}

}  // namespace rc::merkle
