"""Recursive-descent parser: query text -> :mod:`.ast` nodes.

Anything KQL has but this engine does not implement is rejected here, by name, with its
position (``KqlUnsupportedError``); malformed text is a ``KqlSyntaxError`` ("ParserFailure").
"""

from __future__ import annotations

import math
from datetime import datetime

from . import ast as A
from .errors import KqlSyntaxError, KqlUnsupportedError
from .lexer import Token, parse_timespan_text, tokenize
from .values import format_datetime, format_timespan, parse_datetime

__all__ = ["parse_query"]

SUPPORTED_OPERATORS = (
    "where", "filter", "extend", "project", "project-away", "project-rename", "summarize",
    "count", "order", "sort", "take", "limit", "top", "distinct", "join", "mv-expand",
)

# Real KQL tabular operators / statements that are deliberately not implemented.
UNSUPPORTED_OPERATORS = {
    "union", "let", "set", "declare", "alias", "render", "parse", "parse-where", "parse-kv",
    "evaluate", "lookup", "make-series", "mv-apply", "as", "serialize", "invoke", "getschema",
    "search", "find", "print", "range", "datatable", "externaldata", "facet", "fork", "partition",
    "reduce", "sample", "sample-distinct", "scan", "consume", "top-nested", "top-hitters",
    "project-keep", "project-reorder", "project-smart", "as-of", "fork-join", "materialize",
    "mvexpand", "mvapply", "extend-schema", "graph-match", "make-graph", "assert-schema",
    "project-by-names", "macro-expand", "where-in",
}

_CMP_PUNCT = {"==", "!=", "<", "<=", ">", ">=", "=~", "!~"}
STRING_OPS = {
    "contains", "!contains", "contains_cs", "!contains_cs",
    "has", "!has", "has_cs", "!has_cs",
    "hasprefix", "!hasprefix", "hasprefix_cs", "!hasprefix_cs",
    "hassuffix", "!hassuffix", "hassuffix_cs", "!hassuffix_cs",
    "startswith", "!startswith", "startswith_cs", "!startswith_cs",
    "endswith", "!endswith", "endswith_cs", "!endswith_cs",
}
_LIST_OPS = {"in", "!in", "in~", "!in~", "has_any", "has_all"}
_UNSUPPORTED_BINARY = {"matches": "matches regex", "!matches": "!matches regex", "like": "like", "notlike": "notlike"}

JOIN_KINDS = {
    "inner", "innerunique", "leftouter", "rightouter", "fullouter", "leftanti", "anti",
    "leftantisemi", "rightanti", "rightantisemi", "leftsemi", "rightsemi",
}

_TYPED_LITERALS = {"int", "long", "real", "double", "bool", "boolean"}
_TO_TYPES = {"string", "int", "long", "real", "double", "bool", "boolean", "datetime", "dynamic", "timespan"}
_END_OF_OP = ("|", ")", ";")


