"""Assertions on responses, exec output and the error log, with Test::Nginx-like reports.

Each check returns a list of failure messages (empty = pass) rather than raising, so that one
block reports *every* mismatch at once and the runner can retry a whole round of requests
while a configuration change propagates. Messages start with the block name and say what was
expected and what came back; bodies are shown as a unified diff.
"""

from __future__ import annotations

import difflib
import re
import time
from typing import Any

from t.lib.registry import BlockFailure, Exchange, Phase, indexed, register
from t.lib.safe_eval import EvalError, Regex

BODY_PREVIEW = 600


def show(value: object, limit: int = BODY_PREVIEW) -> str:
    """A value on one line, escapes visible, long text cut."""
    if isinstance(value, Regex):
        return str(value).replace("\n", "\\n")
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(
        "\t", "\\t")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def body_diff(expected: str, got: str) -> str:
    diff = difflib.unified_diff(expected.splitlines(keepends=True),
                                got.splitlines(keepends=True), "expected", "got", lineterm="")
    out = []
    for line in diff:
        if line.endswith("\n"):
            line = line[:-1]
        elif not line.startswith(("---", "+++", "@@")):
            line += "  \\ (no newline at end)"
        out.append("    " + line)
    return "\n".join(out)


def failure(run: Any, what: str, ex: Exchange | None, **details: object) -> str:
    lines = [f"{run.block.name} - {what}{ex.label() if ex else ''}"]
    if ex is not None:
        lines.append(f"  request: {show(ex.request, 300)}")
    for key, val in details.items():
        if key == "diff":
            lines.append("  diff:\n" + str(val))
        elif key in ("log", "output"):
            lines.append(f"  {key}: {val}")
        elif key == "headers":
            lines.append("  headers:\n" + _indent(str(val).replace("\r\n", "\n").rstrip()))
        else:
            lines.append(f"  {key}: {show(val)}")
    return "\n".join(lines)


def no_response(run: Any, what: str, ex: Exchange) -> str:
    return failure(run, f"{what}: no response", ex, error=ex.error or "(none)")


def to_regex(value: object, flags: str, chomp: bool = False) -> Regex:
    """A section value as a regex; `chomp` drops the newline `trim` leaves on text."""
    try:
        if isinstance(value, Regex):
            return value.with_flags(flags)
        text = str(value)
        if chomp and text.endswith("\n"):
            text = text[:-1]
        return Regex.from_perl(text, flags)
    except EvalError as e:
        raise BlockFailure(str(e)) from None


# -- responses ------------------------------------------------------------------------------

@register("error_code", Phase.ASSERT)
def check_error_code(run: Any, expected: object, ex: Exchange) -> list[str]:
    """Expected status (default 200); an array gives one per request."""
    want = str(indexed(expected, ex, "error_code")).strip()
    if ex.response is None:
        if want == "0":
            return []
        return [failure(run, "status code mismatch", ex, expected=want,
                        got=f"no response ({ex.error})")]
    if str(ex.status) != want:
        return [failure(run, "status code mismatch", ex, expected=want, got=ex.status,
                        body=ex.body or "")]
    return []


@register("error_code_like", Phase.ASSERT)
def check_error_code_like(run: Any, expected: object, ex: Exchange) -> list[str]:
    rx = to_regex(indexed(expected, ex, "error_code_like"), "sm")
    got = "" if ex.status is None else str(ex.status)
    if not rx.search(got):
        return [failure(run, "status code not like expected", ex, expected=rx,
                        got=got or f"no response ({ex.error})")]
    return []


