#include "bitnet/model.hpp"

#include <charconv>
#include <chrono>

#include <spdlog/spdlog.h>

#include "bitnet/session.hpp" // kMaxThreads
#include "kernels/cpu_limits.hpp"
#include "kernels/thread_pool.hpp"
#include "model/model_impl.hpp"

namespace bitnet {

namespace {

tokenizer::ChatTemplate chat_template_for(const gguf::File& file, const std::string& name) {
  return name.empty() ? tokenizer::ChatTemplate::from_gguf(file)
                      : tokenizer::ChatTemplate::by_name(name);
}

// N of a block tensor's name "blk.N.…", else -1.
int32_t block_of(std::string_view name) {
  int32_t n = -1;
  if (name.starts_with("blk.")) std::from_chars(name.data() + 4, name.data() + name.size(), n);
  return n;
}

ModelInfo describe(const gguf::File& file, const model::Config& c, const model::Weights& w) {
  ModelInfo info;
  info.path = file.path();
  info.file_size = file.file_size();
  info.architecture = model::to_string(c.arch);
  info.name = file.find_string("general.name").value_or("");
  for (const gguf::TensorInfo& t : file.tensors())
    info.n_params += t.n_elements();
  info.n_vocab = static_cast<int32_t>(c.n_vocab);
  info.n_ctx_train = static_cast<int32_t>(c.n_ctx_train);
  info.n_embd = static_cast<int32_t>(c.n_embd);
  info.n_layer = static_cast<int32_t>(c.n_layer);
  info.n_head = static_cast<int32_t>(c.n_head);
  info.n_head_kv = static_cast<int32_t>(c.n_head_kv);
  info.n_ff = static_cast<int32_t>(c.n_ff);
  info.head_dim = static_cast<int32_t>(c.head_dim);
  info.n_rot = static_cast<int32_t>(c.n_rot);
  info.rope_base = c.rope_base;
  info.rms_eps = c.rms_eps;
  info.ffn_activation = c.ffn_act == model::FfnAct::relu_sqr ? "relu2" : "silu";
  info.rope_type = c.rope_neox ? "neox" : "norm";
  info.tied_output = c.tied_output;
  info.embd_type = gguf::type_name(c.embd_type);
  info.output_type = gguf::type_name(c.output_type);
  info.weight_bytes_per_token = w.bytes_per_token();
  info.head_row_bytes = w.output.row_bytes;
  info.head_bytes = w.output.row_bytes * static_cast<uint64_t>(w.output.rows);
  // The matrices as the file holds them: the ternary ones (load_config has checked that
  // every linear weight is I2_S), then the head.
  const auto matrix = [&](const gguf::TensorInfo& t, int32_t layer) {
    return MatrixInfo{t.name,
                      gguf::type_name(t.type),
                      layer,
                      static_cast<int64_t>(t.ne[1]),
                      static_cast<int64_t>(t.ne[0]),
                      t.nbytes};
  };
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (t.type != gguf::TensorType::I2_S) continue;
    info.matrices.push_back(matrix(t, block_of(t.name)));
    info.i2s_macs_per_token += t.ne[0] * t.ne[1];
  }
  info.matrices.push_back(
      matrix(*file.find_tensor(c.tied_output ? "token_embd.weight" : "output.weight"), -1));
  return info;
}

// The screen of an F16 head, built on n_threads from rows copied out of the file (so the
// head's 0.66 GB on 2B-4T never becomes resident); null for other heads.
std::unique_ptr<model::HeadScreen> build_screen(const model::Weights& w, int32_t n_threads,
                                                model::ScreenLayout layout) {
  if (w.output.type != gguf::TensorType::F16) return nullptr; // no pool for nothing to screen
  if (n_threads < 0 || n_threads > kMaxThreads)
    throw Error(ErrorKind::invalid_argument,
                fmt::format("thread count {} is outside [0, {}]", n_threads, kMaxThreads));
  kernels::ThreadPool pool(n_threads > 0 ? n_threads
                                         : kernels::default_thread_count(kernels::cpu_limits()));
  return model::screen_head(w, kernels::table(), pool, layout);
}

} // namespace

const char* to_string(HeadMode mode) noexcept {
  return mode == HeadMode::screened ? "screened" : "exact";
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<Model> Model::load(const std::string& path, const ModelOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  gguf::File file = gguf::File::open(path);
  model::Config config = model::load_config(file);
  model::Weights weights = model::bind_weights(file, config);
  auto tok = std::make_shared<const tokenizer::Tokenizer>(
      tokenizer::Tokenizer::from_gguf(file, tokenizer::options_for(options.pretokenizer)));
  if (tok->n_vocab() != config.n_vocab)
    throw Error(ErrorKind::format,
                fmt::format("tokenizer has {} tokens but token_embd.weight has {} rows",
                            tok->n_vocab(), config.n_vocab));
  tokenizer::ChatTemplate chat = chat_template_for(file, options.chat_template);
  ModelInfo info = describe(file, config, weights);
  auto impl = std::make_unique<Impl>(Impl{std::move(file),
                                          config,
                                          std::move(weights),
                                          detail::Access::make<Tokenizer>(std::move(tok)),
                                          std::move(chat),
                                          std::move(info),
                                          {}});
  impl->weights.file = &impl->file; // now at its final address
  if (options.head == HeadMode::screened) {
    impl->head_screen = build_screen(impl->weights, options.n_threads,
                                     options.batched_decode ? model::ScreenLayout::groups
                                                            : model::ScreenLayout::rows);
    impl->weights.head_screen = impl->head_screen.get();
    if (impl->head_screen) impl->info.head_screen_bytes = impl->head_screen->bytes();
  }
  impl->info.load_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  spdlog::debug("loaded {} ({}, {} layers, n_embd {}) in {:.1f} ms", path, impl->info.architecture,
                config.n_layer, config.n_embd, impl->info.load_ms);
  return std::shared_ptr<Model>(new Model(std::move(impl)));
}

const ModelInfo& Model::info() const {
  return impl_->info;
}

const Tokenizer& Model::tokenizer() const {
  return impl_->tokenizer;
}

const std::string& Model::chat_template() const {
  return impl_->chat.name();
}

std::string Model::render_chat(std::span<const ChatMessage> messages,
                               bool add_generation_prompt) const {
  std::vector<tokenizer::Message> converted;
  converted.reserve(messages.size());
  for (const ChatMessage& m : messages)
    converted.push_back({m.role, m.content});
  return impl_->chat.render(converted, add_generation_prompt);
}

} // namespace bitnet