def parse_query(text: str) -> A.Pipeline:
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0

    # ------------------------------------------------------------------ token helpers
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def error(self, msg: str, tok: Token | None = None) -> KqlSyntaxError:
        t = tok or self.tok
        return KqlSyntaxError(msg, t.pos, text=self.text)

    def unsupported(self, code: str, msg: str, pos: int) -> KqlUnsupportedError:
        return KqlUnsupportedError(code, msg, pos, text=self.text)

    def describe(self, t: Token) -> str:
        if t.kind == "eof":
            return "end of query"
        if t.kind == "string":
            return "a string literal"
        return f"'{self.text[t.pos:t.end]}'"

    def expect_punct(self, p: str) -> Token:
        if not self.tok.is_punct(p):
            raise self.error(f"expected '{p}', found {self.describe(self.tok)}")
        return self.advance()

    def expect_word(self, *words: str) -> Token:
        if not self.tok.is_word(*words):
            raise self.error(f"expected {' or '.join(repr(w) for w in words)}, found {self.describe(self.tok)}")
        return self.advance()

    def at_op_end(self) -> bool:
        t = self.tok
        return t.kind == "eof" or (t.kind == "punct" and t.value in _END_OF_OP)

    def column_name(self, what: str = "a column name") -> tuple[str, int]:
        """A column name: identifier or ['quoted name'] / ["quoted name"]."""
        t = self.tok
        if t.kind == "ident" and not t.value.startswith("!"):
            self.advance()
            return t.value, t.pos
        if t.is_punct("[") and self.peek().kind == "string" and self.peek(2).is_punct("]"):
            self.advance()
            name = self.advance().value
            self.advance()
            return name, t.pos
        raise self.error(f"expected {what}, found {self.describe(t)}")

    def at_assignment(self) -> bool:
        """True when the next tokens are `name =` (single '=', not '==')."""
        t = self.tok
        if t.kind == "ident" and not t.value.startswith("!"):
            return self.peek().is_punct("=")
        if t.is_punct("[") and self.peek().kind == "string" and self.peek(2).is_punct("]"):
            return self.peek(3).is_punct("=")
        return False

    # ------------------------------------------------------------------ query structure
    def parse(self) -> A.Pipeline:
        if self.tok.kind == "eof":
            raise self.error("the query is empty")
        pipe = self.pipeline()
        while self.tok.is_punct(";"):
            self.advance()
            if self.tok.kind != "eof":
                raise self.unsupported("UnsupportedOperator", "multiple statements (';') are not supported", self.tok.pos)
        if self.tok.kind != "eof":
            raise self.error(f"unexpected {self.describe(self.tok)}")
        return pipe

    def pipeline(self) -> A.Pipeline:
        t = self.tok
        if t.kind == "ident" and t.value in UNSUPPORTED_OPERATORS:
            raise self.unsupported("UnsupportedOperator", f"'{t.value}' is not supported", t.pos)
        if t.is_punct("("):
            raise self.unsupported("UnsupportedOperator", "a parenthesized query as the pipeline source is not supported", t.pos)
        if t.kind != "ident" or t.value.startswith("!"):
            raise self.error(f"expected a table name, found {self.describe(t)}")
        self.advance()
        if self.tok.is_punct("("):
            raise self.unsupported("UnsupportedFunction", f"tabular function '{t.value}()' is not supported", t.pos)
        pipe = A.Pipeline(t.value, t.pos)
        while self.tok.is_punct("|"):
            self.advance()
            pipe.ops.append(self.operator())
        return pipe

    def operator(self) -> A.Op:
        t = self.tok
        if t.kind != "ident":
            raise self.error(f"expected a tabular operator after '|', found {self.describe(t)}")
        w = t.value
        if w in UNSUPPORTED_OPERATORS:
            raise self.unsupported("UnsupportedOperator", f"operator '{w}' is not supported", t.pos)
        if w not in SUPPORTED_OPERATORS:
            raise self.error(f"unknown tabular operator '{w}'")
        self.advance()
        op: A.Op
        if w in ("where", "filter"):
            op = A.Where(t.pos, self.expr())
        elif w == "extend":
            op = A.Extend(t.pos, self.assignments("extend"))
        elif w == "project":
            op = A.Project(t.pos, self.assignments("project"))
        elif w == "project-away":
            op = A.ProjectAway(t.pos, self.name_list("project-away"))
        elif w == "project-rename":
            op = A.ProjectRename(t.pos, self.rename_list())
        elif w == "summarize":
            op = self.summarize(t)
        elif w == "count":
            op = A.Count(t.pos)
        elif w in ("order", "sort"):
            self.expect_word("by")
            keys = [self.sort_key()]
            while self.tok.is_punct(","):
                self.advance()
                keys.append(self.sort_key())
            op = A.Sort(t.pos, keys)
        elif w in ("take", "limit"):
            op = A.Take(t.pos, self.expr())
        elif w == "top":
            n = self.expr()
            self.expect_word("by")
            op = A.Top(t.pos, n, self.sort_key())
        elif w == "distinct":
            if self.tok.is_punct("*"):
                self.advance()
                op = A.Distinct(t.pos, None)
            else:
                op = A.Distinct(t.pos, self.name_list("distinct"))
        elif w == "join":
            op = self.join(t)
        elif w == "mv-expand":
            op = self.mv_expand(t)
        else:  # pragma: no cover - SUPPORTED_OPERATORS and this chain are kept in step
            raise self.error(f"unknown tabular operator '{w}'")
        if not self.at_op_end():
            raise self.error(f"unexpected {self.describe(self.tok)} in '{w}'")
        return op

    def assignments(self, opname: str) -> list[A.Assign]:
        if self.at_op_end():
            raise self.error(f"'{opname}' needs at least one column")
        items = [self.assignment(opname)]
        while self.tok.is_punct(","):
            self.advance()
            items.append(self.assignment(opname))
        return items

    def assignment(self, opname: str) -> A.Assign:
        pos = self.tok.pos
        if self.tok.is_punct("(") and self.peek().kind == "ident" and self.peek(2).is_punct(","):
            raise self.unsupported("UnsupportedOperator", f"multi-column assignment '(a, b) = ...' in '{opname}' is not supported", pos)
        if self.at_assignment():
            name, _ = self.column_name()
            self.expect_punct("=")
            return A.Assign(name, self.expr(), pos)
        return A.Assign(None, self.expr(), pos)

    def name_list(self, opname: str) -> list[tuple[str, int]]:
        names = [self.plain_name(opname)]
        while self.tok.is_punct(","):
            self.advance()
            names.append(self.plain_name(opname))
        return names

    def plain_name(self, opname: str) -> tuple[str, int]:
        name, pos = self.column_name()
        if self.tok.is_punct("*") and self.tok.pos == self.toks[self.i - 1].end:
            raise self.unsupported("UnsupportedOperator", f"wildcard column names in '{opname}' are not supported", pos)
        return name, pos

    def rename_list(self) -> list[tuple[str, str, int]]:
        pairs = []
        while True:
            pos = self.tok.pos
            new, _ = self.column_name("a new column name")
            self.expect_punct("=")
            old, _ = self.column_name("an existing column name")
            pairs.append((new, old, pos))
            if not self.tok.is_punct(","):
                return pairs
            self.advance()

    def skip_hints(self) -> None:
        """Skip `hint.name = value` pairs: they steer distribution in Kusto, never results."""
        while self.tok.is_word("hint") and self.peek().is_punct("."):
            self.advance()
            self.advance()
            self.column_name("a hint name")
            self.expect_punct("=")
            self.advance()

    def summarize(self, t: Token) -> A.Summarize:
        self.skip_hints()
        aggs: list[A.Assign] = []
        if not self.tok.is_word("by") and not self.at_op_end():
            aggs.append(self.assignment("summarize"))
            while self.tok.is_punct(","):
                self.advance()
                aggs.append(self.assignment("summarize"))
        by: list[A.Assign] = []
        if self.tok.is_word("by"):
            self.advance()
            by = self.assignments("summarize ... by")
        if not aggs and not by:
            raise self.error("'summarize' needs an aggregation or a 'by' clause", t)
        return A.Summarize(t.pos, aggs, by)

    def sort_key(self) -> A.SortKey:
        e = self.expr()
        desc = True  # KQL sorts descending unless told otherwise
        if self.tok.is_word("asc", "desc"):
            desc = self.advance().value == "desc"
        nulls_first = not desc  # KQL default: nulls first when ascending, last when descending
        if self.tok.is_word("nulls"):
            self.advance()
            nulls_first = self.expect_word("first", "last").value == "first"
        return A.SortKey(e, desc, nulls_first)

    def join(self, t: Token) -> A.Join:
        kind = "innerunique"
        while True:
            if self.tok.is_word("kind") and self.peek().is_punct("="):
                self.advance()
                self.advance()
                k = self.tok
                if k.kind != "ident" or k.value not in JOIN_KINDS:
                    raise self.error(f"unknown join kind {self.describe(k)}")
                kind = self.advance().value
            elif self.tok.is_word("hint") and self.peek().is_punct("."):
                self.skip_hints()
            else:
                break
        if self.tok.is_punct("("):
            self.advance()
            right = self.pipeline()
            self.expect_punct(")")
        else:
            name = self.tok
            if name.kind != "ident":
                raise self.error(f"expected a table or '(' after 'join', found {self.describe(name)}")
            self.advance()
            right = A.Pipeline(name.value, name.pos)
        self.expect_word("on")
        conds = [self.join_cond()]
        while self.tok.is_punct(",") or self.tok.is_word("and"):
            self.advance()
            conds.append(self.join_cond())
        return A.Join(t.pos, kind, right, conds)

    def join_cond(self) -> A.JoinCond:
        pos = self.tok.pos
        if self.tok.is_punct("$"):
            a_side, a_name = self.side_ref()
            if not self.tok.is_punct("=="):
                raise self.unsupported("UnsupportedOperator", "join conditions other than equality ('==') are not supported", self.tok.pos)
            self.advance()
            b_side, b_name = self.side_ref()
            if a_side == b_side:
                raise self.error("a join condition must compare $left with $right", self.toks[self.i - 1])
            return A.JoinCond(a_name, b_name, pos) if a_side == "left" else A.JoinCond(b_name, a_name, pos)
        name, _ = self.column_name("a join key column or $left.column == $right.column")
        if self.tok.is_punct("=="):
            raise self.error("use $left.column == $right.column to join on differently named columns")
        return A.JoinCond(name, name, pos)

    def side_ref(self) -> tuple[str, str]:
        self.expect_punct("$")
        side = self.expect_word("left", "right").value
        self.expect_punct(".")
        name, _ = self.column_name()
        return side, name

    def mv_expand(self, t: Token) -> A.MvExpand:
        bag_mode = "bag"
        item_index = None
        while self.tok.kind == "ident" and self.peek().is_punct("=") and self.tok.value in ("bagexpansion", "kind", "with_itemindex"):
            w = self.advance().value
            self.advance()
            if w == "with_itemindex":
                item_index, _ = self.column_name()
            else:
                bag_mode = self.expect_word("bag", "array").value
        items = [self.mv_item()]
        while self.tok.is_punct(","):
            self.advance()
            items.append(self.mv_item())
        limit = None
        if self.tok.is_word("limit"):
            self.advance()
            lt = self.tok
            if lt.kind != "long":
                raise self.error("expected an integer after 'limit'")
            self.advance()
            limit = int(lt.value)
        return A.MvExpand(t.pos, items, bag_mode, limit, item_index)

    def mv_item(self) -> A.MvItem:
        pos = self.tok.pos
        name = None
        if self.at_assignment():
            name, _ = self.column_name()
            self.expect_punct("=")
        e = self.expr()
        to_type = None
        if self.tok.is_word("to"):
            self.advance()
            self.expect_word("typeof")
            self.expect_punct("(")
            tt = self.tok
            if tt.kind != "ident" or tt.value not in _TO_TYPES:
                raise self.error(f"unknown type {self.describe(tt)} in 'to typeof(...)'")
            to_type = self.advance().value
            self.expect_punct(")")
        return A.MvItem(name, e, to_type, pos)

    # ------------------------------------------------------------------ scalar expressions
    def expr(self) -> A.Expr:
        return self.or_expr()

    def or_expr(self) -> A.Expr:
        left = self.and_expr()
        while self.tok.is_word("or"):
            t = self.advance()
            left = A.Binary(t.pos, "or", left, self.and_expr())
        return left

    def and_expr(self) -> A.Expr:
        left = self.cmp_expr()
        while self.tok.is_word("and"):
            t = self.advance()
            left = A.Binary(t.pos, "and", left, self.cmp_expr())
        return left

    def cmp_expr(self) -> A.Expr:
        left = self.add_expr()
        t = self.tok
        if t.kind == "punct" and t.value in _CMP_PUNCT:
            self.advance()
            return A.Binary(t.pos, t.value, left, self.add_expr())
        if t.is_punct("<") and self.peek().is_punct(">"):
            raise self.error("'<>' is not KQL; use '!='")
        if t.kind != "ident":
            return left
        w = t.value
        if w in STRING_OPS:
            self.advance()
            return A.Binary(t.pos, w, left, self.add_expr())
        if w in _LIST_OPS:
            self.advance()
            return A.InList(t.pos, w, left, self.paren_list(w))
        if w in ("between", "!between"):
            self.advance()
            self.expect_punct("(")
            low = self.add_expr()
            self.expect_punct("..")
            high = self.add_expr()
            self.expect_punct(")")
            return A.Between(t.pos, w.startswith("!"), left, low, high)
        if w in _UNSUPPORTED_BINARY:
            raise self.unsupported("UnsupportedOperator", f"string operator '{_UNSUPPORTED_BINARY[w]}' is not supported", t.pos)
        if w in ("has_any~", "has_all~"):
            raise self.unsupported("UnsupportedOperator", f"operator '{w}' is not supported", t.pos)
        return left

    def paren_list(self, opname: str) -> list[A.Expr]:
        self.expect_punct("(")
        if self.tok.kind == "ident" and self.peek().is_punct("|"):
            raise self.unsupported("UnsupportedOperator", f"a subquery on the right of '{opname}' is not supported", self.tok.pos)
        items: list[A.Expr] = []
        if not self.tok.is_punct(")"):
            items.append(self.expr())
            while self.tok.is_punct(","):
                self.advance()
                items.append(self.expr())
        self.expect_punct(")")
        if not items:
            raise self.error(f"'{opname}' needs at least one value")
        return items

    def add_expr(self) -> A.Expr:
        left = self.mul_expr()
        while self.tok.is_punct("+", "-"):
            t = self.advance()
            left = A.Binary(t.pos, t.value, left, self.mul_expr())
        return left

    def mul_expr(self) -> A.Expr:
        left = self.unary_expr()
        while self.tok.is_punct("*", "/", "%"):
            t = self.advance()
            left = A.Binary(t.pos, t.value, left, self.unary_expr())
        return left

    def unary_expr(self) -> A.Expr:
        if self.tok.is_punct("-", "+"):
            t = self.advance()
            operand = self.unary_expr()
            if isinstance(operand, A.Literal) and operand.type in ("long", "real", "timespan"):
                if t.value == "-":
                    operand.value = -operand.value
                operand.pos = t.pos
                return operand
            return A.Unary(t.pos, t.value, operand)
        return self.postfix_expr()

    def postfix_expr(self) -> A.Expr:
        e = self.primary()
        while True:
            if self.tok.is_punct("."):
                t = self.advance()
                if self.tok.is_punct("["):
                    name, _ = self.column_name("a property name")
                elif self.tok.kind == "ident" and not self.tok.value.startswith("!"):
                    name = self.advance().value
                else:
                    raise self.error(f"expected a property name after '.', found {self.describe(self.tok)}")
                e = A.Member(t.pos, e, name)
            elif self.tok.is_punct("["):
                t = self.advance()
                idx = self.expr()
                self.expect_punct("]")
                e = A.Index(t.pos, e, idx)
            else:
                return e

    def primary(self) -> A.Expr:
        t = self.tok
        if t.kind == "string":
            self.advance()
            return A.Literal(t.pos, t.value, "string")
        if t.kind == "long":
            self.advance()
            return A.Literal(t.pos, t.value, "long")
        if t.kind == "real":
            self.advance()
            return A.Literal(t.pos, t.value, "real")
        if t.kind == "timespan":
            self.advance()
            return A.Literal(t.pos, t.value, "timespan")
        if t.kind == "raw":
            return self.raw_literal()
        if t.is_punct("("):
            self.advance()
            e = self.expr()
            self.expect_punct(")")
            return e
        if t.is_punct("$"):
            self.advance()
            side = self.expect_word("left", "right").value
            return A.Side(t.pos, side)
        if t.is_punct("[") and self.peek().kind == "string" and self.peek(2).is_punct("]"):
            name, pos = self.column_name()
            return A.Name(pos, name)
        if t.kind != "ident" or t.value.startswith("!"):
            raise self.error(f"expected an expression, found {self.describe(t)}")
        w = t.value
        if w in ("true", "True", "TRUE", "false", "False", "FALSE"):
            self.advance()
            return A.Literal(t.pos, w.lower() == "true", "bool")
        if w == "null":
            raise self.error("KQL has no 'null' literal; use isnull()/isempty() or a typed null such as dynamic(null)")
        if not self.peek().is_punct("("):
            self.advance()
            return A.Name(t.pos, w)
        # Literal forms that look like calls.
        if w == "dynamic":
            self.advance()
            self.advance()
            value = self.dynamic_value()
            self.expect_punct(")")
            return A.Literal(t.pos, value, "dynamic")
        if w in _TYPED_LITERALS:
            return self.typed_literal(w)
        if w in ("guid", "decimal"):
            raise self.unsupported("UnsupportedFunction", f"'{w}' literals are not supported", t.pos)
        self.advance()
        self.advance()
        args: list[A.Expr] = []
        if not self.tok.is_punct(")"):
            args.append(self.call_arg())
            while self.tok.is_punct(","):
                self.advance()
                args.append(self.call_arg())
        self.expect_punct(")")
        return A.Call(t.pos, w, args)

    def call_arg(self) -> A.Expr:
        if self.tok.is_punct("*") and self.peek().is_punct(",", ")"):
            t = self.advance()
            return A.Star(t.pos)
        return self.expr()

    def raw_literal(self) -> A.Literal:
        """``datetime(...)`` / ``timespan(...)``: the lexer kept the text between the parentheses."""
        t = self.advance()
        w, raw, raw_pos = t.value
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
        if raw == "null":
            return A.Literal(t.pos, None, "datetime" if w == "datetime" else "timespan")
        if w == "datetime":
            dt = parse_datetime(raw)
            if dt is None:
                raise KqlSyntaxError(f"invalid datetime literal '{raw}'", raw_pos, text=self.text)
            return A.Literal(t.pos, dt, "datetime")
        td = parse_timespan_text(raw)
        if td is None:
            raise KqlSyntaxError(f"invalid timespan literal '{raw}'", raw_pos, text=self.text)
        return A.Literal(t.pos, td, "timespan")

    def typed_literal(self, w: str) -> A.Literal:
        t = self.advance()
        self.advance()
        neg = False
        if self.tok.is_punct("-", "+"):
            neg = self.advance().value == "-"
        v = self.tok
        typ = {"int": "long", "long": "long", "real": "real", "double": "real", "bool": "bool", "boolean": "bool"}[w]
        value: object
        if v.is_word("null"):
            value = None
        elif typ == "long" and v.kind == "long":
            value = -v.value if neg else v.value
        elif typ == "real" and v.kind in ("long", "real"):
            value = float(-v.value if neg else v.value)
        elif typ == "real" and v.is_word("nan", "inf"):
            value = math.nan if v.value == "nan" else (-math.inf if neg else math.inf)
        elif typ == "bool" and v.is_word("true", "false"):
            value = v.value == "true"
        else:
            raise self.error(f"invalid {w}() literal")
        self.advance()
        self.expect_punct(")")
        return A.Literal(t.pos, value, typ)

    def dynamic_value(self) -> object:
        t = self.tok
        if t.is_punct("["):
            self.advance()
            out = []
            if not self.tok.is_punct("]"):
                out.append(self.dynamic_value())
                while self.tok.is_punct(","):
                    self.advance()
                    out.append(self.dynamic_value())
            self.expect_punct("]")
            return out
        if t.is_punct("{"):
            self.advance()
            obj: dict = {}
            if not self.tok.is_punct("}"):
                while True:
                    k = self.tok
                    if k.kind != "string":
                        raise self.error("expected a string property name in dynamic({...})")
                    self.advance()
                    self.expect_punct(":")
                    obj[k.value] = self.dynamic_value()
                    if not self.tok.is_punct(","):
                        break
                    self.advance()
            self.expect_punct("}")
            return obj
        if t.kind == "string":
            self.advance()
            return t.value
        if t.is_punct("-", "+") and self.peek().kind in ("long", "real"):
            neg = self.advance().value == "-"
            v = self.advance().value
            return -v if neg else v
        if t.kind in ("long", "real"):
            self.advance()
            return t.value
        if t.is_word("true", "false"):
            self.advance()
            return t.value == "true"
        if t.is_word("null"):
            self.advance()
            return None
        if t.kind == "timespan":
            self.advance()
            return format_timespan(t.value)
        if t.kind == "raw":
            v = self.raw_literal().value
            if isinstance(v, datetime):
                return format_datetime(v)
            return None if v is None else format_timespan(v)
        raise self.error(f"invalid value in dynamic literal: {self.describe(t)}")
