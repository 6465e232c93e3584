"""Syntax tree of a parsed query. Plain dataclasses; ``pos`` is the offset of the node's first token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ----------------------------------------------------------------------------- scalar expressions


@dataclass(slots=True)
class Expr:
    pos: int


@dataclass(slots=True)
class Literal(Expr):
    value: Any
    type: str  # string | long | real | bool | datetime | timespan | dynamic


@dataclass(slots=True)
class Name(Expr):
    name: str


@dataclass(slots=True)
class Member(Expr):
    obj: Expr
    name: str


@dataclass(slots=True)
class Index(Expr):
    obj: Expr
    index: Expr


@dataclass(slots=True)
class Call(Expr):
    name: str
    args: list[Expr]


@dataclass(slots=True)
class Star(Expr):
    """``*`` as a function argument (e.g. ``count(*)`` is not supported, but ``distinct *`` is)."""


@dataclass(slots=True)
class Unary(Expr):
    op: str  # '-' | '+'
    operand: Expr


@dataclass(slots=True)
class Binary(Expr):
    op: str  # arithmetic, comparison, string operator, 'and', 'or'
    left: Expr
    right: Expr


@dataclass(slots=True)
class InList(Expr):
    op: str  # in | !in | in~ | !in~ | has_any | has_all
    left: Expr
    items: list[Expr]


@dataclass(slots=True)
class Between(Expr):
    negated: bool
    left: Expr
    low: Expr
    high: Expr


@dataclass(slots=True)
class Side(Expr):
    """``$left`` / ``$right`` in a join condition."""

    side: str


# ----------------------------------------------------------------------------- tabular operators


@dataclass(slots=True)
class Assign:
    name: str | None  # None: name derived from the expression
    expr: Expr
    pos: int


@dataclass(slots=True)
class SortKey:
    expr: Expr
    desc: bool
    nulls_first: bool


@dataclass(slots=True)
class Op:
    pos: int


@dataclass(slots=True)
class Where(Op):
    predicate: Expr


@dataclass(slots=True)
class Extend(Op):
    items: list[Assign]


@dataclass(slots=True)
class Project(Op):
    items: list[Assign]


@dataclass(slots=True)
class ProjectAway(Op):
    names: list[tuple[str, int]]


@dataclass(slots=True)
class ProjectRename(Op):
    pairs: list[tuple[str, str, int]]  # (new, old, pos)


@dataclass(slots=True)
class Summarize(Op):
    aggs: list[Assign]
    by: list[Assign]


@dataclass(slots=True)
class Count(Op):
    pass


@dataclass(slots=True)
class Sort(Op):
    keys: list[SortKey]


@dataclass(slots=True)
class Take(Op):
    count: Expr


@dataclass(slots=True)
class Top(Op):
    count: Expr
    key: SortKey


@dataclass(slots=True)
class Distinct(Op):
    names: list[tuple[str, int]] | None  # None means `distinct *`


@dataclass(slots=True)
class JoinCond:
    left: str
    right: str
    pos: int


@dataclass(slots=True)
class Join(Op):
    kind: str
    right: Pipeline
    conds: list[JoinCond]


@dataclass(slots=True)
class MvItem:
    name: str | None
    expr: Expr
    to_type: str | None
    pos: int


@dataclass(slots=True)
class MvExpand(Op):
    items: list[MvItem]
    bag_mode: str  # bag | array
    limit: int | None
    item_index: str | None


@dataclass(slots=True)
class Pipeline:
    source: str
    source_pos: int
    ops: list[Op] = field(default_factory=list)
