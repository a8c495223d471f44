// Recursive-descent parser for the Jinja2 subset used by chat templates. Operator precedence and
// the shape of each statement follow Jinja2's parser.py (e.g. `~` binds tighter than `+`, `**` is
// left-associative, filters bind to the unary expression before them).
#pragma once

#include <string_view>

#include "template/ast.h"

namespace petrel::jinja {

// Parses a template. Throws TemplateException with the line/column of the offending token for
// syntax errors, unknown tags, unclosed blocks and nesting deeper than the parser's limit (so a
// hostile template cannot overflow the stack).
Program ParseTemplate(std::string_view source);

}  // namespace petrel::jinja
