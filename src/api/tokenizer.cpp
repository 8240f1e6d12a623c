// include/bitnet/tokenizer.hpp: the public face of src/tokenizer's Tokenizer.
#include "bitnet/tokenizer.hpp"

#include "gguf/gguf.hpp"
#include "tokenizer/tokenizer.hpp"

namespace bitnet {

Tokenizer::Tokenizer(std::shared_ptr<const tokenizer::Tokenizer> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::load(const std::string& path, const std::string& pretokenizer) {
  const tokenizer::Options options = tokenizer::options_for(pretokenizer);
  return Tokenizer(std::make_shared<const tokenizer::Tokenizer>(
      tokenizer::Tokenizer::from_gguf(gguf::File::open(path), options)));
}

std::vector<int32_t> Tokenizer::tokenize(std::string_view text, bool add_bos,
                                         bool parse_special) const {
  return impl_->encode(text, add_bos, parse_special);
}
std::string Tokenizer::detokenize(std::span<const int32_t> ids, bool render_special) const {
  return impl_->decode(ids, render_special);
}
std::string Tokenizer::piece(int32_t id, bool render_special) const {
  return impl_->piece(id, render_special);
}
int32_t Tokenizer::n_vocab() const {
  return impl_->n_vocab();
}
int32_t Tokenizer::bos() const {
  return impl_->bos();
}
int32_t Tokenizer::eos() const {
  return impl_->eos();
}
std::optional<int32_t> Tokenizer::eot() const {
  return impl_->eot();
}
bool Tokenizer::is_eog(int32_t id) const {
  return impl_->is_eog(id);
}
bool Tokenizer::add_bos_default() const {
  return impl_->add_bos_default();
}
std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  return impl_->find_token(text);
}
std::string Tokenizer::pretokenizer() const {
  return impl_->pretokenizer() == tokenizer::PreTokenizer::llama3 ? "llama3" : "default";
}

} // namespace bitnet
