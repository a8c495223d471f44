// Jinja2 parser (see parser.h). Each Parse* method mirrors the Jinja2 function of the same role;
// the grammar, from loosest to tightest binding:
//   tuple     := expr (',' expr)*
//   expr      := or ('if' or ('else' expr)?)?
//   or        := and ('or' and)*          and := not ('and' not)*
//   not       := 'not' not | compare      compare := math1 ((== != < <= > >= in 'not in') math1)*
//   math1     := concat (('+'|'-') concat)*   concat := math2 ('~' math2)*
//   math2     := pow (('*'|'/'|'//'|'%') pow)*  pow := unary ('**' unary)*
//   unary     := ('-'|'+') unary | primary postfix* ; then filters/tests: ('|' filter | 'is' test)*
#include "template/parser.h"

#include <set>

namespace petrel::jinja {

namespace {

// Deepest expression/statement nesting accepted; deeper input is rejected instead of recursing.
constexpr int kMaxParseDepth = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Program Run() {
    Program prog;
    std::string end = ParseBody(prog.body, {});
    (void)end;
    return prog;
  }

 private:
  // --- token helpers ---------------------------------------------------------------------------
  const Token& Cur() const { return toks_[i_]; }
  const Token& Peek(size_t n = 1) const { return toks_[std::min(i_ + n, toks_.size() - 1)]; }
  const Token& Next() {
    const Token& t = toks_[i_];
    if (i_ + 1 < toks_.size()) ++i_;
    return t;
  }
  bool IsOp(const char* op) const { return Cur().kind == TokenKind::kOperator && Cur().text == op; }
  bool IsName(const char* n) const { return Cur().kind == TokenKind::kName && Cur().text == n; }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(const char* n) {
    if (!IsName(n)) return false;
    Next();
    return true;
  }
  [[noreturn]] void Fail(const std::string& msg, SourcePos pos) const {
    throw TemplateException{msg, pos.line, pos.column, TemplateException::Kind::kSyntax};
  }
  [[noreturn]] void Fail(const std::string& msg) const { Fail(msg, Cur().pos); }
  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kEof:
        return "end of template";
      case TokenKind::kBlockEnd:
        return "end of statement block";
      case TokenKind::kVarEnd:
        return "end of print statement";
      case TokenKind::kData:
        return "template data";
      case TokenKind::kString:
        return "string";
      default:
        return "'" + t.text + "'";
    }
  }
  void ExpectOp(const char* op) {
    if (!SkipOp(op)) Fail(std::string("expected '") + op + "', got " + Describe(Cur()));
  }
  std::string ExpectName() {
    if (Cur().kind != TokenKind::kName) Fail("expected a name, got " + Describe(Cur()));
    return Next().text;
  }
  void ExpectBlockEnd() {
    if (Cur().kind != TokenKind::kBlockEnd)
      Fail("expected end of statement block, got " + Describe(Cur()));
    Next();
  }

  // RAII guard for the nesting limit.
  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* parser) : p(parser) {
      if (++p->depth_ > kMaxParseDepth) p->Fail("template nesting too deep");
    }
    ~DepthGuard() { --p->depth_; }
  };

  static ExprPtr MakeExpr(ExprKind kind, SourcePos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }
  static StmtPtr MakeStmt(StmtKind kind, SourcePos pos) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = pos;
    return s;
  }

  // --- statements ------------------------------------------------------------------------------

  // Parses statements until a block tag whose name is in `ends` (consumed up to and including the
  // name) and returns that name; "" at end of template (an error if `ends` is non-empty).
  std::string ParseBody(StmtList& out, const std::set<std::string>& ends) {
    DepthGuard guard(this);
    const SourcePos start = Cur().pos;
    while (true) {
      const Token& t = Cur();
      switch (t.kind) {
        case TokenKind::kEof:
          if (!ends.empty()) {
            std::string names;
            for (const auto& e : ends) names += (names.empty() ? "'" : " or '") + e + "'";
            Fail("unexpected end of template; expected " + names +
                 " to close the block opened at line " + std::to_string(start.line));
          }
          return "";
        case TokenKind::kData: {
          auto s = MakeStmt(StmtKind::kData, t.pos);
          s->text = t.text;
          out.push_back(std::move(s));
          Next();
          break;
        }
        case TokenKind::kVarBegin: {
          auto s = MakeStmt(StmtKind::kPrint, t.pos);
          Next();
          s->expr = ParseTuple(true);
          if (Cur().kind != TokenKind::kVarEnd) Fail("expected '}}', got " + Describe(Cur()));
          Next();
          out.push_back(std::move(s));
          break;
        }
        case TokenKind::kBlockBegin: {
          Next();
          if (Cur().kind != TokenKind::kName)
            Fail("expected a statement name, got " + Describe(Cur()));
          const std::string name = Cur().text;
          if (ends.count(name)) {
            Next();
            return name;
          }
          out.push_back(ParseStatement());
          break;
        }
        default:
          Fail("unexpected " + Describe(t));
      }
    }
  }

  // Dispatches on the tag name after {%. Only tags that chat templates use are supported;
  // include/extends/import/block fail with a clear error instead of rendering wrongly.
  StmtPtr ParseStatement() {
    const Token& t = Cur();
    const SourcePos pos = t.pos;
    const std::string name = t.text;
    Next();
    if (name == "if") return ParseIf(pos);
    if (name == "for") return ParseFor(pos);
    if (name == "set") return ParseSet(pos);
    if (name == "macro") return ParseMacro(pos);
    if (name == "call") return ParseCallBlock(pos);
    if (name == "filter") {
      auto s = MakeStmt(StmtKind::kFilterBlock, pos);
      s->expr = ParseFilterChain(nullptr);
      ExpectBlockEnd();
      ParseBody(s->body, {"endfilter"});
      ExpectBlockEnd();
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) Fail("'" + name + "' outside of a loop", pos);
      ExpectBlockEnd();
      return MakeStmt(name == "break" ? StmtKind::kBreak : StmtKind::kContinue, pos);
    }
    if (name == "generation") {
      // transformers' AssistantTracker extension: {% generation %}...{% endgeneration %} only
      // marks assistant tokens; for rendering it is a plain block (an `if true`).
      auto s = MakeStmt(StmtKind::kIf, pos);
      auto cond = MakeExpr(ExprKind::kLiteral, pos);
      cond->literal = Value(true);
      s->conds.push_back(std::move(cond));
      ExpectBlockEnd();
      s->bodies.emplace_back();
      ParseBody(s->bodies.back(), {"endgeneration"});
      ExpectBlockEnd();
      return s;
    }
    Fail("encountered unknown or unsupported tag '" + name + "'", pos);
  }

  // if / elif / else / endif: one condition per branch, an optional final else body.
  StmtPtr ParseIf(SourcePos pos) {
    auto s = MakeStmt(StmtKind::kIf, pos);
    s->conds.push_back(ParseTuple(true));
    ExpectBlockEnd();
    while (true) {
      s->bodies.emplace_back();
      const std::string end = ParseBody(s->bodies.back(), {"elif", "else", "endif"});
      if (end == "elif") {
        s->conds.push_back(ParseTuple(true));
        ExpectBlockEnd();
      } else if (end == "else") {
        ExpectBlockEnd();
        s->bodies.emplace_back();
        ParseBody(s->bodies.back(), {"endif"});
        ExpectBlockEnd();
        return s;
      } else {
        ExpectBlockEnd();
        return s;
      }
    }
  }

  // Names for `for a, b in` / `set a, b =`, optionally parenthesized.
  std::vector<std::string> ParseTargets() {
    std::vector<std::string> names;
    const bool paren = SkipOp("(");
    do {
      if (paren && IsOp(")")) break;
      names.push_back(ExpectName());
    } while (SkipOp(","));
    if (paren) ExpectOp(")");
    return names;
  }

  // for TARGETS in EXPR [if COND] [recursive] ... [else ...] endfor. The iterable is parsed
  // without conditional expressions so that `if` starts the loop filter, as in Jinja2.
  StmtPtr ParseFor(SourcePos pos) {
    auto s = MakeStmt(StmtKind::kFor, pos);
    s->targets = ParseTargets();
    if (!SkipName("in")) Fail("expected 'in' in for loop, got " + Describe(Cur()));
    s->expr = ParseTuple(false);
    if (SkipName("if")) s->cond = ParseExpression(true);
    if (SkipName("recursive")) s->recursive = true;
    ExpectBlockEnd();
    ++loop_depth_;
    const std::string end = ParseBody(s->body, {"else", "endfor"});
    --loop_depth_;
    ExpectBlockEnd();
    if (end == "else") {
      ParseBody(s->else_body, {"endfor"});
      ExpectBlockEnd();
    }
    return s;
  }

  // set NAME = EXPR, set A, B = EXPR, set NS.ATTR = EXPR, or block set NAME [| filters].
  StmtPtr ParseSet(SourcePos pos) {
    // `set ns.attr = value` assigns a namespace attribute.
    if (Cur().kind == TokenKind::kName && Peek().kind == TokenKind::kOperator &&
        Peek().text == ".") {
      auto s = MakeStmt(StmtKind::kSet, pos);
      s->targets.push_back(Next().text);
      Next();  // '.'
      s->text = ExpectName();
      ExpectOp("=");
      s->expr = ParseTuple(true);
      ExpectBlockEnd();
      return s;
    }
    std::vector<std::string> targets = ParseTargets();
    if (SkipOp("=")) {
      auto s = MakeStmt(StmtKind::kSet, pos);
      s->targets = std::move(targets);
      s->expr = ParseTuple(true);
      ExpectBlockEnd();
      return s;
    }
    if (targets.size() != 1) Fail("block set needs a single target", pos);
    auto s = MakeStmt(StmtKind::kSetBlock, pos);
    s->targets = std::move(targets);
    if (IsOp("|")) s->expr = ParseFilterChain(nullptr);
    ExpectBlockEnd();
    ParseBody(s->body, {"endset"});
    ExpectBlockEnd();
    return s;
  }

  void ParseParams(std::vector<Param>& params) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!params.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      Param p;
      p.name = ExpectName();
      if (SkipOp("=")) p.default_value = ParseExpression(true);
      params.push_back(std::move(p));
    }
    ExpectOp(")");
  }

  // macro NAME(PARAMS) ... endmacro; break/continue inside refer to loops in the body only.
  StmtPtr ParseMacro(SourcePos pos) {
    auto s = MakeStmt(StmtKind::kMacro, pos);
    s->text = ExpectName();
    ParseParams(s->params);
    ExpectBlockEnd();
    const int saved = loop_depth_;
    loop_depth_ = 0;
    ParseBody(s->body, {"endmacro"});
    loop_depth_ = saved;
    ExpectBlockEnd();
    return s;
  }

  // call[(PARAMS)] MACRO(ARGS) ... endcall: the body becomes `caller` for the macro.
  StmtPtr ParseCallBlock(SourcePos pos) {
    auto s = MakeStmt(StmtKind::kCallBlock, pos);
    if (IsOp("(")) ParseParams(s->params);
    s->expr = ParseExpression(true);
    if (s->expr->kind != ExprKind::kCall) Fail("expected a macro call after 'call'", pos);
    ExpectBlockEnd();
    const int saved = loop_depth_;
    loop_depth_ = 0;
    ParseBody(s->body, {"endcall"});
    loop_depth_ = saved;
    ExpectBlockEnd();
    return s;
  }

  // --- expressions -----------------------------------------------------------------------------

  // `a, b` without parentheses makes a tuple (as in `{{ a, b }}` or `set x = 1, 2`).
  ExprPtr ParseTuple(bool with_condexpr) {
    const SourcePos pos = Cur().pos;
    ExprPtr first = ParseExpression(with_condexpr);
    if (!IsOp(",")) return first;
    auto tuple = MakeExpr(ExprKind::kTuple, pos);
    tuple->children.push_back(std::move(first));
    while (SkipOp(",")) {
      if (Cur().kind == TokenKind::kBlockEnd || Cur().kind == TokenKind::kVarEnd || IsOp(")"))
        break;
      tuple->children.push_back(ParseExpression(with_condexpr));
    }
    return tuple;
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    DepthGuard guard(this);
    if (!with_condexpr) return ParseOr();
    ExprPtr expr = ParseOr();
    while (IsName("if")) {
      const SourcePos pos = Next().pos;
      auto cond = MakeExpr(ExprKind::kCondExpr, pos);
      cond->children.push_back(ParseOr());  // condition
      cond->children.push_back(std::move(expr));
      cond->children.push_back(SkipName("else") ? ParseExpression(true) : nullptr);
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      auto e = MakeExpr(ExprKind::kOr, Next().pos);
      e->children.push_back(std::move(left));
      e->children.push_back(ParseAnd());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      auto e = MakeExpr(ExprKind::kAnd, Next().pos);
      e->children.push_back(std::move(left));
      e->children.push_back(ParseNot());
      left = std::move(e);
    }
    return left;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      DepthGuard guard(this);
      auto e = MakeExpr(ExprKind::kUnary, Next().pos);
      e->name = "not";
      e->children.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }

  // Comparisons chain like Python: a < b < c is one kCompare node with two operators.
  ExprPtr ParseCompare() {
    const SourcePos pos = Cur().pos;
    ExprPtr first = ParseMath1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().kind == TokenKind::kOperator &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == "<=" ||
           Cur().text == ">" || Cur().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        Next();
        op = "in";
      } else if (IsName("not") && Peek().kind == TokenKind::kName && Peek().text == "in") {
        Next();
        Next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = MakeExpr(ExprKind::kCompare, pos);
        cmp->children.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(ParseMath1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr Binary(const std::string& op, SourcePos pos, ExprPtr l, ExprPtr r) {
    auto e = MakeExpr(ExprKind::kBinary, pos);
    e->name = op;
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return e;
  }

  ExprPtr ParseMath1() {
    ExprPtr left = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      const Token& t = Next();
      left = Binary(t.text, t.pos, std::move(left), ParseConcat());
    }
    return left;
  }

  ExprPtr ParseConcat() {
    ExprPtr left = ParseMath2();
    while (IsOp("~")) {
      const Token& t = Next();
      left = Binary("~", t.pos, std::move(left), ParseMath2());
    }
    return left;
  }

  ExprPtr ParseMath2() {
    ExprPtr left = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const Token& t = Next();
      left = Binary(t.text, t.pos, std::move(left), ParsePow());
    }
    return left;
  }

  ExprPtr ParsePow() {
    ExprPtr left = ParseUnary(true);
    while (IsOp("**")) {
      const Token& t = Next();
      left = Binary("**", t.pos, std::move(left), ParseUnary(true));
    }
    return left;
  }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const Token& t = Next();
      node = MakeExpr(ExprKind::kUnary, t.pos);
      node->name = t.text;
      node->children.push_back(ParseUnary(false));
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterExpr(std::move(node));
    return node;
  }

  // Literals, names, parenthesized expressions / tuples, list and dict displays.
  ExprPtr ParsePrimary() {
    const Token& t = Cur();
    const SourcePos pos = t.pos;
    switch (t.kind) {
      case TokenKind::kName: {
        Next();
        auto e = MakeExpr(ExprKind::kLiteral, pos);
        if (t.text == "true" || t.text == "True") {
          e->literal = Value(true);
        } else if (t.text == "false" || t.text == "False") {
          e->literal = Value(false);
        } else if (t.text == "none" || t.text == "None") {
          e->literal = Value::None();
        } else {
          e->kind = ExprKind::kName;
          e->name = t.text;
        }
        return e;
      }
      case TokenKind::kString: {
        std::string s;
        while (Cur().kind == TokenKind::kString) s += Next().text;  // "a" "b" concatenates
        auto e = MakeExpr(ExprKind::kLiteral, pos);
        e->literal = Value(std::move(s));
        return e;
      }
      case TokenKind::kInteger: {
        auto e = MakeExpr(ExprKind::kLiteral, pos);
        e->literal = Value(Next().int_value);
        return e;
      }
      case TokenKind::kFloat: {
        auto e = MakeExpr(ExprKind::kLiteral, pos);
        e->literal = Value(Next().float_value);
        return e;
      }
      case TokenKind::kOperator:
        if (t.text == "(") {
          Next();
          if (SkipOp(")")) return MakeExpr(ExprKind::kTuple, pos);
          ExprPtr inner = ParseExpression(true);
          if (IsOp(",")) {
            auto tuple = MakeExpr(ExprKind::kTuple, pos);
            tuple->children.push_back(std::move(inner));
            while (SkipOp(",")) {
              if (IsOp(")")) break;
              tuple->children.push_back(ParseExpression(true));
            }
            inner = std::move(tuple);
          }
          ExpectOp(")");
          return inner;
        }
        if (t.text == "[") {
          Next();
          auto e = MakeExpr(ExprKind::kList, pos);
          while (!IsOp("]")) {
            if (!e->children.empty()) ExpectOp(",");
            if (IsOp("]")) break;
            e->children.push_back(ParseExpression(true));
          }
          ExpectOp("]");
          return e;
        }
        if (t.text == "{") {
          Next();
          auto e = MakeExpr(ExprKind::kDict, pos);
          while (!IsOp("}")) {
            if (!e->children.empty()) ExpectOp(",");
            if (IsOp("}")) break;
            e->children.push_back(ParseExpression(true));
            ExpectOp(":");
            e->children.push_back(ParseExpression(true));
          }
          ExpectOp("}");
          return e;
        }
        break;
      default:
        break;
    }
    Fail("unexpected " + Describe(t));
  }

  // .attr, .0 (item 0), [subscript or slice] and (call) after a primary.
  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".")) {
        const SourcePos pos = Next().pos;
        if (Cur().kind == TokenKind::kInteger) {
          auto e = MakeExpr(ExprKind::kGetitem, pos);
          auto idx = MakeExpr(ExprKind::kLiteral, Cur().pos);
          idx->literal = Value(Next().int_value);
          e->children.push_back(std::move(node));
          e->children.push_back(std::move(idx));
          node = std::move(e);
        } else {
          auto e = MakeExpr(ExprKind::kGetattr, pos);
          e->name = ExpectName();
          e->children.push_back(std::move(node));
          node = std::move(e);
        }
      } else if (IsOp("[")) {
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  // [i] or [start:stop:step] with any part omitted.
  ExprPtr ParseSubscript(ExprPtr node) {
    const SourcePos pos = Next().pos;  // '['
    ExprPtr parts[3];
    bool is_slice = false;
    int k = 0;
    while (true) {
      if (IsOp(":")) {
        Next();
        is_slice = true;
        if (++k > 2) Fail("invalid slice");
        continue;
      }
      if (IsOp("]")) break;
      if (parts[k]) Fail("expected ':' or ']' in subscript, got " + Describe(Cur()));
      parts[k] = ParseExpression(true);
    }
    Next();  // ']'
    auto e = MakeExpr(is_slice ? ExprKind::kSlice : ExprKind::kGetitem, pos);
    e->children.push_back(std::move(node));
    if (is_slice) {
      for (auto& p : parts) e->children.push_back(std::move(p));
    } else {
      if (!parts[0]) Fail("empty subscript", pos);
      e->children.push_back(std::move(parts[0]));
    }
    return e;
  }

  // Arguments in parentheses: positional then keyword (name=value).
  void ParseArgs(Expr& call) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (call.children.size() > 1 || !call.kwargs.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) Fail("*args and **kwargs in calls are not supported");
      if (Cur().kind == TokenKind::kName && Peek().kind == TokenKind::kOperator &&
          Peek().text == "=") {
        std::string key = Next().text;
        Next();
        call.kwargs.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!call.kwargs.empty()) Fail("positional argument follows keyword argument");
        call.children.push_back(ParseExpression(true));
      }
    }
    ExpectOp(")");
  }

  ExprPtr ParseCall(ExprPtr callee) {
    auto e = MakeExpr(ExprKind::kCall, Cur().pos);
    e->children.push_back(std::move(callee));
    ParseArgs(*e);
    return e;
  }

  // One filter after '|' is consumed (or at the start of a {% filter %}/{% set x | f %}).
  ExprPtr ParseOneFilter(ExprPtr base) {
    const SourcePos pos = Cur().pos;
    std::string name = ExpectName();
    while (IsOp(".")) {  // dotted filter names
      Next();
      name += "." + ExpectName();
    }
    auto e = MakeExpr(ExprKind::kFilter, pos);
    e->name = std::move(name);
    e->children.push_back(std::move(base));
    if (IsOp("(")) ParseArgs(*e);
    return e;
  }

  ExprPtr ParseFilterChain(ExprPtr base) {
    if (!base) {
      SkipOp("|");
      base = ParseOneFilter(nullptr);
    }
    while (SkipOp("|")) base = ParseOneFilter(std::move(base));
    return base;
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        Next();
        node = ParseOneFilter(std::move(node));
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  // `is [not] NAME`, with arguments in parentheses or a single bare argument.
  ExprPtr ParseTest(ExprPtr node) {
    const SourcePos pos = Next().pos;  // 'is'
    auto e = MakeExpr(ExprKind::kTest, pos);
    e->negated = SkipName("not");
    e->name = ExpectName();
    while (IsOp(".")) {
      Next();
      e->name += "." + ExpectName();
    }
    e->children.push_back(std::move(node));
    const Token& t = Cur();
    if (IsOp("(")) {
      ParseArgs(*e);
    } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
                t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat || IsOp("[") ||
                IsOp("{")) &&
               !(t.kind == TokenKind::kName &&
                 (t.text == "else" || t.text == "or" || t.text == "and" || t.text == "if" ||
                  t.text == "in" || t.text == "not" || t.text == "recursive"))) {
      // Single argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
      if (IsName("is")) Fail("you cannot chain multiple tests with 'is'");
      e->children.push_back(ParsePostfix(ParsePrimary()));
    }
    return e;
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Program ParseTemplate(std::string_view source) { return Parser(Tokenize(source)).Run(); }

}  // namespace petrel::jinja
