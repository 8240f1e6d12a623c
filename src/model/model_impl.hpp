// Model::Impl: what a loaded model holds; src/runtime reaches it with detail::impl_of(model).
#pragma once

#include "bitnet/model.hpp"
#include "gguf/gguf.hpp"
#include "model/config.hpp"
#include "model/head_screen.hpp"
#include "model/weights.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/access.hpp"

namespace bitnet {

struct Model::Impl {
  // The mapping the weight views point into, all but the I2_S codes (weights.ternary).
  gguf::File file;
  model::Config config;
  model::Weights weights;
  Tokenizer tokenizer; // src/runtime reaches the tokenizer::Tokenizer with impl_of
  tokenizer::ChatTemplate chat;
  ModelInfo info;
  std::unique_ptr<model::HeadScreen> head_screen; // weights.head_screen points here
};

} // namespace bitnet
