// Post-processors, reduced to what single-sequence encoding needs: a flat template of special
// ids around the sequence. The item list starts as [sequence]; each processor wraps it (Bert:
// [CLS] ... [SEP]; TemplateProcessing: its "single" template with "$A" replaced by the current
// list), so a Sequence of processors composes naturally. Type ids and offsets, which petrel does
// not expose, are ignored.
#include "tokenizer/post_processor.h"

#include "tokenizer/json_get.h"

namespace petrel::tokenizer {

namespace {

constexpr int32_t kSequence = -1;

Status CheckId(int64_t id, int32_t id_limit, const std::string& path) {
  if (id < 0 || id >= id_limit) {
    return OutOfRange("tokenizer.json: ", path, ": special token id ", id, " is out of range [0, ",
                      id_limit, ")");
  }
  return OkStatus();
}

// Bert/Roberta "cls"/"sep" fields: ["[CLS]", 101].
Result<int32_t> TokenPairId(const Json& j, std::string_view key, const std::string& path,
                            int32_t id_limit) {
  const Json* v = Find(j, key);
  if (v == nullptr || !v->is_array() || v->size() != 2 || !(*v)[1].is_number_integer()) {
    return FormatError(path, "field \"", key, "\" must be [token, id]");
  }
  const int64_t id = (*v)[1].get<int64_t>();
  PETREL_TRY(CheckId(id, id_limit, path + "." + std::string(key)));
  return static_cast<int32_t>(id);
}

}  // namespace

Result<std::unique_ptr<PostProcessor>> PostProcessor::FromJson(const Json& j,
                                                               const std::string& path,
                                                               int32_t id_limit) {
  auto p = std::unique_ptr<PostProcessor>(new PostProcessor());
  p->items_ = {kSequence};
  PETREL_TRY(Parse(j, path, id_limit, &p->items_, &p->has_template_));
  return p;
}

// Each processor wraps the current item list (starting from [sequence]); Sequence applies its
// children in order, as `tokenizers` does.
Status PostProcessor::Parse(const Json& j, const std::string& path, int32_t id_limit,
                            std::vector<int32_t>* items, bool* has_template) {
  PETREL_TRY(std::string type, GetType(j, path));
  if (type == "Sequence") {
    const Json* list = Find(j, "processors");
    if (list == nullptr || !list->is_array()) {
      return FormatError(path, "Sequence needs an array field \"processors\"");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      PETREL_TRY(Parse((*list)[i], path + ".processors[" + std::to_string(i) + "]", id_limit, items,
                       has_template));
    }
    return OkStatus();
  }
  if (type == "ByteLevel") return OkStatus();  // only trims offsets
  std::vector<int32_t> out;
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    PETREL_TRY(int32_t cls, TokenPairId(j, "cls", path, id_limit));
    PETREL_TRY(int32_t sep, TokenPairId(j, "sep", path, id_limit));
    out.push_back(cls);
    out.insert(out.end(), items->begin(), items->end());
    out.push_back(sep);
  } else if (type == "TemplateProcessing") {
    const Json* single = Find(j, "single");
    const Json* specials = Find(j, "special_tokens");
    if (single == nullptr || !single->is_array()) {
      return FormatError(path, "TemplateProcessing needs an array field \"single\"");
    }
    for (size_t i = 0; i < single->size(); ++i) {
      const Json& item = (*single)[i];
      const std::string ipath = path + ".single[" + std::to_string(i) + "]";
      if (const Json* seq = Find(item, "Sequence")) {
        (void)seq;
        out.insert(out.end(), items->begin(), items->end());
      } else if (const Json* sp = Find(item, "SpecialToken")) {
        PETREL_TRY(std::string name, GetString(*sp, "id", ipath + ".SpecialToken"));
        const Json* def = specials ? Find(*specials, name) : nullptr;
        if (def == nullptr) {
          return FormatError(ipath, "special token \"", name,
                             "\" is not defined in \"special_tokens\"");
        }
        const Json* ids = Find(*def, "ids");
        if (ids == nullptr || !ids->is_array()) {
          return FormatError(path + ".special_tokens." + name, "missing array field \"ids\"");
        }
        for (const Json& id : *ids) {
          if (!id.is_number_integer()) {
            return FormatError(path + ".special_tokens." + name, "ids must be integers");
          }
          PETREL_TRY(CheckId(id.get<int64_t>(), id_limit, path + ".special_tokens." + name));
          out.push_back(static_cast<int32_t>(id.get<int64_t>()));
        }
      } else {
        return FormatError(ipath, "must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
  } else {
    return Unsupported("tokenizer.json: ", path, ": post-processor type \"", type,
                       "\" is not supported (supported: TemplateProcessing, ByteLevel, "
                       "BertProcessing, RobertaProcessing, Sequence)");
  }
  *items = std::move(out);
  *has_template = true;
  return OkStatus();
}

// Expands the template around `ids` (one allocation for the new vector).
void PostProcessor::Apply(std::vector<int32_t>* ids) const {
  if (!has_template_) return;
  std::vector<int32_t> out;
  out.reserve(ids->size() + items_.size());
  for (int32_t item : items_) {
    if (item == kSequence) {
      out.insert(out.end(), ids->begin(), ids->end());
    } else {
      out.push_back(item);
    }
  }
  ids->swap(out);
}

size_t PostProcessor::added_count() const {
  size_t n = 0;
  for (int32_t item : items_) n += item != kSequence;
  return n;
}

}  // namespace petrel::tokenizer
