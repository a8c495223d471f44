#include "core/dtype.h"

namespace petrel {

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kI8: return 1;
    case DType::kU8: return 1;
    case DType::kI16: return 2;
    case DType::kI32: return 4;
    case DType::kU32: return 4;
    case DType::kI64: return 8;
    case DType::kBool: return 1;
    case DType::kQ8_0: return 34;
    case DType::kQ4_0: return 18;
    case DType::kQ4_1: return 20;
    case DType::kQ8_A: return 36;
  }
  return 0;
}

int64_t DTypeBlockSize(DType t) {
  switch (t) {
    case DType::kQ8_0: case DType::kQ4_0: case DType::kQ4_1: case DType::kQ8_A: return 32;
    case DType::kF32: case DType::kF16: case DType::kBF16: case DType::kI8: case DType::kU8:
    case DType::kI16: case DType::kI32: case DType::kU32: case DType::kI64: case DType::kBool:
      return 1;
  }
  return 1;
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kI16: return "I16";
    case DType::kI32: return "I32";
    case DType::kU32: return "U32";
    case DType::kI64: return "I64";
    case DType::kBool: return "BOOL";
    case DType::kQ8_0: return "Q8_0";
    case DType::kQ4_0: return "Q4_0";
    case DType::kQ4_1: return "Q4_1";
    case DType::kQ8_A: return "Q8_A";
  }
  return "?";
}

Result<DType> ParseSafetensorsDType(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "I8") return DType::kI8;
  if (name == "U8") return DType::kU8;
  if (name == "I16") return DType::kI16;
  if (name == "I32") return DType::kI32;
  if (name == "U32") return DType::kU32;
  if (name == "I64") return DType::kI64;
  if (name == "BOOL") return DType::kBool;
  return Unsupported("dtype \"", name, "\" is not supported (F32, F16, BF16, I8, U8, I16, I32, U32, I64, BOOL are)");
}

Result<DType> ParseFloatDType(std::string_view name) {
  if (name == "f32" || name == "float32" || name == "fp32") return DType::kF32;
  if (name == "f16" || name == "float16" || name == "fp16" || name == "half") return DType::kF16;
  if (name == "bf16" || name == "bfloat16") return DType::kBF16;
  return InvalidArgument("unknown float dtype \"", name, "\" (expected f32, f16 or bf16)");
}

}  // namespace petrel
