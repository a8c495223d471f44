#include "model/lora/device_adapter.h"

#include <string_view>

namespace petrel::model::lora {

std::shared_ptr<const LoraAdapter> UploadAdapter(std::shared_ptr<const LoraAdapter> host,
                                                 kernels::Backend& be) {
  if (std::string_view(be.name()) == "cpu") return host;
  auto dev = std::make_shared<LoraAdapter>();
  dev->path = host->path;
  dev->format = host->format;
  dev->all_layers = host->all_layers;
  dev->mlx_num_layers = host->mlx_num_layers;
  dev->base_n_layers = host->base_n_layers;
  dev->base_model_name = host->base_model_name;
  dev->layers.resize(host->layers.size());
  for (size_t i = 0; i < host->layers.size(); ++i) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const LoraLinear& h = host->layers[i][t];
      if (!h.present()) continue;
      LoraLinear& d = dev->layers[i][t];
      d.a = be.UploadOwned(h.a);  // [rank, in]  f32
      d.b = be.UploadOwned(h.b);  // [out, rank] f32 (scale folded in by LoadAdapter)
      d.scale = h.scale;
      d.file_dtype = h.file_dtype;
    }
  }
  return dev;
}

}  // namespace petrel::model::lora
