"""Tokenizer for the KQL subset.

Produces a flat list of :class:`Token`. Operator words that KQL spells with a hyphen
(``project-away``, ``mv-expand`` ...) and negated word operators (``!contains``, ``!in~``)
are merged into single identifier tokens here so the parser sees one word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from .errors import KqlSyntaxError

__all__ = ["Token", "tokenize"]

# Hyphenated operator names KQL knows. Supported or not, they are lexed as one word so that an
# unsupported one is reported by name rather than as a confusing arithmetic expression.
_HYPHENATED = {
    "project-away", "project-rename", "project-keep", "project-reorder", "project-smart",
    "mv-expand", "mv-apply", "make-series", "parse-where", "parse-kv", "top-nested",
    "top-hitters", "as-of", "fork-join",
}

# Literal forms whose parenthesized content is raw text, not tokens.
_RAW_LITERALS = {"datetime", "timespan", "time"}

# Words that may follow "!" to form a negated string operator.
_NEGATABLE = {
    "contains", "contains_cs", "has", "has_cs", "hasprefix", "hasprefix_cs", "hassuffix",
    "hassuffix_cs", "startswith", "startswith_cs", "endswith", "endswith_cs", "in", "in~",
    "between", "has_any", "has_all", "matches",
}

# Timespan literal suffixes -> seconds per unit.
_TIMESPAN_UNITS = {
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3, "milli": 1e-3, "millis": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
    "microsecond": 1e-6, "microseconds": 1e-6,
    "tick": 1e-7, "ticks": 1e-7,
}

# Longest first so "==" wins over "=".
_PUNCT = [
    "==", "!=", "=~", "!~", "<=", ">=", "..",
    "|", "(", ")", "[", "]", "{", "}", ",", ".", "=", "<", ">", "+", "-", "*", "/", "%",
    ":", ";", "$",
]


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # ident | string | long | real | timespan | raw | punct | eof
    value: object
    pos: int
    end: int

    def is_punct(self, *values: str) -> bool:
        return self.kind == "punct" and self.value in values

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and self.value in words


def _is_ident_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def tokenize(text: str) -> list[Token]:
    toks: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n\f\v":
            i += 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        start = i
        # Strings: '...', "...", @'...', @"...", ```...```, with optional h/H obfuscation prefix.
        if c in "hH" and _starts_string(text, i + 1):
            i += 1
        if _starts_string(text, i):
            s, i = _read_string(text, i, start)
            # Adjacent string literals (separated only by whitespace/comments) concatenate.
            while True:
                j = _skip_trivia(text, i)
                k = j + 1 if j < n and text[j] in "hH" and _starts_string(text, j + 1) else j
                if k < n and _starts_string(text, k):
                    more, i = _read_string(text, k, k)
                    s += more
                else:
                    break
            toks.append(Token("string", s, start, i))
            continue
        if c.isdigit():
            toks.append(_read_number(text, i))
            i = toks[-1].end
            continue
        if _is_ident_start(c):
            j = i + 1
            while j < n and _is_ident_char(text[j]):
                j += 1
            word = text[i:j]
            # Hyphenated operator names.
            if j < n and text[j] == "-":
                k = j + 1
                while k < n and _is_ident_char(text[k]):
                    k += 1
                if text[i:k] in _HYPHENATED:
                    word, j = text[i:k], k
            if word == "in" and j < n and text[j] == "~":
                word, j = word + "~", j + 1
            if word in _RAW_LITERALS:
                k = _skip_trivia(text, j)
                if k < n and text[k] == "(":
                    close = text.find(")", k)
                    if close < 0:
                        raise KqlSyntaxError(f"unterminated {word}(...) literal", i, text=text)
                    # datetime(2024-01-01T10:00:00Z) is not made of tokens: keep the raw text.
                    toks.append(Token("raw", (word, text[k + 1 : close], k + 1), i, close + 1))
                    i = close + 1
                    continue
            toks.append(Token("ident", word, i, j))
            i = j
            continue
        if c == "!" and i + 1 < n and _is_ident_start(text[i + 1]):
            j = i + 2
            while j < n and _is_ident_char(text[j]):
                j += 1
            word = text[i + 1 : j]
            if word == "in" and j < n and text[j] == "~":
                word, j = "in~", j + 1
            if word not in _NEGATABLE:
                raise KqlSyntaxError(f"unexpected '!{word}'", i, text=text)
            toks.append(Token("ident", "!" + word, i, j))
            i = j
            continue
        for p in _PUNCT:
            if text.startswith(p, i):
                toks.append(Token("punct", p, i, i + len(p)))
                i += len(p)
                break
        else:
            raise KqlSyntaxError(f"unexpected character {c!r}", i, text=text)
    toks.append(Token("eof", None, n, n))
    return toks


def _starts_string(text: str, i: int) -> bool:
    if i >= len(text):
        return False
    c = text[i]
    return c in "'\"" or (c == "@" and i + 1 < len(text) and text[i + 1] in "'\"") or text.startswith("```", i)


def _skip_trivia(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        if text[i] in " \t\r\n\f\v":
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        else:
            break
    return i


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0", "/": "/"}


def _read_string(text: str, i: int, start: int) -> tuple[str, int]:
    n = len(text)
    if text.startswith("```", i):
        j = text.find("```", i + 3)
        if j < 0:
            raise KqlSyntaxError("unterminated multi-line string literal", start, text=text)
        return text[i + 3 : j], j + 3
    verbatim = text[i] == "@"
    if verbatim:
        i += 1
    q = text[i]
    i += 1
    out: list[str] = []
    while True:
        if i >= n:
            raise KqlSyntaxError("unterminated string literal", start, text=text)
        c = text[i]
        if c == q:
            if verbatim and i + 1 < n and text[i + 1] == q:  # doubled quote inside @'...'
                out.append(q)
                i += 2
                continue
            return "".join(out), i + 1
        if c in "\r\n":
            raise KqlSyntaxError("newline in string literal (use \\n or a ``` multi-line string)", start, text=text)
        if c == "\\" and not verbatim:
            if i + 1 >= n:
                raise KqlSyntaxError("unterminated string literal", start, text=text)
            e = text[i + 1]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            hexd = text[i + 2 : i + 6]
            if e == "u" and len(hexd) == 4 and all(ch in "0123456789abcdefABCDEF" for ch in hexd):
                out.append(chr(int(hexd, 16)))
                i += 6
                continue
            raise KqlSyntaxError(f"unknown escape sequence '\\{e}' in string literal", i, text=text)
        out.append(c)
        i += 1


def _read_number(text: str, i: int) -> Token:
    n = len(text)
    start = i
    while i < n and text[i].isdigit():
        i += 1
    is_real = False
    if i + 1 < n and text[i] == "." and text[i + 1].isdigit():
        is_real = True
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j].isdigit():
            is_real = True
            i = j
            while i < n and text[i].isdigit():
                i += 1
    num_text = text[start:i]
    if i < n and _is_ident_start(text[i]):
        j = i
        while j < n and _is_ident_char(text[j]):
            j += 1
        unit = text[i:j]
        if unit in _TIMESPAN_UNITS:
            seconds = float(num_text) * _TIMESPAN_UNITS[unit]
            return Token("timespan", timedelta(seconds=seconds), start, j)
        raise KqlSyntaxError(f"invalid number literal '{text[start:j]}'", start, text=text)
    if is_real:
        return Token("real", float(num_text), start, i)
    return Token("long", int(num_text), start, i)


def parse_timespan_text(s: str) -> timedelta | None:
    """Parse the inside of ``timespan(...)``/``time(...)``: ``1d``, ``2.5h`` or ``[d.]hh:mm[:ss[.f]]``."""
    s = s.strip()
    if not s:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)?", s)
    if m:
        unit = m.group(2) or "d"  # a bare number in timespan() means days
        if unit not in _TIMESPAN_UNITS:
            return None
        return timedelta(seconds=float(m.group(1)) * _TIMESPAN_UNITS[unit])
    m = re.fullmatch(r"(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?", s)
    if m:
        sign, d, h, mi, sec, frac = m.groups()
        td = timedelta(
            days=int(d or 0), hours=int(h), minutes=int(mi), seconds=int(sec or 0),
            microseconds=int((frac or "0").ljust(7, "0")[:6]),
        )
        return -td if sign else td
    return None
