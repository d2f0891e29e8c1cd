"""The `eval` filter of `.t` files: Perl-ish *literals*, evaluated without Perl or Python `eval`.

Test::Nginx hands `--- request eval` and friends to Perl. Our tests only ever need data there:
strings with escapes, concatenation, repetition, regexes and arrays. So this module parses
exactly that little language and refuses everything else with a message that points at the
offending spot, which keeps test files honest and the harness free of code execution.

Supported:
  'single'  "double \\n \\t \\r \\0 \\x41 \\x{263A} \\N{U+263A} \\e \\\\ \\\" \\$"
  q{...} qq{...} (any delimiter; brackets nest), here-documents <<"EOT" <<'EOT' <<EOT <<~EOT
  "a" . "b"   "ab" x 3   ("a", "b") x 2 inside [...]   -1  1.5  0x1F  1_000  undef
  qr/.../imsxa (any delimiter)   [ ..., [ ... ], ... ]   # comments   a trailing ;
Refused: variables (`$x`, `@x` inside double quotes too), function calls, hashes, operators
other than `.` and `x`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: what safe_eval returns: str | int | float | None | Regex | list of those (nested)
Value = object

_BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "b": "\b", "a": "\a",
                   "e": "\x1b"}


class EvalError(ValueError):
    """The text is not a literal this evaluator accepts; the message says where and why."""


@dataclass(frozen=True)
class Regex:
    """A `qr/.../flags` value: Perl source kept for messages, compiled Python pattern for use."""

    source: str
    flags: str = ""
    compiled: re.Pattern = field(default=None, compare=False, repr=False)  # type: ignore

    @classmethod
    def from_perl(cls, source: str, flags: str = "") -> "Regex":
        pyflags = 0
        for f in flags:
            if f == "i":
                pyflags |= re.IGNORECASE
            elif f == "m":
                pyflags |= re.MULTILINE
            elif f == "s":
                pyflags |= re.DOTALL
            elif f == "x":
                pyflags |= re.VERBOSE
            elif f == "a":
                pyflags |= re.ASCII
            elif f in "uo":
                pass
            else:
                raise EvalError(f"unsupported regex flag {f!r} in qr/{source}/{flags}")
        try:
            compiled = re.compile(perl_regex_to_python(source), pyflags)
        except re.error as e:
            raise EvalError(f"bad regex qr/{source}/{flags}: {e}") from None
        return cls(source, flags, compiled)

    def search(self, text: str) -> "re.Match[str] | None":
        return self.compiled.search(text)

    def with_flags(self, extra: str) -> "Regex":
        """The same regex with more flags (Test::Nginx matches bodies with `/s`)."""
        merged = self.flags + "".join(f for f in extra if f not in self.flags)
        return Regex.from_perl(self.source, merged)

    def __str__(self) -> str:
        return f"qr/{self.source}/{self.flags}"


def perl_regex_to_python(src: str) -> str:
    """Translate the few Perl regex spellings Python's `re` writes differently."""
    out: list[str] = []
    i, n = 0, len(src)
    in_class = False
    #: per open group, how many scoped-flag groups `(?s:` we opened inside it; Perl lets
    #: `(?s)` appear mid-pattern (it applies to the rest of the group), Python does not
    closes = [0]
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n:
            d = src[i + 1]
            if d == "Q":
                end = src.find("\\E", i + 2)
                end = n if end < 0 else end
                out.append(re.escape(src[i + 2:end]))
                i = end + 2
                continue
            if d == "E":
                i += 2
                continue
            if not in_class:
                if d == "z":
                    out.append(r"\Z")
                    i += 2
                    continue
                if d == "Z":
                    out.append(r"(?=\n?\Z)")
                    i += 2
                    continue
                if d == "k" and i + 2 < n and src[i + 2] in "<{'":
                    close = {"<": ">", "{": "}", "'": "'"}[src[i + 2]]
                    end = src.find(close, i + 3)
                    if end < 0:
                        raise EvalError(f"unterminated \\k<name> in regex {src!r}")
                    out.append(f"(?P={src[i + 3:end]})")
                    i = end + 1
                    continue
                if d in "GK":
                    raise EvalError(f"\\{d} is not supported in regex {src!r}")
            if d == "h":
                out.append(r"[ \t]" if not in_class else r" \t")
                i += 2
                continue
            out.append(src[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and src[i] == "^":
                out.append("^")
                i += 1
            if i < n and src[i] == "]":
                out.append(r"\]")
                i += 1
            continue
        if c == "(":
            m = _INLINE_FLAGS.match(src, i)
            if m and (out or "-" in m.group(1)):
                out.append(f"(?{m.group(1)}:")
                closes[-1] += 1
                i = m.end()
                continue
            if not m:
                closes.append(0)
            if src.startswith("(?<", i) and i + 3 < n and src[i + 3] not in "=!":
                out.append("(?P<")
                i += 3
                continue
        elif c == ")" and len(closes) > 1:
            out.append(")" * closes.pop())
        if c == "$" and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] in "_{"):
            raise EvalError(f"variable interpolation is not supported in regex {src!r}")
        out.append(c)
        i += 1
    return "".join(out) + ")" * closes[0]


