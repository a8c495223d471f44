// LoRA adapters on a device backend: lora::LoadAdapter reads A/B into host memory; a backend whose
// ops need device memory (CUDA) gets a copy of the adapter with every A/B uploaded, freed when the
// copy dies (the engine's registry and the requests using it hold it by shared_ptr, so unloading
// frees the device memory once the last request using it has finished).
#pragma once

#include <memory>

#include "kernels/backend.h"
#include "model/lora/adapter.h"

namespace petrel::model::lora {

// The same adapter with A/B in `be`'s memory (Backend::UploadOwned). Safe on any thread. On a
// host-memory backend ("cpu") the adapter is returned unchanged, without a copy.
std::shared_ptr<const LoraAdapter> UploadAdapter(std::shared_ptr<const LoraAdapter> host,
                                                 kernels::Backend& be);

}  // namespace petrel::model::lora
