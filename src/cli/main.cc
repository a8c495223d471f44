// `petrel` — one binary, many subcommands. This file only dispatches; each command is a
// cmd_<name>.cc file declared in commands.h.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace {

int RunVersion(int, char**) {
  std::printf("petrel 0.1.0\n");
  return 0;
}

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

// Keep sorted by how often people use them.
constexpr Command kCommands[] = {
    // PETREL_COMMANDS_BEGIN (one line per command; helpers add theirs here)
    {"serve", "OpenAI-compatible HTTP server (continuous batching)", petrel::cli::RunServe},
    {"generate", "generate text from a prompt, streamed", petrel::cli::RunGenerate},
    {"chat", "interactive multi-turn chat with the model's chat template", petrel::cli::RunChat},
    {"logits", "per-position logits as JSON (for comparisons)", petrel::cli::RunLogits},
    {"kv", "KV-cache memory per context and batch, from config.json alone", petrel::cli::RunKv},
    {"inspect", "architecture, parameters, dtypes and tensors of a model", petrel::cli::RunInspect},
    {"bench", "prefill / decode speed and the memory-bandwidth bound", petrel::cli::RunBench},
    {"template", "render a model's chat template for messages (byte-exact)", petrel::cli::RunTemplate},
    {"tokenize", "text -> token ids (and tokens) as JSON", petrel::cli::RunTokenize},
    {"detokenize", "token ids -> text as JSON", petrel::cli::RunDetokenize},
    {"merge", "fold a LoRA adapter into a model: standalone HF directory", petrel::cli::RunMerge},
    {"convert-adapter", "LoRA adapter PEFT <-> MLX-LM (lossless)", petrel::cli::RunConvertAdapter},
    {"compare", "two models' (or base vs LoRA) greedy answers side by side", petrel::cli::RunCompare},
    {"bench-lora", "decode speed: base vs 1 vs N LoRA adapters in a batch", petrel::cli::RunBenchLora},
    {"quantize", "write an int8/int4 (MLX affine layout) copy of a model", petrel::cli::RunQuantize},
    {"perplexity", "perplexity over a text file; KL vs the unquantized model", petrel::cli::RunPerplexity},
    {"convert", "a Hugging Face model as a GGUF file (F16, BF16, Q8_0)", petrel::cli::RunConvert},
    // PETREL_COMMANDS_END
    {"version", "print the version", RunVersion},
};

void PrintUsage() {
  std::fprintf(stderr,
               "petrel — LLM inference engine and OpenAI-compatible server\n\n"
               "usage: petrel COMMAND [ARGS] (petrel COMMAND --help for its flags)\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(stderr, "  %-18s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    PrintUsage();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) == 0) return c.run(argc, argv);
  }
  std::fprintf(stderr, "petrel: unknown command \"%s\"\n\n", argv[1]);
  PrintUsage();
  return 2;
}
