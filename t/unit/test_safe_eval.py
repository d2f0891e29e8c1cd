"""The `eval` filter's evaluator: the literals it accepts and the code it refuses."""

import pytest

from t.lib.safe_eval import EvalError, Regex, perl_regex_to_python, safe_eval


@pytest.mark.parametrize("src, want", [
    ('"hello world\\n"', "hello world\n"),
    ("'a\\nb'", "a\\nb"),
    ("'it\\'s \\\\ ok'", "it's \\ ok"),
    ('"tab\\there\\r\\n"', "tab\there\r\n"),
    ('"\\x41\\x{263A}\\N{U+263A}"', "A\u263a\u263a"),
    ('"\\0\\012\\e"', "\x00\n\x1b"),
    ('"quote \\" dollar \\$ at \\@"', 'quote " dollar $ at @'),
    ('"price: 5$"', "price: 5$"),
    ('"a" . "b" . \'c\'', "abc"),
    ('"ab" x 3', "ababab"),
    ('"\\n" x 2', "\n\n"),
    ('"a" . "-" x 3 . "b"', "a---b"),
    ("q{a {nested} b}", "a {nested} b"),
    ("qq!x\\ty!", "x\ty"),
    ("qq(GET /hello\\n)", "GET /hello\n"),
    ("42", 42),
    ("-1.5", -1.5),
    ("0x1F", 31),
    ("1_000", 1000),
    ("undef", None),
    ('"x";', "x"),
    ('"a" # a comment\n. "b"', "ab"),
])
def test_scalars(src, want):
    assert safe_eval(src) == want


def test_arrays():
    assert safe_eval('["GET /a", "GET /b",]') == ["GET /a", "GET /b"]
    assert safe_eval('[200, [1, "x"], []]') == [200, [1, "x"], []]
    assert safe_eval('[("GET /hello") x 3]') == ["GET /hello"] * 3
    assert safe_eval('["a", ("b", "c") x 2, "d"]') == ["a", "b", "c", "b", "c", "d"]
    assert safe_eval('["x" x 2, 1]') == ["xx", 1]
    assert safe_eval("[\n  'a',\n  # comment\n  'b'\n]\n") == ["a", "b"]


def test_qr():
    r = safe_eval("qr/hello \\w+/")
    assert isinstance(r, Regex)
    assert r.search("say hello world") and not r.search("hello")
    assert safe_eval("qr{a/b}i").search("A/B")
    assert safe_eval("qr!x\\!y!").search("x!y")
    assert str(safe_eval("qr/a.b/s")) == "qr/a.b/s"
    assert safe_eval("qr/a.b/s").search("a\nb")
    assert not safe_eval("qr/a.b/").search("a\nb")
    both = safe_eval('[qr/\\[error\\]/, "plain"]')
    assert isinstance(both[0], Regex) and both[1] == "plain"


def test_regex_translation():
    assert perl_regex_to_python(r"abc\z") == r"abc\Z"
    assert perl_regex_to_python(r"(?<name>x)\k<name>") == r"(?P<name>x)(?P=name)"
    assert perl_regex_to_python(r"\Qa.b\E+") == r"a\.b+"
    assert perl_regex_to_python(r"[\z]") == r"[\z]"
    assert safe_eval(r"qr/^x\h+y$/").search("x \t y")
    assert safe_eval(r"qr/end\Z/").search("the end\n")
    # Perl allows inline flags mid-pattern; they hold to the end of the enclosing group
    assert perl_regex_to_python("(?i)abc") == "(?i)abc"
    assert perl_regex_to_python("a(?s).b") == "a(?s:.b)"
    assert perl_regex_to_python("(x(?i)y)z") == "(x(?i:y))z"
    assert perl_regex_to_python("a(?-i)b") == "a(?-i:b)"
    assert safe_eval("qr/uri\n(?s).*x: 1/").search("uri\na\nb\nx: 1")
    assert not safe_eval("qr/(a(?i)b)C/").search("aBc")
    with pytest.raises(EvalError):
        safe_eval(r"qr/$var/")


def test_heredoc():
    src = '<<"_EOC_" . "tail"\nline 1\\t\nline 2\n_EOC_\n'
    assert safe_eval(src) == "line 1\t\nline 2\ntail"
    assert safe_eval("<<'X'\nraw \\t\nX\n") == "raw \\t\n"
    assert safe_eval("<<~EOT\n    a\n      b\n    EOT\n") == "a\n  b\n"
    assert safe_eval('["a", <<EOT, "c"]\nbody\nEOT\n') == ["a", "body\n", "c"]


@pytest.mark.parametrize("src, fragment", [
    ("$x", "variables are not supported"),
    ('"hello $name"', "variable interpolation"),
    ('"user@example.com"', "variable interpolation"),
    ("system('ls')", "function calls"),
    ("{a => 1}", "hashes"),
    ('"a" + "b"', "unexpected text"),
    ('"unterminated', "unterminated string"),
    ("[1, 2", "missing"),
    ('"a" x "b"', "must be an integer"),
    ("", "empty expression"),
    ('("a", "b")', "only allowed inside"),
    ('"\\U"', "case-changing"),
    ("qr/(/", "bad regex"),
    ("<<EOT\nno end\n", "terminator"),
])
def test_refusals(src, fragment):
    with pytest.raises(EvalError) as e:
        safe_eval(src)
    assert fragment in str(e.value)


def test_error_positions():
    with pytest.raises(EvalError) as e:
        safe_eval('[\n  "ok",\n  $bad\n]')
    assert "line 3, column 3" in str(e.value)