@register("response_body", Phase.ASSERT, applies_to=("http", "exec"))
def check_response_body(run: Any, expected: object, ex: Exchange) -> list[str]:
    """Exact body (a `qr//` from eval means a match)."""
    want = indexed(expected, ex, "response_body")
    got = ex.body
    if got is None:
        return [no_response(run, "response_body", ex)]
    if isinstance(want, Regex):
        if not want.search(got):
            return [failure(run, "response_body does not match", ex, expected=want, got=got)]
        return []
    want = "" if want is None else str(want)
    if got != want:
        return [failure(run, "response_body mismatch", ex, expected=want, got=got,
                        diff=body_diff(want, got))]
    return []


def _like(run: Any, expected: object, ex: Exchange, section: str, negate: bool) -> list[str]:
    rx = to_regex(indexed(expected, ex, section), "s", chomp=True)
    got = ex.body
    if got is None:
        return [no_response(run, section, ex)]
    if bool(rx.search(got)) == negate:
        what = "matches" if negate else "does not match"
        return [failure(run, f"{section}: body {what} the pattern", ex, pattern=rx, got=got)]
    return []


@register("response_body_like", Phase.ASSERT, applies_to=("http", "exec"))
def check_body_like(run: Any, expected: object, ex: Exchange) -> list[str]:
    """Regex (Perl syntax, `s` flag, not anchored) the body must match."""
    return _like(run, expected, ex, "response_body_like", negate=False)


@register("response_body_unlike", Phase.ASSERT, applies_to=("http", "exec"))
def check_body_unlike(run: Any, expected: object, ex: Exchange) -> list[str]:
    return _like(run, expected, ex, "response_body_unlike", negate=True)


def parse_expected_headers(text: object) -> list[tuple[str, str | None]]:
    """`Name: value` lines; `!Name` means absent (value None)."""
    out: list[tuple[str, str | None]] = []
    for line in str(text or "").split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            out.append((line[1:].strip(), None))
            continue
        name, _, value = line.partition(":")
        out.append((name.strip(), value.strip()))
    return out


@register("response_headers", Phase.ASSERT)
def check_response_headers(run: Any, expected: object, ex: Exchange) -> list[str]:
    """`Name: value` must equal (empty = missing or empty); `!Name` must be absent."""
    if ex.response is None:
        return [no_response(run, "response_headers", ex)]
    out = []
    for name, want in parse_expected_headers(indexed(expected, ex, "response_headers")):
        got = ex.response.header(name)
        if want is None:
            if got is not None:
                out.append(failure(run, f"header {name} should be absent", ex, got=got))
        elif (got or "") != want:
            out.append(failure(run, f"header {name} mismatch", ex, expected=want,
                               got="(absent)" if got is None else got,
                               headers=ex.response.raw_headers))
    return out


@register("response_headers_like", Phase.ASSERT)
def check_response_headers_like(run: Any, expected: object, ex: Exchange) -> list[str]:
    """`Name: regex`, anchored at both ends (a missing header is the empty string)."""
    if ex.response is None:
        return [no_response(run, "response_headers_like", ex)]
    out = []
    for name, pat in parse_expected_headers(indexed(expected, ex, "response_headers_like")):
        got = ex.response.header(name) or ""
        rx = to_regex(f"^(?:{pat or ''})$", "")
        if not rx.search(got):
            out.append(failure(run, f"header {name} not like expected", ex, pattern=pat,
                               got=got, headers=ex.response.raw_headers))
    return out


@register("raw_response_headers_like", Phase.ASSERT)
def check_raw_headers_like(run: Any, expected: object, ex: Exchange) -> list[str]:
    if ex.response is None:
        return [no_response(run, "raw_response_headers_like", ex)]
    rx = to_regex(indexed(expected, ex, "raw_response_headers_like"), "s")
    if not rx.search(ex.response.raw_headers):
        return [failure(run, "raw response headers not like expected", ex, pattern=rx,
                        got=ex.response.raw_headers)]
    return []


