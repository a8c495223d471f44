// A restricted unpickler for PyTorch state dicts. It implements the pickle virtual machine of
// Python's pickle protocol (opcodes as documented in CPython's Lib/pickletools.py, protocols 2-5)
// but only the opcodes and globals a state dict needs, and it never executes anything: globals
// are resolved against a fixed allow-list of names and REDUCE calls one of a few built-in
// constructors written here:
//
//   collections.OrderedDict          -> a dict
//   torch._utils._rebuild_tensor_v2  -> a tensor reference (storage, offset, size, stride)
//   torch._utils._rebuild_parameter  -> its tensor
//   torch.Size                       -> its tuple
//   torch.<Type>Storage              -> only as the type in a storage's persistent id
//
// Any other global (os.system, builtins.exec, ...), any other callable, and any other opcode
// (INST, OBJ, NEWOBJ, EXT*, text-protocol opcodes, sets, buffers) is refused with an error that
// names it. Every length is checked against the remaining input; objects live in an arena owned
// by the result (no recursive destruction, so deep or cyclic structures cannot crash it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace petrel::formats::pickle {

enum class Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kTuple, kList, kDict, kGlobal, kStorage, kTensor };

struct Value {
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  // kString / kBytes: the bytes; kGlobal: "module.name"; kStorage: the storage class name
  // ("FloatStorage", ...).
  std::string s;
  std::vector<Value*> items;                     // kTuple, kList
  std::vector<std::pair<Value*, Value*>> dict;   // kDict, in insertion order
  // kStorage: the persistent id's key (file name under data/), location and element count.
  std::string storage_key;
  int64_t storage_numel = 0;
  // kTensor: storage (a kStorage value), element offset, size and stride.
  Value* storage = nullptr;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

const char* KindName(Kind k);

class Objects {
 public:
  Value* root() const { return root_; }

 private:
  friend Result<Objects> Unpickle(std::string_view bytes, const std::string& name);
  std::vector<std::unique_ptr<Value>> arena_;
  Value* root_ = nullptr;
};

// Runs `bytes` (a whole pickle, e.g. data.pkl of a torch.save archive) through the restricted
// VM. `name` prefixes every error. Errors: kUnsupported for a refused opcode / global / callable
// (the message names it), kInvalidFormat for malformed or truncated input.
Result<Objects> Unpickle(std::string_view bytes, const std::string& name);

}  // namespace petrel::formats::pickle
