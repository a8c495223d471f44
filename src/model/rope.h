// RoPE frequency tables from the config, as transformers' ROPE_INIT_FUNCTIONS compute them
// (modeling_rope_utils.py: default, linear, llama3, yarn).
#pragma once

#include "formats/model_config.h"
#include "kernels/backend.h"

namespace petrel::model {

kernels::RopeTable BuildRopeTable(const formats::ModelConfig& config);

}  // namespace petrel::model
