"""Parser for `.t` files in the Test::Base grammar (spec §11), with Test::Base's filters.

A `.t` file is a prologue (Perl-looking calls such as `repeat_each(2);`), a `__DATA__` line,
then blocks:

    === TEST 1: name                    <- block header; the rest of the line is the name
    optional description lines
    --- section filter1 filter2         <- section with a filter list; the body follows
    body lines
    --- section: inline value           <- inline form (no body lines allowed)

Values go through `norm` and `trim` first (so a body with text ends in exactly one newline),
then the listed filters. `eval` is our safe literal evaluator, never Perl. Everything is
parsed once at collection time so that a malformed file fails collection with its file and
line instead of failing halfway through a run.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from t.lib.safe_eval import EvalError, Regex, safe_eval

DEFAULT_FILTERS = ("norm", "trim")
#: block method names in Test::Base; a section must not be called like one
RESERVED = frozenset({"name", "description", "seq_num", "blocks_object", "original_values",
                      "is_filtered", "run_filters", "set_value", "block_accessor"})
META_SECTIONS = frozenset({"ONLY", "SKIP", "LAST", "FIRST"})

_BLOCK_RE = re.compile(r"^===")
_SECTION_RE = re.compile(r"^--- +\(?(\w+)\)? *(.*?)\s*$")
_DATA_RE = re.compile(r"^__(DATA|END)__\s*$")
_CALL_RE = re.compile(r"^\s*(\w+)\s*(?:\((.*?)\))?\s*;", re.M)


class TParseError(Exception):
    """A grammar error; `str()` reads `path:line: message`."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Section:
    name: str
    value: object          #: after filters: str, or what `eval` made (list, Regex, int...)
    raw: str               #: the text before any filter
    filters: list[str]     #: the effective filter chain, in order
    line: int              #: 1-based line of the `---` header
    inline: bool = False


@dataclass
class Block:
    name: str
    description: str
    line: int
    index: int                                   #: 1-based position in the file
    sections: dict[str, Section] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.sections

    def get(self, name: str, default: object = None) -> object:
        s = self.sections.get(name)
        return default if s is None else s.value

    @property
    def only(self) -> bool:
        return "ONLY" in self.sections

    @property
    def skip(self) -> bool:
        return "SKIP" in self.sections

    @property
    def last(self) -> bool:
        return "LAST" in self.sections

    @property
    def first(self) -> bool:
        return "FIRST" in self.sections


@dataclass
class Prologue:
    """The few prologue calls the harness honours; every simple call is kept in `calls`."""

    repeat_each: int = 1
    no_shuffle: bool = False
    log_level: str | None = None
    workers: int | None = None
    worker_connections: int | None = None
    calls: list[tuple[str, list]] = field(default_factory=list)


@dataclass
class TFile:
    path: str
    prologue: Prologue
    blocks: list[Block]


# -- filters --------------------------------------------------------------------------------

def _map_str(fn: Callable[[str], object]) -> Callable[[object, str | None], object]:
    """Lift a string filter over lists (Test::Base filters apply to each element)."""
    def apply(value: object, arg: str | None) -> object:
        if isinstance(value, list):
            return [apply(v, arg) for v in value]
        if isinstance(value, str):
            return fn(value)
        if value is None or isinstance(value, (int, float)):
            return value
        raise ValueError(f"cannot apply a text filter to {value}")
    return apply


def _trim(text: str) -> str:
    text = re.sub(r"\A([ \t]*\n)+", "", text)
    return re.sub(r"(?<=\n)\s*\Z", "", text)


