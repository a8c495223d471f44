// libFuzzer entry point for the tokenizer (built only with -DPETREL_FUZZ=ON and clang; see
// tests/unit/tokenizer/CMakeLists.txt). The first input byte picks the mode:
//   even: the rest is text for the Qwen3 tokenizer: Encode (both parse_special modes) must
//         succeed on valid UTF-8 and fail cleanly otherwise; Decode of the ids must succeed,
//         and streaming the ids through IncrementalDetokenizer must give exactly Decode's text;
//   odd:  the rest is a tokenizer.json: loading must return a value or an Error, never crash,
//         and a loaded tokenizer must encode and decode a fixed probe without crashing.
//
//   cmake -B build-fuzz -DPETREL_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang
//   cmake --build build-fuzz --target tokenizer_fuzz && build-fuzz/bin/tokenizer_fuzz -max_len=4096
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace {

using petrel::tokenizer::Tokenizer;

// The fuzzer harness is the one place a lazily-initialized static is the natural shape: libFuzzer
// calls the entry point millions of times and loading takes ~100 ms.
const Tokenizer& Qwen3() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::FromDirectory(std::string(PETREL_FIXTURES) + "/qwen3-tiny");
    if (!t.ok()) std::abort();
    return std::move(t).value();
  }();
  return *tok;
}

void CheckText(std::string_view text) {
  const Tokenizer& tok = Qwen3();
  for (bool parse_special : {true, false}) {
    auto ids = tok.Encode(text, {.add_special_tokens = true, .parse_special = parse_special});
    if (!ids.ok()) return;  // invalid UTF-8: a clean error is the expected outcome
    auto text_out = tok.Decode(*ids);
    if (!text_out.ok()) std::abort();
    petrel::tokenizer::IncrementalDetokenizer detok(tok, false);
    std::string streamed;
    for (int32_t id : *ids) streamed += detok.Push(id);
    streamed += detok.Flush();
    if (streamed != *text_out) std::abort();
  }
}

void CheckJson(std::string_view json) {
  auto tok = Tokenizer::FromJson(json, "");
  if (!tok.ok()) return;
  auto ids = (*tok)->Encode("Hello wörld <s> 123 🙂");
  if (ids.ok()) (void)(*tok)->Decode(*ids);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    CheckText(rest);
  } else {
    CheckJson(rest);
  }
  return 0;
}
