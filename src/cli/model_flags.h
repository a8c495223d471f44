// Flags shared by the commands that load a model (generate, logits, bench, serve, ...).
#pragma once

#include <string>

#include "cli/flags.h"
#include "model/model.h"

namespace petrel::cli {

struct ModelFlags {
  std::string load_format = "auto";
  int threads = 0;
  std::string device = "cpu";
  std::string quant;
  std::string matmul_precision = "auto";
  void Register(Flags& f) {
    f.Add("load-format", &load_format, "auto (safetensors) or dummy (random weights from config.json)");
    f.Add("threads", &threads, "CPU threads (default: all)");
    f.Add("device", &device, "cpu (default), cuda or cuda:N (needs a -DPETREL_CUDA=ON build)");
    f.Add("quant", &quant, "quantize weights at load: int8, int4[:32|64|128] (default group 64), q4_0, q4_0:pure "
                          "(embedding / tied LM head in Q4_0 too; otherwise they are Q8_0)");
    f.Add("matmul-precision", &matmul_precision,
          "CPU matmul over bf16 weights: auto (default: bf16 activations for sequences with >= 32 new "
          "tokens in a step where the CPU has AVX512_BF16, f32 for decode rows), f32 (always f32 "
          "activations, exact), bf16 (always bf16 activations)");
  }
  model::LoadOptions ToLoadOptions() const {
    return model::LoadOptions{.load_format = load_format, .n_threads = threads, .device = device, .quant = quant,
                              .matmul_precision = matmul_precision};
  }
};

// Prints "petrel: <error>" to stderr and returns the exit code for it (2 usage, 1 otherwise).
int ReportError(const Error& e);

}  // namespace petrel::cli