_INLINE_FLAGS = re.compile(r"\(\?([imsx]*(?:-[imsx]+)?)\)")


class _List(list):
    """A parenthesised list: flattens into an enclosing array, repeats as a list with `x`."""


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # -- plumbing -------------------------------------------------------------------------
    def error(self, msg: str, pos: int | None = None) -> EvalError:
        p = self.pos if pos is None else pos
        line = self.text.count("\n", 0, p) + 1
        col = p - (self.text.rfind("\n", 0, p) + 1) + 1
        snippet = self.text[p:p + 20].split("\n")[0]
        return EvalError(f"eval: {msg} at line {line}, column {col} (near {snippet!r})")

    def peek(self, k: int = 0) -> str:
        p = self.pos + k
        return self.text[p] if p < len(self.text) else ""

    def skip_ws(self) -> None:
        t = self.text
        while self.pos < len(t):
            c = t[self.pos]
            if c.isspace():
                self.pos += 1
            elif c == "#":
                nl = t.find("\n", self.pos)
                self.pos = len(t) if nl < 0 else nl + 1
            else:
                break

    def accept(self, s: str) -> bool:
        self.skip_ws()
        if self.text.startswith(s, self.pos):
            self.pos += len(s)
            return True
        return False

    def word_at(self) -> str:
        m = re.compile(r"[A-Za-z_]\w*").match(self.text, self.pos)
        return m.group(0) if m else ""

    # -- grammar --------------------------------------------------------------------------
    def parse(self) -> object:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.error("empty expression")
        value = self.expr()
        self.accept(";")
        self.skip_ws()
        if self.pos < len(self.text):
            raise self.error("unexpected text")
        return _scalar(value, self)

    def expr(self) -> object:
        left = self.repeat()
        while True:
            self.skip_ws()
            if self.peek() == "." and self.peek(1) != "." and not self.peek(1).isdigit():
                self.pos += 1
                right = self.repeat()
                left = _str(_scalar(left, self), self) + _str(_scalar(right, self), self)
            else:
                return left

    def repeat(self) -> object:
        value = self.unary()
        while True:
            self.skip_ws()
            if self.peek() == "x" and not (self.peek(1).isalpha() or self.peek(1) == "_"):
                start = self.pos
                self.pos += 1
                count = self.unary()
                if not isinstance(count, int) or isinstance(count, bool):
                    raise self.error("the right side of `x` must be an integer", start)
                if isinstance(value, _List):
                    value = _List(list(value) * max(count, 0))
                else:
                    value = _str(value, self) * max(count, 0)
            else:
                return value

    def unary(self) -> object:
        self.skip_ws()
        if self.peek() == "-" and not self.peek(1).isspace():
            start = self.pos
            self.pos += 1
            v = self.unary()
            if not isinstance(v, (int, float)):
                raise self.error("unary minus needs a number", start)
            return -v
        return self.primary()

    def primary(self) -> object:
        self.skip_ws()
        c = self.peek()
        if c == "'":
            self.pos += 1
            return self.quoted("'", interpolate=False)
        if c == '"':
            self.pos += 1
            return self.quoted('"', interpolate=True)
        if c == "[":
            self.pos += 1
            return self.list_until("]")
        if c == "(":
            self.pos += 1
            return _List(self.list_until(")"))
        if c.isdigit():
            return self.number()
        if self.text.startswith("<<", self.pos):
            return self.heredoc()
        word = self.word_at()
        if word in ("q", "qq", "qr"):
            after = self.pos + len(word)
            j = after
            while j < len(self.text) and self.text[j].isspace():
                j += 1
            if j < len(self.text) and not (self.text[j].isalnum() or self.text[j] in "_,;"):
                self.pos = j
                return self.quote_like(word)
        if word == "undef":
            self.pos += len(word)
            return None
        if c in "$@%":
            raise self.error("variables are not supported")
        if word:
            raise self.error(f"function calls and barewords are not supported ({word})")
        if c == "{":
            raise self.error("hashes are not supported")
        raise self.error("expected a string, number, qr//, or [ ... ]")

    def list_until(self, close: str) -> list:
        items: list = []
        while True:
            self.skip_ws()
            if self.accept(close):
                return items
            if self.pos >= len(self.text):
                raise self.error(f"missing {close!r}")
            item = self.expr()
            if isinstance(item, _List):
                items.extend(item)
            else:
                items.append(item)
            self.skip_ws()
            if self.accept(",") or self.accept("=>"):
                continue
            if self.accept(close):
                return items
            if self.pos >= len(self.text):
                raise self.error(f"missing {close!r}")
            raise self.error(f"expected ',' or {close!r}")

    def number(self) -> int | float:
        m = re.compile(r"0[xX][0-9A-Fa-f_]+|0[bB][01_]+|\d[\d_]*(\.\d[\d_]*)?([eE][-+]?\d+)?"
                       ).match(self.text, self.pos)
        assert m
        self.pos = m.end()
        s = m.group(0).replace("_", "")
        if s[:2] in ("0x", "0X"):
            return int(s, 16)
        if s[:2] in ("0b", "0B"):
            return int(s, 2)
        if m.group(1) or m.group(2):
            return float(s)
        if len(s) > 1 and s[0] == "0":
            return int(s, 8)
        return int(s)

    # -- strings --------------------------------------------------------------------------
    def raw_until(self, close: str, open_: str | None) -> str:
        """Body of a quote-like construct up to its unescaped closing delimiter."""
        depth, start = 0, self.pos
        t = self.text
        while self.pos < len(t):
            c = t[self.pos]
            if c == "\\" and self.pos + 1 < len(t):
                self.pos += 2
                continue
            if open_ and c == open_:
                depth += 1
            elif c == close:
                if depth == 0:
                    body = t[start:self.pos]
                    self.pos += 1
                    return body
                depth -= 1
            self.pos += 1
        raise self.error(f"unterminated string (missing {close!r})", start)

    def quoted(self, close: str, interpolate: bool, open_: str | None = None) -> str:
        start = self.pos
        body = self.raw_until(close, open_)
        if interpolate:
            return self.unescape_double(body, start, close)
        return _unescape_single(body, close)

    def quote_like(self, word: str) -> object:
        opener = self.peek()
        close = _BRACKETS.get(opener, opener)
        open_ = opener if opener in _BRACKETS else None
        self.pos += 1
        if word == "qr":
            start = self.pos
            body = self.raw_until(close, open_)
            m = re.compile(r"[a-z]*").match(self.text, self.pos)
            assert m
            self.pos = m.end()
            if close != "\\":
                body = body.replace("\\" + close, close)
                if open_:
                    body = body.replace("\\" + open_, open_)
            try:
                return Regex.from_perl(body, m.group(0))
            except EvalError as e:
                raise self.error(str(e), start) from None
        return self.quoted(close, interpolate=(word == "qq"), open_=open_)

    def heredoc(self) -> str:
        m = re.compile(r"<<(~?)(?:\"([^\"\n]*)\"|'([^'\n]*)'|([A-Za-z_]\w*))").match(
            self.text, self.pos)
        if not m:
            raise self.error("bad here-document start")
        indent, tag = m.group(1), next(g for g in m.group(2, 3, 4) if g is not None)
        interpolate = m.group(3) is None
        self.pos = m.end()
        eol = self.text.find("\n", self.pos)
        if eol < 0:
            raise self.error(f"here-document {tag!r} has no body")
        lines = self.text[eol + 1:].split("\n")
        body: list[str] = []
        for i, line in enumerate(lines):
            if (line.strip() if indent else line) == tag:
                strip = len(line) - len(line.lstrip()) if indent else 0
                consumed = sum(len(x) + 1 for x in lines[:i + 1])
                self.text = self.text[:eol + 1] + self.text[eol + 1 + consumed:]
                text = "".join(_dedent(ln, strip) + "\n" for ln in body)
                return self.unescape_double(text, self.pos, None) if interpolate else text
            body.append(line)
        raise self.error(f"here-document terminator {tag!r} not found")

    def unescape_double(self, body: str, at: int, close: str | None) -> str:
        out: list[str] = []
        i, n = 0, len(body)
        while i < n:
            c = body[i]
            if c == "\\" and i + 1 < n:
                d = body[i + 1]
                i += 2
                if d in _SIMPLE_ESCAPES:
                    out.append(_SIMPLE_ESCAPES[d])
                elif d == "x":
                    if i < n and body[i] == "{":
                        end = body.find("}", i)
                        if end < 0:
                            raise self.error("unterminated \\x{...}", at)
                        out.append(chr(int(body[i + 1:end] or "0", 16)))
                        i = end + 1
                    else:
                        m = re.compile(r"[0-9A-Fa-f]{0,2}").match(body, i)
                        assert m
                        out.append(chr(int(m.group(0) or "0", 16)))
                        i = m.end()
                elif d in "01234567":
                    m = re.compile(r"[0-7]{0,2}").match(body, i)
                    assert m
                    out.append(chr(int(d + m.group(0), 8)))
                    i = m.end()
                elif d == "N" and body.startswith("{U+", i):
                    end = body.find("}", i)
                    out.append(chr(int(body[i + 3:end], 16)))
                    i = end + 1
                elif d in "lLuUQEF":
                    raise self.error(f"case-changing escape \\{d} is not supported", at)
                else:
                    out.append(d)
            elif c in "$@" and i + 1 < n and (body[i + 1].isalpha() or body[i + 1] in "_{"):
                raise self.error(f"variable interpolation ({body[i:i + 12]!r}) is not "
                                 f"supported; escape it as \\{c}", at)
            else:
                out.append(c)
                i += 1
        return "".join(out)


def _dedent(line: str, width: int) -> str:
    """Drop up to `width` leading blanks (the `<<~` here-document rule)."""
    k = 0
    while k < width and k < len(line) and line[k] in " \t":
        k += 1
    return line[k:]


def _unescape_single(body: str, close: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in ("\\", close):
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _scalar(value: object, p: _Parser) -> object:
    if isinstance(value, _List):
        if len(value) == 1:
            return value[0]
        raise p.error("a parenthesised list is only allowed inside [ ... ]")
    return value


def _str(value: object, p: _Parser) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    raise p.error(f"cannot use {type(value).__name__} as a string")


def safe_eval(text: str) -> object:
    """Evaluate one literal expression; return str, int, float, None, Regex or (nested) list."""
    return _Parser(text).parse()
