// ModelInfo's matrix summary and MAC count, against the shapes the architecture implies
// (each layer: Q and O are n_embd × n_embd, K and V n_embd_kv × n_embd, gate and up
// n_ff × n_embd, down n_embd × n_ff) and the tensor table `bitnet info` prints.
#include <gtest/gtest.h>

#include "bitnet/bitnet.hpp"

namespace bitnet {
namespace {

const std::string kDemo = std::string(BITNET_TEST_DATA_DIR) + "/real-tiny/bitnet-tiny-brown.gguf";

TEST(ModelInfo, MatricesAndMacsFollowTheArchitecture) {
  const auto model = Model::load(kDemo);
  const ModelInfo& info = model->info();
  // The demo model (tests/data/real-tiny/README.md): 6 layers, width 256, vocabulary 2717.
  ASSERT_EQ(info.n_layer, 6);
  ASSERT_EQ(info.n_embd, 256);
  const int64_t e = info.n_embd;
  const int64_t kv = int64_t{info.n_head_kv} * info.head_dim;
  const int64_t ff = info.n_ff;
  EXPECT_EQ(info.i2s_macs_per_token,
            static_cast<uint64_t>(info.n_layer * (2 * e * e + 2 * kv * e + 3 * ff * e)));

  ASSERT_EQ(info.matrices.size(), static_cast<size_t>(7 * info.n_layer + 1));
  const MatrixInfo& q0 = info.matrices.front();
  EXPECT_EQ(q0.name, "blk.0.attn_q.weight");
  EXPECT_EQ(q0.type, "I2_S");
  EXPECT_EQ(q0.layer, 0);
  EXPECT_EQ(q0.rows, e);
  EXPECT_EQ(q0.k, e);
  EXPECT_EQ(q0.bytes, static_cast<uint64_t>(e * e / 4 + 32)); // 2 bits a weight + scale block
  const MatrixInfo& down5 = info.matrices[7 * 6 - 1];
  EXPECT_EQ(down5.layer, 5);
  EXPECT_EQ(down5.rows, e);
  EXPECT_EQ(down5.k, ff);
  const MatrixInfo& head = info.matrices.back();
  EXPECT_EQ(head.name, "token_embd.weight"); // tied head
  EXPECT_EQ(head.type, "F16");
  EXPECT_EQ(head.layer, -1);
  EXPECT_EQ(head.rows, 2717);
  EXPECT_EQ(head.bytes, static_cast<uint64_t>(2717 * e * 2));

  uint64_t bytes = 0;
  for (const MatrixInfo& m : info.matrices)
    bytes += m.type == "I2_S" ? m.bytes - 32 : m.bytes; // the scale block is not read per token
  EXPECT_EQ(bytes, info.weight_bytes_per_token);
}

} // namespace
} // namespace bitnet
