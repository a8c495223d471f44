// `petrel convert-adapter IN_DIR -o OUT_DIR --to peft|mlx [--base MODEL_DIR]`: lossless conversion
// between the PEFT and MLX-LM LoRA layouts (tensors keep their dtype; A/B transposed for MLX).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "formats/hf_config.h"
#include "model/lora/adapter.h"

namespace petrel::cli {

int RunConvertAdapter(int argc, char** argv) {
  std::string out_dir, to, base_dir;
  Flags f("petrel convert-adapter IN_DIR -o OUT_DIR --to peft|mlx [--base MODEL_DIR]");
  f.Add("output", &out_dir, "output adapter directory (also -o)")
      .Add("to", &to, "peft or mlx")
      .Add("base", &base_dir, "base model directory: validates shapes, and tells MLX where the last blocks are");
  static char kOutput[] = "--output";
  std::vector<char*> args(argv, argv + argc);
  for (auto& a : args)
    if (std::strcmp(a, "-o") == 0) a = kOutput;
  if (auto st = f.Parse((int)args.size(), args.data()); !st.ok()) return ReportError(st.error());
  if (f.help() || f.positional().size() != 1 || out_dir.empty() || (to != "peft" && to != "mlx")) {
    std::fprintf(stderr, "%s", f.Usage().c_str());
    return f.help() ? 0 : 2;
  }
  formats::ModelConfig base;
  if (!base_dir.empty()) {
    auto c = formats::LoadHfConfig(base_dir);
    if (!c.ok()) return ReportError(c.error());
    base = *c;
  }
  auto a = model::lora::ReadAdapter(f.positional()[0], base_dir.empty() ? nullptr : &base);
  if (!a.ok()) return ReportError(a.error());
  auto st = to == "peft" ? model::lora::WritePeftAdapter(*a, out_dir)
                         : model::lora::WriteMlxAdapter(*a, out_dir, base_dir.empty() ? 0 : base.n_layers);
  if (!st.ok()) return ReportError(st.error());
  std::fprintf(stderr, "%s adapter %s (%lld linears, max rank %lld) -> %s adapter %s\n",
               model::lora::AdapterFormatName(a->format), f.positional()[0].c_str(), (long long)a->NumLinears(),
               (long long)a->MaxRank(), to.c_str(), out_dir.c_str());
  return 0;
}

}  // namespace petrel::cli
