// Abstract syntax tree of a parsed Jinja template. Nodes are plain tagged structs (one for
// expressions, one for statements) walked by a switch in interpreter.cc: no virtual dispatch, and
// the whole tree is immutable after parsing, so one parsed template can be rendered from many
// threads at once.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/lexer.h"
#include "template/value.h"

namespace petrel::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using StmtList = std::vector<StmtPtr>;

enum class ExprKind {
  kLiteral,   // literal (constant folded strings, numbers, true/false/none)
  kName,      // name
  kGetattr,   // children[0].name
  kGetitem,   // children[0][children[1]]
  kSlice,     // children[0][a:b:c]; children[1..3] may be null
  kCall,      // children[0](children[1..], kwargs)
  kFilter,    // children[0] | name(children[1..], kwargs); children[0] null in {% filter %}
  kTest,      // children[0] is [not] name(children[1..])
  kBinary,    // children[0] op children[1]   (+ - * / // % ** ~)
  kUnary,     // op children[0]               (- + not)
  kCompare,   // children[0] ops[0] children[1] ops[1] children[2] ... (chained, like Python)
  kAnd,       // children[0] and children[1]
  kOr,        // children[0] or children[1]
  kCondExpr,  // children[1] if children[0] else children[2] (children[2] may be null)
  kList,      // [children...]
  kTuple,     // (children...)
  kDict,      // {children[0]: children[1], ...}
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  SourcePos pos;
  Value literal;                  // kLiteral
  std::string name;               // kName, kGetattr attribute, kFilter/kTest name, operator
  std::vector<std::string> ops;   // kCompare operators: == != < <= > >= in notin
  bool negated = false;           // kTest: `is not`
  std::vector<ExprPtr> children;  // operands (see ExprKind); entries may be null for slices
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // kCall/kFilter/kTest keyword args
};

enum class StmtKind {
  kData,         // text
  kPrint,        // {{ expr }}
  kIf,           // if/elif/else: conds[i] -> bodies[i]; bodies.size() == conds.size() + 1 with else
  kFor,          // for targets in expr [if cond]: body [else: else_body]
  kSet,          // set targets = expr  (or ns.attr = expr)
  kSetBlock,     // set target [| filter] %}body{% endset
  kMacro,        // macro name(params) body
  kCallBlock,    // call(params) expr %}body{% endcall (body becomes `caller`)
  kFilterBlock,  // filter f %}body{% endfilter
  kBreak,
  kContinue,
};

// A macro or call-block parameter with an optional default expression.
struct Param {
  std::string name;
  ExprPtr default_value;
};

struct Stmt {
  StmtKind kind = StmtKind::kData;
  SourcePos pos;
  std::string text;                  // kData text; kMacro name; kSet/kSetBlock namespace attr
  std::vector<std::string> targets;  // kFor/kSet/kSetBlock target names (tuple unpacking if >1)
  ExprPtr expr;                      // kPrint/kSet value, kFor iterable, kCallBlock call,
                                     // kSetBlock/kFilterBlock filter chain (kFilter with null base)
  ExprPtr cond;                      // kFor inline `if` filter
  std::vector<ExprPtr> conds;        // kIf conditions
  std::vector<StmtList> bodies;      // kIf branch bodies
  StmtList body;                     // kFor/kSetBlock/kMacro/kCallBlock/kFilterBlock body
  StmtList else_body;                // kFor else
  std::vector<Param> params;         // kMacro/kCallBlock parameters
  bool recursive = false;            // kFor `recursive`
};

// A parsed template: the statement list plus the source it came from (kept for messages).
struct Program {
  StmtList body;
};

}  // namespace petrel::jinja