def _chomp(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def _eval(value: object, arg: str | None) -> object:
    if not isinstance(value, str):
        raise ValueError("eval needs text")
    return safe_eval(value)


def _lines(value: object, arg: str | None) -> object:
    if not isinstance(value, str):
        raise ValueError("lines needs text")
    return value.splitlines(keepends=True)


def _join(value: object, arg: str | None) -> object:
    if isinstance(value, list):
        return (arg or "").join(str(v) for v in value)
    return value


def _split(value: object, arg: str | None) -> object:
    if not isinstance(value, str):
        raise ValueError("split needs text")
    return value.split(arg) if arg else value.split()


def _regexp(value: object, arg: str | None) -> object:
    if not isinstance(value, str):
        raise ValueError("regexp needs text")
    return Regex.from_perl(value, arg if arg is not None else "xism")


FILTERS: dict[str, Callable[[object, str | None], object]] = {
    "norm": _map_str(lambda s: s.replace("\r\n", "\n").replace("\r", "\n")),
    "trim": _map_str(_trim),
    "chomp": _map_str(_chomp),
    "chop": _map_str(lambda s: s[:-1]),
    "unchomp": _map_str(lambda s: s if s.endswith("\n") else s + "\n"),
    "base64_encode": _map_str(lambda s: base64.b64encode(s.encode()).decode() + "\n"),
    "base64_decode": _map_str(lambda s: base64.b64decode(s).decode("latin-1")),
    "eval": _eval,
    "lines": _lines,
    "join": _join,
    "split": _split,
    "regexp": _regexp,
}


def filter_chain(spec: str) -> list[tuple[str, str | None]]:
    """Defaults, then the listed filters; `-name` drops one, `+name` appends at the end."""
    chain = [(f, None) for f in DEFAULT_FILTERS]
    removed: set[str] = set()
    appended: list[tuple[str, str | None]] = []
    for tok in spec.split():
        if tok.startswith("-"):
            removed.add(tok[1:])
            continue
        target = appended if tok.startswith("+") else chain
        name, _, arg = tok.lstrip("+").partition("=")
        target.append((name, arg if _ else None))
    return [(n, a) for n, a in chain + appended if n not in removed]


def apply_filters(raw: str, chain: list[tuple[str, str | None]]) -> object:
    value: object = raw
    for name, arg in chain:
        value = FILTERS[name](value, arg)
    return value


# -- the file -------------------------------------------------------------------------------

def parse_prologue(text: str) -> Prologue:
    """Pick out simple calls (`name(args);`); anything we cannot read is ignored, like Perl
    code the harness has no business running."""
    pro = Prologue()
    stripped = re.sub(r"(?m)^\s*#.*$", "", text)
    for m in _CALL_RE.finditer(stripped):
        name, argtext = m.group(1), (m.group(2) or "").strip()
        try:
            args = safe_eval("[" + argtext + "]") if argtext else []
        except EvalError:
            continue
        assert isinstance(args, list)
        pro.calls.append((name, args))
        if name == "repeat_each" and args and isinstance(args[0], int):
            pro.repeat_each = max(1, args[0])
        elif name == "no_shuffle":
            pro.no_shuffle = True
        elif name == "log_level" and args:
            pro.log_level = str(args[0])
        elif name == "workers" and args and isinstance(args[0], int):
            pro.workers = args[0]
        elif name == "worker_connections" and args and isinstance(args[0], int):
            pro.worker_connections = args[0]
    return pro


def parse_text(text: str, path: str = "<string>") -> TFile:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    data_at = next((i for i, ln in enumerate(lines) if _DATA_RE.match(ln)), None)
    if data_at is None:
        raise TParseError(path, len(lines) or 1, "no __DATA__ line: blocks must follow it")
    if any(ln.startswith("<<<") for ln in lines[data_at + 1:data_at + 3]):
        raise TParseError(path, data_at + 2, "a <<< perl >>> chunk is not supported")
    prologue = parse_prologue("\n".join(lines[:data_at]))
    starts = [i for i in range(data_at + 1, len(lines)) if _BLOCK_RE.match(lines[i])]
    blocks: list[Block] = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        blocks.append(_parse_block(lines, start, end, len(blocks) + 1, path))
    return TFile(path, prologue, blocks)


def parse_file(path: str | Path) -> TFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TParseError(str(p), 1, f"not UTF-8: {e}") from None
    return parse_text(text, str(p))


def _parse_block(lines: list[str], start: int, end: int, index: int, path: str) -> Block:
    name = lines[start][3:].strip()
    if not name:
        raise TParseError(path, start + 1, "a block needs a name after ===")
    headers = [i for i in range(start + 1, end) if _SECTION_RE.match(lines[i])]
    desc_end = headers[0] if headers else end
    description = "\n".join(lines[start + 1:desc_end]).strip() or name
    block = Block(name=name, description=description, line=start + 1, index=index)
    for k, h in enumerate(headers):
        m = _SECTION_RE.match(lines[h])
        assert m
        sname, rest = m.group(1), m.group(2)
        body_end = headers[k + 1] if k + 1 < len(headers) else end
        body = "".join(ln + "\n" for ln in lines[h + 1:body_end])
        if sname.startswith("_") or sname in RESERVED:
            raise TParseError(path, h + 1, f"section name {sname!r} is reserved")
        inline = bool(re.search(r":(\s|$)", rest))
        if inline:
            if body.strip():
                raise TParseError(path, h + 1, f"extra lines not allowed in inline "
                                               f"section {sname!r}")
            spec, body = _split_inline(rest)
        else:
            spec = rest
        chain = filter_chain(spec)
        unknown = [f for f, _ in chain if f not in FILTERS]
        if unknown:
            raise TParseError(path, h + 1, f"unknown filter(s) {', '.join(unknown)} in "
                                           f"section {sname!r}")
        try:
            value = apply_filters(body, chain)
        except (EvalError, ValueError) as e:
            raise TParseError(path, h + 1, f"section {sname!r}: {e}") from None
        block.sections[sname] = Section(sname, value, body, [f for f, _ in chain],
                                        h + 1, inline)
    return block


def _split_inline(rest: str) -> tuple[str, str]:
    """`filters: value` -> (filters, value) with the value trimmed."""
    parts = re.split(r"\s*:(?:\s+|$)", rest, maxsplit=1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def select_blocks(blocks: list[Block]) -> list[tuple[Block, str | None]]:
    """Apply ONLY / SKIP / FIRST / LAST: each block with `None` (run) or a skip reason."""
    only = [b for b in blocks if b.only]
    out: list[tuple[Block, str | None]] = []
    started = not any(b.first for b in blocks)
    stopped = False
    for b in blocks:
        if b.first:
            started = True
        reason: str | None = None
        if stopped:
            reason = "after a block marked --- LAST"
        elif not started:
            reason = "before the block marked --- FIRST"
        elif only and not b.only:
            reason = "another block is marked --- ONLY"
        elif b.skip:
            reason = "marked --- SKIP"
        out.append((b, reason))
        if b.last and reason is None:
            stopped = True
    return out
