// The Merkle tree behind batch signatures: RFC 6962's roots (its reference test vectors),
// every leaf's proof verifies, and each kind of tampered proof fails.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/merkle.h"

namespace rc::merkle {
namespace {

std::string Hex(const std::string& raw) { return absl::BytesToHexString(raw); }

// The leaf data of the RFC 6962 reference vectors (certificate-transparency's tests).
std::vector<std::string> VectorLeaves(size_t n) {
  const std::vector<std::string> data = {
      std::string(),
      std::string(1, '\x00'),
      std::string(1, '\x10'),
      std::string("\x20\x21"),
      std::string("\x30\x31"),
      std::string("\x40\x41\x42\x43"),
      absl::HexStringToBytes("5051525354555657"),
      absl::HexStringToBytes("606162636465666768696a6b6c6d6e6f"),
  };
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(LeafHash(data[i]));
  return out;
}

TEST_CASE("Roots of 1 to 8 leaves are RFC 6962's reference roots") {
  const std::vector<std::string> expected = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
  };
  for (size_t n = 1; n <= 8; ++n) {
    INFO(n << " leaves");
    absl::StatusOr<Tree> tree = Build(VectorLeaves(n));
    REQUIRE(tree.ok());
    CHECK(Hex(tree->root) == expected[n - 1]);
  }
}

TEST_CASE("Odd counts split at the largest power of two and a 1-leaf root is the leaf") {
  const std::vector<std::string> l = VectorLeaves(5);
  absl::StatusOr<Tree> one = Build({l[0]});
  REQUIRE(one.ok());
  CHECK(one->root == l[0]);
  CHECK(one->proofs.at(0).empty());
  absl::StatusOr<Tree> three = Build({l[0], l[1], l[2]});
  REQUIRE(three.ok());
  CHECK(three->root == NodeHash(NodeHash(l[0], l[1]), l[2]));
  absl::StatusOr<Tree> five = Build(l);
  REQUIRE(five.ok());
  CHECK(five->root == NodeHash(NodeHash(NodeHash(l[0], l[1]), NodeHash(l[2], l[3])), l[4]));
  // The last leaf of 5 is one level below the root; the first is three.
  CHECK(five->proofs[4] == std::vector<std::string>{NodeHash(NodeHash(l[0], l[1]), NodeHash(l[2], l[3]))});
  CHECK(five->proofs[0] == std::vector<std::string>{l[1], NodeHash(l[2], l[3]), l[4]});
  // Leaves and inner nodes are domain-separated: the same bytes hash differently.
  CHECK(LeafHash(l[0] + l[1]) != NodeHash(l[0], l[1]));
}

TEST_CASE("Every leaf's proof leads to the root in trees of 1 2 3 5 8 and 13 leaves") {
  for (size_t n : {1, 2, 3, 5, 8, 13}) {
    std::vector<std::string> leaves;
    for (size_t i = 0; i < n; ++i) leaves.push_back(LeafHash("leaf " + std::to_string(i)));
    absl::StatusOr<Tree> tree = Build(leaves);
    REQUIRE(tree.ok());
    for (size_t i = 0; i < n; ++i) {
      INFO(n << " leaves, leaf " << i);
      absl::StatusOr<std::string> root = RootFromProof(leaves[i], i, n, tree->proofs[i]);
      REQUIRE(root.ok());
      CHECK(*root == tree->root);
    }
  }
}

TEST_CASE("Tampered proofs do not lead to the root") {
  std::vector<std::string> leaves;
  for (int i = 0; i < 5; ++i) leaves.push_back(LeafHash("leaf " + std::to_string(i)));
  absl::StatusOr<Tree> tree = Build(leaves);
  REQUIRE(tree.ok());
  const std::vector<std::string>& proof = tree->proofs[2];
  auto leads_to_root = [&](const std::string& leaf, uint64_t index, uint64_t size, const std::vector<std::string>& p) {
    absl::StatusOr<std::string> root = RootFromProof(leaf, index, size, p);
    return root.ok() && *root == tree->root;
  };
  REQUIRE(leads_to_root(leaves[2], 2, 5, proof));

  SECTION("another leaf") { CHECK_FALSE(leads_to_root(LeafHash("leaf 9"), 2, 5, proof)); }
  SECTION("a changed proof hash") {
    for (size_t i = 0; i < proof.size(); ++i) {
      std::vector<std::string> p = proof;
      p[i][0] ^= 1;
      CHECK_FALSE(leads_to_root(leaves[2], 2, 5, p));
    }
  }
  SECTION("another index") {
    for (uint64_t index : {0, 1, 3, 4}) CHECK_FALSE(leads_to_root(leaves[2], index, 5, proof));
  }
  SECTION("another leaf's proof") {
    for (size_t i : {0, 1, 3, 4}) CHECK_FALSE(leads_to_root(leaves[2], 2, 5, tree->proofs[i]));
  }
  SECTION("a hash dropped or added, reordered") {
    std::vector<std::string> shorter(proof.begin(), proof.end() - 1);
    CHECK(RootFromProof(leaves[2], 2, 5, shorter).status().code() == absl::StatusCode::kInvalidArgument);
    std::vector<std::string> longer = proof;
    longer.push_back(leaves[0]);
    absl::Status s = RootFromProof(leaves[2], 2, 5, longer).status();
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(s.message()), Catch::Contains("more than leaf 2 of 5 needs"));
    std::vector<std::string> swapped = {proof[1], proof[0], proof[2]};
    CHECK_FALSE(leads_to_root(leaves[2], 2, 5, swapped));
  }
  SECTION("malformed input is refused, naming what") {
    CHECK_THAT(std::string(RootFromProof(leaves[2], 5, 5, proof).status().message()),
               Catch::Contains("leaf index 5 is not below the batch size 5"));
    std::vector<std::string> bad = proof;
    bad[1] = "short";
    CHECK_THAT(std::string(RootFromProof(leaves[2], 2, 5, bad).status().message()),
               Catch::Contains("proof hash 1 has 5 bytes"));
    CHECK(RootFromProof("short", 2, 5, proof).status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Build({}).status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(Build({std::string("short")}).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace rc::merkle
