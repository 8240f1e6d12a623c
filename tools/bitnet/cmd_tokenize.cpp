// `bitnet tokenize`: text → token ids with the model's own tokenizer, or ids → text.
// Output: one `id<TAB>piece` line per token (like llama-tokenize; the piece is escaped so
// each token stays on one line), `--ids` → [id, id, ...], `--json` → {"ids":[...]};
// `--jsonl P` reads one {"text": ...} object per line and writes one {"ids":[...]} line each.
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bitnet/error.hpp"
#include "bitnet/tokenizer.hpp"
#include "bitnet/utf8.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace bitnet::cli {

namespace {

struct TokenizeArgs {
  std::string model;
  std::optional<std::string> text;
  std::optional<std::string> file;
  std::optional<std::string> jsonl;
  std::optional<std::string> decode;
  std::string pretokenizer;
  bool no_bos = false;
  bool no_special = false;
  bool ids_only = false;
  bool json = false;
};

// A piece on one line: backslash, tab, newline, carriage return and other control bytes or
// bytes of incomplete UTF-8 are written as C escapes.
std::string escape_piece(std::string_view piece) {
  std::string out;
  for (std::size_t pos = 0; pos < piece.size();) {
    const auto c = static_cast<unsigned char>(piece[pos]);
    const std::size_t n = utf8_sequence_length(piece, pos);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (n == 0 || c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.append(piece.substr(pos, n));
      pos += n;
      continue;
    }
    ++pos;
  }
  return out;
}

std::vector<int32_t> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ')
      ++used;
    if (used == 0 || used != item.size() || value < 0 || value > INT32_MAX) {
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("--decode: '{}' is not a token id (expected e.g. 1,2,3)", item));
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

std::string ids_json(const std::vector<int32_t>& ids) {
  return dump(Json{{"ids", ids}}) + "\n";
}

void print_ids(const Tokenizer& tok, const std::vector<int32_t>& ids, const TokenizeArgs& args) {
  if (args.json) {
    write_stdout(ids_json(ids));
  } else if (args.ids_only) {
    print_stdout("[{}]\n", fmt::join(ids, ", "));
  } else {
    for (const int32_t id : ids) {
      print_stdout("{}\t{}\n", id, escape_piece(tok.piece(id, true)));
    }
  }
}

int run_tokenize(const TokenizeArgs& args) {
  const int sources =
      (args.text ? 1 : 0) + (args.file ? 1 : 0) + (args.jsonl ? 1 : 0) + (args.decode ? 1 : 0);
  if (sources != 1) {
    throw Error(ErrorKind::invalid_argument,
                "tokenize: give exactly one of --text, --file, --jsonl or --decode");
  }
  const Tokenizer tok = Tokenizer::load(args.model, args.pretokenizer);
  const bool add_bos = !args.no_bos && tok.add_bos_default();
  const bool parse_special = !args.no_special;

  if (args.decode) {
    const std::string text = tok.detokenize(parse_ids(*args.decode));
    if (args.json) {
      write_stdout(dump(Json{{"text", text}}) + "\n");
    } else {
      write_stdout(text + "\n");
    }
    return 0;
  }
  if (args.jsonl) {
    std::istringstream lines(read_file(*args.jsonl));
    std::string line;
    for (std::size_t number = 1; std::getline(lines, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        const auto value = parse_json(line);
        const auto text = value.is_object() ? value.find("text") : value.end();
        if (text == value.end() || !text->is_string()) {
          throw Error(ErrorKind::invalid_input, "expected an object with a string \"text\"");
        }
        const auto ids = tok.tokenize(text->get_ref<const std::string&>(), add_bos, parse_special);
        write_stdout(ids_json(ids));
      } catch (const Error& e) {
        throw Error(e.kind(), fmt::format("{} line {}: {}", *args.jsonl, number, e.what()));
      }
    }
    return 0;
  }
  const std::string text = args.text ? *args.text : read_file(*args.file);
  print_ids(tok, tok.tokenize(text, add_bos, parse_special), args);
  return 0;
}

} // namespace

CommandFn add_tokenize(CLI::App& root) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = root.add_subcommand(
      "tokenize", "Token ids of a text with the model's tokenizer (or the text of ids)");
  cmd->add_option("-m,--model", args->model, "GGUF model file")->required();
  auto* text = cmd->add_option("--text", args->text, "Text to tokenize");
  auto* file = cmd->add_option("--file", args->file, "Tokenize this file's contents");
  auto* jsonl = cmd->add_option("--jsonl", args->jsonl,
                                "One JSON object per line with a \"text\" field; writes one "
                                "{\"ids\":[...]} line per input");
  auto* decode = cmd->add_option("--decode", args->decode, "Print the text of ids, e.g. 1,2,3");
  text->excludes(file, jsonl, decode);
  file->excludes(jsonl, decode);
  jsonl->excludes(decode);
  cmd->add_flag("--no-bos", args->no_bos, "Do not prepend BOS");
  cmd->add_flag("--no-special", args->no_special,
                "Treat special-token text such as <|eot_id|> as plain text");
  cmd->add_option("--pretokenizer", args->pretokenizer,
                  "llama3 | default (bitnet.cpp's fallback); overrides tokenizer.ggml.pre");
  auto* ids = cmd->add_flag("--ids", args->ids_only, "Print only [id, id, ...]");
  cmd->add_flag("--json", args->json, "Print {\"ids\":[...]} (with --decode: {\"text\":...})")
      ->excludes(ids);
  return [args] { return run_tokenize(*args); };
}

} // namespace bitnet::cli
