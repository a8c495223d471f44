// The restricted pickle VM (see pickle.h). Opcode numbering and semantics follow the pickle
// protocol as documented in CPython's Lib/pickletools.py; only the subset below is implemented.
#include "formats/pickle.h"

#include <cstring>
#include <unordered_map>

namespace petrel::formats::pickle {

namespace {

// Largest count of objects the VM creates: far more than any state dict needs, small enough
// that a hostile stream cannot exhaust memory through object headers alone.
constexpr size_t kMaxObjects = size_t{1} << 26;

const char* OpcodeName(uint8_t op) {
  switch (op) {
    case 'F': return "FLOAT (text)";
    case 'I': return "INT (text)";
    case 'L': return "LONG (text)";
    case 'P': return "PERSID (text)";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE (text)";
    case 'g': return "GET (text)";
    case 'p': return "PUT (text)";
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x8b: return "LONG4";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
  }
  return "unknown";
}

// Allowed globals (module, name) and what REDUCE does with them.
enum class Callable { kNone, kOrderedDict, kRebuildTensorV2, kRebuildParameter, kSize, kStorageType };

Callable Classify(std::string_view module, std::string_view name) {
  if (module == "collections" && name == "OrderedDict") return Callable::kOrderedDict;
  if (module == "torch._utils" && name == "_rebuild_tensor_v2") return Callable::kRebuildTensorV2;
  if (module == "torch._utils" &&
      (name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state")) {
    return Callable::kRebuildParameter;
  }
  if (module == "torch" && name == "Size") return Callable::kSize;
  if (module == "torch" && name.size() > 7 && name.ends_with("Storage")) {
    static const char* const kStorages[] = {"FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage",
                                            "LongStorage",  "IntStorage",  "ShortStorage",    "CharStorage",
                                            "ByteStorage",  "BoolStorage"};
    for (const char* s : kStorages)
      if (name == s) return Callable::kStorageType;
  }
  return Callable::kNone;
}

class Machine {
 public:
  Machine(std::string_view in, const std::string& name, std::vector<std::unique_ptr<Value>>* arena)
      : in_(in), name_(name), arena_(arena) {}

  Result<Value*> Run();

 private:
  template <typename... Args>
  Error Bad(Args&&... args) const {
    return InvalidFormat(name_, ": pickle offset ", op_pos_, ": ", std::forward<Args>(args)...);
  }
  template <typename... Args>
  Error Refuse(Args&&... args) const {
    return Unsupported(name_, ": pickle offset ", op_pos_, ": ", std::forward<Args>(args)...);
  }

  Result<const char*> Take(uint64_t n) {
    if (n > in_.size() - pos_) return Bad("truncated (needs ", n, " more bytes, ", in_.size() - pos_, " left)");
    const char* p = in_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  template <typename T>
  Result<T> Le() {
    PETREL_TRY(const char* p, Take(sizeof(T)));
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
  Result<Value*> New(Kind k) {
    if (arena_->size() >= kMaxObjects) return Bad("too many objects");
    arena_->push_back(std::make_unique<Value>());
    arena_->back()->kind = k;
    return arena_->back().get();
  }
  Status Push(Value* v) {
    stack_.push_back(v);
    return OkStatus();
  }
  Result<Value*> Pop() {
    if (stack_.size() <= Floor()) return Bad("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Result<Value*> Top() {
    if (stack_.size() <= Floor()) return Bad("stack underflow");
    return stack_.back();
  }
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Items since the last MARK (removed from the stack, mark popped).
  Result<std::vector<Value*>> PopMark() {
    if (marks_.empty()) return Bad("no MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Status Memo(uint64_t idx) {
    PETREL_TRY(Value* v, Top());
    memo_[idx] = v;
    return OkStatus();
  }
  Status Get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) return Bad("memo index ", idx, " was never stored");
    return Push(it->second);
  }
  Status Text(Kind k, uint64_t n) {
    PETREL_TRY(const char* p, Take(n));
    PETREL_TRY(Value* v, New(k));
    v->s.assign(p, static_cast<size_t>(n));
    return Push(v);
  }
  Status Int(int64_t i) {
    PETREL_TRY(Value* v, New(Kind::kInt));
    v->i = i;
    return Push(v);
  }
  Status Tuple(std::vector<Value*> items) {
    PETREL_TRY(Value* v, New(Kind::kTuple));
    v->items = std::move(items);
    return Push(v);
  }
  Status Global(std::string module, std::string name) {
    if (Classify(module, name) == Callable::kNone) {
      return Refuse("global `", module, ".", name,
                    "` is not allowed (petrel's unpickler only builds state dicts: "
                    "collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage)");
    }
    PETREL_TRY(Value* v, New(Kind::kGlobal));
    v->s = module + "." + name;
    return Push(v);
  }
  Status SetItems(Value* dict, const std::vector<Value*>& kv) {
    if (dict->kind != Kind::kDict) return Bad("SETITEM(S) on a ", KindName(dict->kind));
    if (kv.size() % 2) return Bad("odd number of items for SETITEMS");
    for (size_t i = 0; i < kv.size(); i += 2) dict->dict.emplace_back(kv[i], kv[i + 1]);
    return OkStatus();
  }
  Status Reduce();
  Status PersistentLoad();

  std::string_view in_;
  const std::string& name_;
  std::vector<std::unique_ptr<Value>>* arena_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
};

Result<int64_t> AsInt(const Value* v, const char* what) {
  if (v->kind != Kind::kInt) return InvalidFormat(what, " must be an int, not ", KindName(v->kind));
  return v->i;
}

Result<std::vector<int64_t>> AsInts(const Value* v, const char* what) {
  if (v->kind != Kind::kTuple && v->kind != Kind::kList) {
    return InvalidFormat(what, " must be a tuple of ints, not ", KindName(v->kind));
  }
  std::vector<int64_t> out;
  for (const Value* e : v->items) {
    PETREL_TRY(int64_t i, AsInt(e, what));
    out.push_back(i);
  }
  return out;
}

Status Machine::Reduce() {
  PETREL_TRY(Value* args, Pop());
  PETREL_TRY(Value* fn, Pop());
  if (fn->kind != Kind::kGlobal) return Refuse("REDUCE on a ", KindName(fn->kind), " (only allowed globals are callable)");
  if (args->kind != Kind::kTuple) return Bad("REDUCE arguments are a ", KindName(args->kind), ", not a tuple");
  const std::vector<Value*>& a = args->items;
  const size_t dot = fn->s.rfind('.');
  const Callable c = Classify(fn->s.substr(0, dot), fn->s.substr(dot + 1));
  switch (c) {
    case Callable::kOrderedDict: {
      if (!a.empty()) return Refuse("collections.OrderedDict called with arguments");
      PETREL_TRY(Value* d, New(Kind::kDict));
      return Push(d);
    }
    case Callable::kRebuildTensorV2: {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 6 || a.size() > 7) return Bad("_rebuild_tensor_v2 takes 6 or 7 arguments, got ", a.size());
      if (a[0]->kind != Kind::kStorage) return Bad("_rebuild_tensor_v2: argument 1 is a ", KindName(a[0]->kind), ", not a storage");
      PETREL_TRY(Value* t, New(Kind::kTensor));
      t->storage = a[0];
      auto fail = [&](const Error& e) { return Bad("_rebuild_tensor_v2: ", e.message); };
      auto off = AsInt(a[1], "storage_offset");
      if (!off.ok()) return fail(off.error());
      auto size = AsInts(a[2], "size");
      if (!size.ok()) return fail(size.error());
      auto stride = AsInts(a[3], "stride");
      if (!stride.ok()) return fail(stride.error());
      t->offset = *off;
      t->size = std::move(size).value();
      t->stride = std::move(stride).value();
      if (t->size.size() != t->stride.size()) {
        return Bad("_rebuild_tensor_v2: size has ", t->size.size(), " dims but stride ", t->stride.size());
      }
      return Push(t);
    }
    case Callable::kRebuildParameter: {
      if (a.empty() || a[0]->kind != Kind::kTensor) return Bad("_rebuild_parameter needs a tensor");
      return Push(a[0]);
    }
    case Callable::kSize: {
      if (a.size() != 1) return Bad("torch.Size takes one argument");
      return Push(a[0]);
    }
    case Callable::kStorageType:
    case Callable::kNone:
      break;
  }
  return Refuse("calling `", fn->s, "` is not allowed");
}

// BINPERSID with torch's storage id: ('storage', torch.<Type>Storage, key, location, numel).
Status Machine::PersistentLoad() {
  PETREL_TRY(Value* pid, Pop());
  if (pid->kind != Kind::kTuple || pid->items.size() != 5) {
    return Refuse("persistent id that is not torch's ('storage', type, key, location, numel)");
  }
  const auto& p = pid->items;
  if (p[0]->kind != Kind::kString || p[0]->s != "storage") return Refuse("persistent id of kind other than 'storage'");
  if (p[1]->kind != Kind::kGlobal) return Bad("storage type is a ", KindName(p[1]->kind));
  const size_t dot = p[1]->s.rfind('.');
  if (Classify(p[1]->s.substr(0, dot), p[1]->s.substr(dot + 1)) != Callable::kStorageType) {
    return Refuse("storage type `", p[1]->s, "`");
  }
  if (p[2]->kind != Kind::kString) return Bad("storage key is a ", KindName(p[2]->kind));
  if (p[4]->kind != Kind::kInt || p[4]->i < 0) return Bad("storage element count must be a non-negative int");
  PETREL_TRY(Value* s, New(Kind::kStorage));
  s->s = p[1]->s.substr(dot + 1);
  s->storage_key = p[2]->s;
  s->storage_numel = p[4]->i;
  return Push(s);
}

Result<Value*> Machine::Run() {
  while (true) {
    op_pos_ = pos_;
    PETREL_TRY(const char* opp, Take(1));
    const auto op = static_cast<uint8_t>(*opp);
    switch (op) {
      case 0x80: {  // PROTO
        PETREL_TRY(uint8_t v, Le<uint8_t>());
        if (v < 2 || v > 5) return Refuse("pickle protocol ", int(v), " (2 to 5 are supported)");
        break;
      }
      case 0x95: {  // FRAME: a length hint; the frame's opcodes follow inline
        PETREL_TRY(uint64_t n, Le<uint64_t>());
        if (n > in_.size() - pos_) return Bad("frame of ", n, " bytes exceeds the input");
        break;
      }
      case '.': {  // STOP
        PETREL_TRY(Value* v, Pop());
        return v;
      }
      case '(': marks_.push_back(stack_.size()); break;
      case '0': PETREL_TRY(Pop()); break;  // POP
      case '1': PETREL_TRY(PopMark()); break;  // POP_MARK
      case '2': {  // DUP
        PETREL_TRY(Value* v, Top());
        PETREL_TRY(Push(v));
        break;
      }
      case 'N': { PETREL_TRY(Value* v, New(Kind::kNone)); PETREL_TRY(Push(v)); break; }
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        PETREL_TRY(Value* v, New(Kind::kBool));
        v->b = op == 0x88;
        PETREL_TRY(Push(v));
        break;
      }
      case 'J': { PETREL_TRY(int32_t v, Le<int32_t>()); PETREL_TRY(Int(v)); break; }
      case 'K': { PETREL_TRY(uint8_t v, Le<uint8_t>()); PETREL_TRY(Int(v)); break; }
      case 'M': { PETREL_TRY(uint16_t v, Le<uint16_t>()); PETREL_TRY(Int(v)); break; }
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        PETREL_TRY(uint8_t n, Le<uint8_t>());
        if (n > 8) return Refuse("integer of ", int(n), " bytes (at most 8)");
        PETREL_TRY(const char* p, Take(n));
        uint64_t u = 0;
        for (int k = n - 1; k >= 0; --k) u = (u << 8) | static_cast<uint8_t>(p[k]);
        if (n > 0 && n < 8 && (static_cast<uint8_t>(p[n - 1]) & 0x80)) u |= ~uint64_t{0} << (8 * n);
        PETREL_TRY(Int(static_cast<int64_t>(u)));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        PETREL_TRY(const char* p, Take(8));
        uint64_t u = 0;
        for (int k = 0; k < 8; ++k) u = (u << 8) | static_cast<uint8_t>(p[k]);
        PETREL_TRY(Value* v, New(Kind::kFloat));
        std::memcpy(&v->f, &u, 8);
        PETREL_TRY(Push(v));
        break;
      }
      case 0x8c: { PETREL_TRY(uint8_t n, Le<uint8_t>()); PETREL_TRY(Text(Kind::kString, n)); break; }
      case 'X': { PETREL_TRY(uint32_t n, Le<uint32_t>()); PETREL_TRY(Text(Kind::kString, n)); break; }
      case 0x8d: { PETREL_TRY(uint64_t n, Le<uint64_t>()); PETREL_TRY(Text(Kind::kString, n)); break; }
      case 'C': { PETREL_TRY(uint8_t n, Le<uint8_t>()); PETREL_TRY(Text(Kind::kBytes, n)); break; }
      case 'B': { PETREL_TRY(uint32_t n, Le<uint32_t>()); PETREL_TRY(Text(Kind::kBytes, n)); break; }
      case 0x8e: { PETREL_TRY(uint64_t n, Le<uint64_t>()); PETREL_TRY(Text(Kind::kBytes, n)); break; }
      case ')': PETREL_TRY(Tuple({})); break;
      case 't': { PETREL_TRY(auto items, PopMark()); PETREL_TRY(Tuple(std::move(items))); break; }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84u;
        if (stack_.size() < Floor() + n) return Bad("stack underflow");
        std::vector<Value*> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        PETREL_TRY(Tuple(std::move(items)));
        break;
      }
      case ']': { PETREL_TRY(Value* v, New(Kind::kList)); PETREL_TRY(Push(v)); break; }
      case 'l': {
        PETREL_TRY(auto items, PopMark());
        PETREL_TRY(Value* v, New(Kind::kList));
        v->items = std::move(items);
        PETREL_TRY(Push(v));
        break;
      }
      case 'a': {  // APPEND
        PETREL_TRY(Value* x, Pop());
        PETREL_TRY(Value* l, Top());
        if (l->kind != Kind::kList) return Bad("APPEND to a ", KindName(l->kind));
        l->items.push_back(x);
        break;
      }
      case 'e': {  // APPENDS
        PETREL_TRY(auto items, PopMark());
        PETREL_TRY(Value* l, Top());
        if (l->kind != Kind::kList) return Bad("APPENDS to a ", KindName(l->kind));
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      case '}': { PETREL_TRY(Value* v, New(Kind::kDict)); PETREL_TRY(Push(v)); break; }
      case 'd': {
        PETREL_TRY(auto items, PopMark());
        PETREL_TRY(Value* v, New(Kind::kDict));
        PETREL_TRY(SetItems(v, items));
        PETREL_TRY(Push(v));
        break;
      }
      case 's': {  // SETITEM
        PETREL_TRY(Value* val, Pop());
        PETREL_TRY(Value* key, Pop());
        PETREL_TRY(Value* d, Top());
        PETREL_TRY(SetItems(d, {key, val}));
        break;
      }
      case 'u': {  // SETITEMS
        PETREL_TRY(auto items, PopMark());
        PETREL_TRY(Value* d, Top());
        PETREL_TRY(SetItems(d, items));
        break;
      }
      case 'q': { PETREL_TRY(uint8_t i, Le<uint8_t>()); PETREL_TRY(Memo(i)); break; }
      case 'r': { PETREL_TRY(uint32_t i, Le<uint32_t>()); PETREL_TRY(Memo(i)); break; }
      case 0x94: PETREL_TRY(Memo(memo_.size())); break;  // MEMOIZE
      case 'h': { PETREL_TRY(uint8_t i, Le<uint8_t>()); PETREL_TRY(Get(i)); break; }
      case 'j': { PETREL_TRY(uint32_t i, Le<uint32_t>()); PETREL_TRY(Get(i)); break; }
      case 'c': {  // GLOBAL "module\nname\n"
        const size_t nl1 = in_.find('\n', pos_);
        const size_t nl2 = nl1 == std::string_view::npos ? nl1 : in_.find('\n', nl1 + 1);
        if (nl2 == std::string_view::npos) return Bad("unterminated GLOBAL");
        std::string module(in_.substr(pos_, nl1 - pos_)), name(in_.substr(nl1 + 1, nl2 - nl1 - 1));
        pos_ = nl2 + 1;
        PETREL_TRY(Global(std::move(module), std::move(name)));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PETREL_TRY(Value* name, Pop());
        PETREL_TRY(Value* module, Pop());
        if (name->kind != Kind::kString || module->kind != Kind::kString) return Bad("STACK_GLOBAL needs two strings");
        PETREL_TRY(Global(module->s, name->s));
        break;
      }
      case 'R': PETREL_TRY(Reduce()); break;
      case 'Q': PETREL_TRY(PersistentLoad()); break;
      case 'b': {  // BUILD: only the attribute state of an OrderedDict (state_dict's _metadata)
        PETREL_TRY(Value* state, Pop());
        PETREL_TRY(Value* obj, Top());
        if (obj->kind != Kind::kDict && obj->kind != Kind::kTensor) {
          return Refuse("BUILD on a ", KindName(obj->kind), " (only state dicts and tensors)");
        }
        (void)state;  // attributes are not needed (and never applied: nothing runs)
        break;
      }
      default:
        return Refuse("opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15], " (",
                      OpcodeName(op), ") is not allowed");
    }
  }
}

}  // namespace

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kBytes: return "bytes";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "global";
    case Kind::kStorage: return "storage";
    case Kind::kTensor: return "tensor";
  }
  return "?";
}

Result<Objects> Unpickle(std::string_view bytes, const std::string& name) {
  Objects out;
  Machine m(bytes, name, &out.arena_);
  PETREL_TRY(out.root_, m.Run());
  return out;
}

}  // namespace petrel::formats::pickle
