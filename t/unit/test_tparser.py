"""The Test::Base grammar as our parser reads it (spec §11)."""

import textwrap

import pytest

from t.lib.safe_eval import Regex
from t.lib.tparser import (TParseError, filter_chain, parse_file, parse_prologue, parse_text,
                           select_blocks)


def parse(text: str):
    return parse_text(textwrap.dedent(text).lstrip("\n"), "x.t")


BASIC = """
    use t::APISIX 'no_plan';
    # a comment: repeat_each(7);
    repeat_each(2);
    no_long_string();
    no_shuffle();
    log_level('debug');
    workers(4);
    add_block_preprocessor(sub {
        my ($block) = @_;
    });
    run_tests;

    __DATA__

    === TEST 1: sanity
    --- request
    GET /hello
    --- response_body
    hello world



    === TEST 2:   spaces kept inside   
    some description
    spanning two lines
    --- request
    POST /echo
    body line 1
    body line 2


    --- error_code: 201
    --- more_headers
    X-A: 1
    X-B: 2
    """


def test_blocks_and_sections():
    f = parse(BASIC)
    assert [b.name for b in f.blocks] == ["TEST 1: sanity", "TEST 2:   spaces kept inside"]
    b1, b2 = f.blocks
    assert b1.index == 1 and b2.index == 2
    assert b1.line == 15 and b2.line == 23
    assert b1.get("request") == "GET /hello\n"
    assert b1.get("response_body") == "hello world\n"   # trim: exactly one newline left
    assert b1.sections["response_body"].line == 18
    assert b1.description == b1.name                     # no description: the name
    assert b2.description == "some description\nspanning two lines"
    assert b2.get("request") == "POST /echo\nbody line 1\nbody line 2\n"
    assert b2.get("error_code") == "201"
    assert b2.sections["error_code"].inline
    assert b2.get("more_headers") == "X-A: 1\nX-B: 2\n"
    assert b2.get("missing", "dflt") == "dflt"


def test_prologue():
    pro = parse(BASIC).prologue
    assert pro.repeat_each == 2 and pro.no_shuffle and pro.log_level == "debug"
    assert pro.workers == 4
    assert ("no_long_string", []) in pro.calls
    assert parse_prologue("").repeat_each == 1
    assert parse_prologue("repeat_each(0);").repeat_each == 1
    assert parse_prologue("worker_connections(128);").worker_connections == 128


def test_inline_values():
    f = parse("""
        __DATA__
        === TEST 1: inline
        --- error_log: failed to connect: refused
        --- timeout: 1.5
        --- error_code eval: [200, 404]
        --- request: GET /a
        --- empty:
        """)
    b = f.blocks[0]
    assert b.get("error_log") == "failed to connect: refused"
    assert b.get("timeout") == "1.5"
    assert b.get("error_code") == [200, 404]
    assert b.get("request") == "GET /a"
    assert b.get("empty") == ""


def test_inline_with_body_is_an_error():
    with pytest.raises(TParseError) as e:
        parse("""
            __DATA__
            === TEST 1: x
            --- error_code: 200
            500
            """)
    assert e.value.line == 3 and "extra lines" in str(e.value)
    assert str(e.value).startswith("x.t:3:")


def test_filters():
    f = parse('''
        __DATA__
        === TEST 1: filters
        --- a chomp
        text
        --- b eval
        "x\\n" x 2
        --- c eval
        [qr/err/, "lit"]
        --- d chop
        abc
        --- e -trim
        
        keep
        
        --- f
        
        
          indented
        trailing   
        --- g eval chomp
        ["a\\n", "b"]
        --- h lines
        l1
        l2
        --- i base64_encode chomp
        hi
        ''')
    b = f.blocks[0]
    assert b.get("a") == "text"
    assert b.get("b") == "x\nx\n"
    c = b.get("c")
    assert isinstance(c[0], Regex) and c[1] == "lit"
    assert b.get("d") == "abc"           # chop removes the newline
    assert b.get("e") == "\nkeep\n\n"    # no trim: leading/trailing blank lines stay
    assert b.get("f") == "  indented\ntrailing   \n"
    assert b.get("g") == ["a", "b"]
    assert b.get("h") == ["l1\n", "l2\n"]
    assert b.get("i") == "aGkK"                # "hi\n" encoded, then chomped
    assert b.sections["b"].filters == ["norm", "trim", "eval"]