@register("exit_code", Phase.ASSERT, applies_to=("exec",))
def check_exit_code(run: Any, expected: object, ex: Exchange) -> list[str]:
    """Exit status of `exec` (default 0)."""
    want = str(expected if expected is not None else 0).strip()
    if str(ex.exit_code) != want:
        return [failure(run, "exec exit code mismatch", ex, expected=want, got=ex.exit_code,
                        output="\n" + _indent(ex.output))]
    return []


# -- the error log ---------------------------------------------------------------------------

def log_patterns(value: object) -> list[str | Regex]:
    """Text: one literal per non-empty line; eval: a qr// or an array of strings/qr//."""
    if isinstance(value, Regex):
        return [value]
    if isinstance(value, list):
        return [v if isinstance(v, Regex) else str(v) for v in value if v is not None]
    text = str(value or "")
    return [ln for ln in re.split(r"\n+", text[:-1] if text.endswith("\n") else text) if ln]


def line_matches(line: str, pat: str | Regex) -> bool:
    return bool(pat.search(line)) if isinstance(pat, Regex) else pat in line


def _indent(text: str, n: int = 4) -> str:
    return "\n".join(" " * n + ln for ln in text.splitlines())


def _log_excerpt(lines: list[str], limit: int = 25) -> str:
    if not lines:
        return "\n    (nothing was logged during this block)"
    shown = lines[-limit:]
    more = f"    ... ({len(lines) - limit} earlier lines)\n" if len(lines) > limit else ""
    return "\n" + more + _indent("\n".join(shown))


def await_log_patterns(run: Any, pats: list[str | Regex], timeout: float) -> list[str | Regex]:
    """Poll the block's log until every pattern has a matching line; return the missing."""
    deadline = time.monotonic() + timeout
    while True:
        lines = run.log_lines()
        missing = [p for p in pats if not any(line_matches(ln, p) for ln in lines)]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.05)


@register("error_log", Phase.LOGCHECK)
def check_error_log(run: Any, value: object) -> list[str]:
    """Each line (literal substring, or qr//) must appear in this block's log; polls."""
    missing = await_log_patterns(run, log_patterns(value), run.timeout)
    return [failure(run, f'pattern "{show(p)}" not found in error.log', None,
                    log=_log_excerpt(run.log_lines())) for p in missing]


@register("no_error_log", Phase.LOGCHECK)
def check_no_error_log(run: Any, value: object) -> list[str]:
    """No line of this block's log may match any pattern."""
    out = []
    lines = run.log_lines()
    for p in log_patterns(value):
        hits = [ln for ln in lines if line_matches(ln, p)]
        if hits:
            out.append(failure(run, f'pattern "{show(p)}" should not match any line in '
                                    f'error.log', None, log="\n" + _indent("\n".join(hits[:10]))))
    return out


@register("grep_error_log", Phase.LOGCHECK)
def check_grep_error_log(run: Any, value: object) -> list[str]:
    """The first match of the pattern on each log line, one per line, must equal
    `grep_error_log_out` (text, or a qr// the joined output must match); polls."""
    pat = value if isinstance(value, Regex) else str(value or "").rstrip("\n")
    expected = run.block.get("grep_error_log_out")
    if expected is None:
        return [failure(run, "--- grep_error_log needs --- grep_error_log_out", None)]
    if isinstance(expected, list):
        expected = expected[0] if expected else ""
    deadline = time.monotonic() + run.timeout
    while True:
        got = ""
        for line in run.log_lines():
            if isinstance(pat, Regex):
                m = pat.search(line)
                hit = m.group(0) if m else None
            else:
                hit = pat if pat and pat in line else None
            if hit is not None and "\n" not in hit:
                got += hit + "\n"
        ok = bool(expected.search(got)) if isinstance(expected, Regex) else got == expected
        if ok:
            return []
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    want = expected if isinstance(expected, Regex) else str(expected)
    extra = {} if isinstance(want, Regex) else {"diff": body_diff(want, got)}
    return [failure(run, "grep_error_log_out mismatch", None, pattern=pat, expected=want,
                    got=got, **extra)]
