// config.json / generation_config.json (Hugging Face transformers 4.x and 5.x keys) -> structs.
#pragma once

#include <string>

#include "core/json_util.h"
#include "formats/model_config.h"

namespace petrel::formats {

// Parses a config.json object. Unknown architectures and unsupported options (hidden_act other
// than silu, partial rotary, rope types we do not implement, ...) are kUnsupported errors that
// name the key and value.
Result<ModelConfig> ParseHfConfig(const Json& config, const std::string& what = "config.json");
// Reads MODEL_DIR/config.json.
Result<ModelConfig> LoadHfConfig(const std::string& model_dir);

Result<GenerationConfig> ParseGenerationConfig(const Json& j, const std::string& what);
// Reads MODEL_DIR/generation_config.json; a missing file gives a default config (present=false).
Result<GenerationConfig> LoadGenerationConfig(const std::string& model_dir);

}  // namespace petrel::formats