def test_filter_chain_rules():
    assert filter_chain("") == [("norm", None), ("trim", None)]
    assert filter_chain("-trim eval") == [("norm", None), ("eval", None)]
    assert filter_chain("+chomp eval") == [("norm", None), ("trim", None), ("eval", None),
                                           ("chomp", None)]
    assert filter_chain("join=,") == [("norm", None), ("trim", None), ("join", ",")]


def test_crlf_is_normalised():
    f = parse_text("__DATA__\r\n=== TEST 1: crlf\r\n--- response_body\r\nok\r\n", "c.t")
    assert f.blocks[0].get("response_body") == "ok\n"


def test_unknown_filter_and_bad_eval_report_the_line():
    with pytest.raises(TParseError) as e:
        parse("""
            __DATA__
            === TEST 1: x
            --- request
            GET /
            --- response_body nosuchfilter
            x
            """)
    assert e.value.line == 5 and "nosuchfilter" in e.value.message
    with pytest.raises(TParseError) as e:
        parse("""
            __DATA__
            === TEST 1: x
            --- request eval
            system("rm -rf /")
            """)
    assert e.value.line == 3 and "function calls" in e.value.message


def test_reserved_and_underscore_names():
    for name in ("_private", "name", "description"):
        with pytest.raises(TParseError):
            parse(f"""
                __DATA__
                === TEST 1: x
                --- {name}
                v
                """)


def test_section_name_in_parentheses_and_repeat_last_wins():
    f = parse("""
        __DATA__
        === TEST 1: x
        --- (request)
        GET /a
        --- error_code: 200
        --- error_code: 404
        """)
    b = f.blocks[0]
    assert b.get("request") == "GET /a\n"
    assert b.get("error_code") == "404"


def test_not_a_section_header():
    f = parse("""
        __DATA__
        === TEST 1: yaml bodies keep their own markers
        --- apisix_yaml
        ---
        routes: []
        ---bad
        #END
        """)
    assert f.blocks[0].get("apisix_yaml") == "---\nroutes: []\n---bad\n#END\n"


def test_text_before_first_block_and_no_data():
    f = parse("""
        __DATA__

        stray text is ignored
        === TEST 1: only
        --- request
        GET /
        """)
    assert len(f.blocks) == 1
    with pytest.raises(TParseError) as e:
        parse("=== TEST 1: no data marker\n")
    assert "__DATA__" in str(e.value)
    assert parse("__END__\n=== TEST 1: end marker\n").blocks[0].name == "TEST 1: end marker"
    assert parse("__DATA__\n").blocks == []
    with pytest.raises(TParseError):
        parse("__DATA__\n===\n")


def test_last_line_without_newline():
    f = parse_text("__DATA__\n=== TEST 1: x\n--- error_code: 404\n--- ONLY", "n.t")
    assert f.blocks[0].only and f.blocks[0].get("error_code") == "404"


SELECT = """__DATA__
=== TEST 1: a
=== TEST 2: b
--- SKIP
=== TEST 3: c
=== TEST 4: d
"""


def _reasons(text: str) -> list:
    return [(b.index, r) for b, r in select_blocks(parse_text(text, "s.t").blocks)]


def test_skip():
    r = _reasons(SELECT)
    assert r == [(1, None), (2, "marked --- SKIP"), (3, None), (4, None)]


def test_only():
    r = _reasons(SELECT.replace("=== TEST 3: c", "=== TEST 3: c\n--- ONLY"))
    assert [i for i, reason in r if reason is None] == [3]
    assert "ONLY" in dict(r)[1]


def test_last_and_first():
    r = _reasons(SELECT.replace("=== TEST 3: c", "=== TEST 3: c\n--- LAST"))
    assert [i for i, reason in r if reason is None] == [1, 3]
    r = _reasons(SELECT.replace("=== TEST 3: c", "=== TEST 3: c\n--- FIRST"))
    assert [i for i, reason in r if reason is None] == [3, 4]


def test_example_file_parses():
    f = parse_file("/work/shared/examples/key-auth.t")
    assert len(f.blocks) == 6 and f.prologue.no_shuffle
    assert f.blocks[4].get("pipelined_requests") == ["GET /hello?apikey=auth-one"] * 2
