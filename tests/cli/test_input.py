"""Prompt files: formats, defaults, invalid rows with line numbers, hostile bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink.cli._input import MAX_LINE_BYTES, Defaults, InputError, read_prompt_file


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_text_skips_blanks_and_comments(tmp_path):
    """A text file is a prompt a line; blank lines and # comments are skipped, lines kept."""
    path = _write(
        tmp_path, "p.txt", "# header\n\na red fox\n   \n  # indented comment\nblue sea \n"
    )
    rows = read_prompt_file(path, Defaults(size="1:1", n=2)).rows
    assert [(r.index, r.line, r.prompt) for r in rows] == [(0, 3, "a red fox"), (1, 6, "blue sea")]
    assert rows[0].request is not None
    assert (rows[0].request.size, rows[0].request.n) == ("1:1", 2)


def test_jsonl_fields_and_model_extras(tmp_path):
    """JSONL rows set their own fields; other fields are the model's params; defaults fill in."""
    path = _write(
        tmp_path,
        "p.jsonl",
        '{"prompt": "fox", "size": "2:3", "n": 4}\n\n"just a string"\n'
        '{"prompt": "cat", "model": "qwen-image-3.0", "seed": 7, "image_urls": ["https://x.test/a.png"]}\n',
    )
    rows = read_prompt_file(path, Defaults(size="1:1")).rows
    bodies = [r.request.to_body() for r in rows if r.request is not None]
    assert bodies == [
        {"model": "gpt-image-2", "prompt": "fox", "size": "2:3", "n": 4},
        {"model": "gpt-image-2", "prompt": "just a string", "size": "1:1"},
        {
            "model": "qwen-image-3.0",
            "prompt": "cat",
            "size": "1:1",
            "image_urls": ["https://x.test/a.png"],
            "seed": 7,
        },
    ]
    assert [r.line for r in rows] == [1, 3, 4]


def test_csv_columns_and_types(tmp_path):
    """CSV reads a header; n and model fields become numbers, image_urls splits on | or space."""
    path = _write(
        tmp_path,
        "p.csv",
        'prompt,size,n,image_urls,seed\n"a fox, in snow",1:1,2,https://a.test/1.png|https://a.test/2.png,42\n'
        "\n"
        "plain,,,,\n",
    )
    rows = read_prompt_file(path, Defaults(model="qwen-image-3.0")).rows
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].request is not None
    assert rows[0].request.to_body() == {
        "model": "qwen-image-3.0",
        "prompt": "a fox, in snow",
        "size": "1:1",
        "n": 2,
        "image_urls": ["https://a.test/1.png", "https://a.test/2.png"],
        "seed": 42,
    }
    assert rows[1].request is not None
    assert rows[1].request.to_body() == {"model": "qwen-image-3.0", "prompt": "plain"}


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        pytest.param(
            "p.jsonl", '{"prompt": "ok"}\n{"prompt": \n', 2, "not valid JSON", id="jsonl-bad-json"
        ),
        pytest.param(
            "p.jsonl", '{"prompt": "ok"}\n[1, 2]\n', 2, "expected a JSON object", id="jsonl-array"
        ),
        pytest.param(
            "p.jsonl", '{"size": "1:1"}\n', 1, "prompt: is required", id="jsonl-no-prompt"
        ),
        pytest.param(
            "p.jsonl",
            '{"prompt": "x", "model": "gpt-image-1.5", "size": "9:9"}\n',
            1,
            "size",
            id="bad-size",
        ),
        pytest.param("p.jsonl", '{"prompt": "x", "n": 11}\n', 1, "n: is 11", id="bad-n"),
        pytest.param("p.jsonl", '{"prompt": 5}\n', 1, "prompt: must be a str", id="prompt-type"),
        pytest.param(
            "p.csv", "prompt,size\nok,1:1\nextra,1:1,oops\n", 3, "expected 2 cells", id="csv-cells"
        ),
        pytest.param(
            "p.csv", "prompt,model,size\nok,gpt-image-1.5,5:5\n", 2, "size", id="csv-bad-size"
        ),
        pytest.param("p.txt", "ok\n" + "x" * 32001 + "\n", 2, "max_length", id="txt-too-long"),
    ],
)
def test_invalid_rows_carry_line_numbers(tmp_path, name, content, line, message):
    """An invalid row is reported with its line, and other rows stay valid."""
    rows = read_prompt_file(_write(tmp_path, name, content), Defaults()).rows
    invalid = [r for r in rows if not r.valid]
    assert [r.line for r in invalid] == [line]
    assert message in (invalid[0].error or "")


def test_csv_without_prompt_column(tmp_path):
    """A CSV with no prompt column is one malformed row at line 1 (nothing else is read)."""
    prompts = read_prompt_file(_write(tmp_path, "p.csv", "text,size\nfox,1:1\n"), Defaults())
    assert [(1, "the CSV header has no 'prompt' column")] == [
        (r.line, r.error) for r in prompts.malformed
    ]
    assert prompts.rows == prompts.malformed


@pytest.mark.parametrize(
    ("content", "line"),
    [
        pytest.param('prompt\nfine\n"a fox\nan owl\na heron\n', 3, id="open-quote-one-column"),
        pytest.param(
            'size,prompt\n1:1,fine\n1:1,"a fox\n2:3,an owl\n', 3, id="open-quote-last-column"
        ),
        pytest.param('prompt,size\n"a fox" in snow,1:1\n', 2, id="text-after-closing-quote"),
    ],
)
def test_malformed_csv_is_refused_with_its_line(tmp_path, content, line):
    """A quote left open (or text after a closing quote) is a malformed row at its line,
    and the file is read no further: the lenient reader merged every later line into one
    prompt, a valid one."""
    prompts = read_prompt_file(_write(tmp_path, "p.csv", content), Defaults())
    [broken] = prompts.malformed
    assert (line, prompts.rows[-1]) == (broken.line, broken)
    assert (broken.error or "").startswith("malformed CSV")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("p.jsonl", '{"prompt": "ok"}\n{"prompt": \n', id="jsonl-not-json"),
        pytest.param("p.jsonl", '{"prompt": "ok"}\n[1]\n', id="jsonl-not-an-object"),
        pytest.param("p.csv", "prompt,size\nx,1:1,extra\nok,1:1\n", id="csv-cell-count"),
    ],
)
def test_broken_lines_are_malformed_not_just_invalid(tmp_path, name, content):
    """A line whose structure is broken is marked malformed (no --skip-invalid for it); a
    row whose values are wrong is not."""
    prompts = read_prompt_file(_write(tmp_path, name, content), Defaults())
    assert [2] == [row.line for row in prompts.malformed]
    values = read_prompt_file(_write(tmp_path, "v.jsonl", '{"prompt": "x", "n": 11}\n'), Defaults())
    assert values.invalid
    assert () == values.malformed


def test_broken_encoding_names_the_line(tmp_path):
    """A file that is not UTF-8 is refused with the line of the first bad byte."""
    path = _write(tmp_path, "p.txt", b"fine\nalso fine\nbad \xff byte\n")
    with pytest.raises(InputError, match=r"p.txt:3: not UTF-8 \(byte 0xff\)"):
        read_prompt_file(path, Defaults())


def test_bom_is_ignored(tmp_path):
    """A UTF-8 byte-order mark does not end up in the first prompt."""
    rows = read_prompt_file(_write(tmp_path, "p.txt", "\ufefffox\n".encode()), Defaults()).rows
    assert [r.prompt for r in rows] == ["fox"]


def test_prompt_lines_split_at_newlines_only(tmp_path):
    """A prompt holding U+2028 or a form feed stays one prompt; JSON with U+2028 stays one row."""
    text = tmp_path / "p.txt"
    text.write_text("a fox\u2028in snow\nan owl\fat night\n", encoding="utf-8")
    assert ["a fox\u2028in snow", "an owl\fat night"] == [
        r.prompt for r in read_prompt_file(text, Defaults()).rows
    ]
    lines = tmp_path / "p.jsonl"
    lines.write_text(json.dumps({"prompt": "a\u2028b"}, ensure_ascii=False) + "\n", "utf-8")
    rows = read_prompt_file(lines, Defaults()).rows
    assert [(True, 1)] == [(r.valid, r.line) for r in rows]


def test_huge_line_is_refused(tmp_path):
    """A line over the limit stops the read with its line number (no megabyte prompt sent)."""
    path = _write(tmp_path, "p.txt", "ok\n" + "y" * (MAX_LINE_BYTES + 1) + "\n")
    with pytest.raises(InputError, match=r"p.txt:2: line is over"):
        read_prompt_file(path, Defaults())


def test_missing_file(tmp_path):
    """A missing file is an InputError, not a traceback."""
    with pytest.raises(InputError, match="cannot read"):
        read_prompt_file(tmp_path / "nope.txt", Defaults())


def test_fingerprint_changes_with_input(tmp_path):
    """The fingerprint tells two inputs apart (so --resume refuses a changed file)."""
    one = read_prompt_file(_write(tmp_path, "a.txt", "fox\n"), Defaults())
    same = read_prompt_file(_write(tmp_path, "b.txt", "# c\nfox\n"), Defaults())
    other = read_prompt_file(_write(tmp_path, "c.txt", "fox\n"), Defaults(size="1:1"))
    assert one.fingerprint() == same.fingerprint()
    assert one.fingerprint() != other.fingerprint()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30), max_size=8)
)
def test_text_rows_match_nonblank_lines(tmp_path_factory, lines):
    """Any text file: one row per non-blank, non-comment line, in order, never a crash."""
    path = tmp_path_factory.mktemp("h") / "p.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    text = path.read_text(encoding="utf-8-sig")
    expected = [
        line.strip()
        for line in re.split(r"\r\n|\r|\n", text)  # newlines only, not U+2028 and kin
        if line.strip() and not line.strip().startswith("#")
    ]
    rows = read_prompt_file(path, Defaults()).rows
    assert [r.prompt for r in rows] == expected
    assert [r.index for r in rows] == list(range(len(expected)))


@pytest.mark.parametrize(
    "name", ["animals.txt", "mixed.jsonl", "products.csv"], ids=lambda name: name
)
def test_example_prompt_files_are_valid(name):
    """The sample prompt files shipped in examples/prompts/ read without an invalid row."""
    path = Path(__file__).parents[2] / "examples" / "prompts" / name
    rows = read_prompt_file(path, Defaults()).rows
    assert rows
    assert [r for r in rows if not r.valid] == []


def test_csv_huge_field_names_its_line(tmp_path):
    """A 200 KB CSV cell is read (the limit is the text line's) and refused at its line."""
    path = _write(tmp_path, "p.csv", 'prompt\nfine\n"' + "z" * 200_000 + '"\nlater\n')
    rows = read_prompt_file(path, Defaults()).rows
    assert [True, False, True] == [row.valid for row in rows]
    assert rows[1].line == 3
    assert "prompt" in (rows[1].error or "")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            '{"prompt": "a", "image_urls": "https://x.test/1.png", "n": 2.0}\n',
            {"prompt": "a", "image_urls": ["https://x.test/1.png"], "n": 2},
            id="single-url-and-float-n",
        ),
        pytest.param(
            '{"prompt": "a", "quality": "high", "background": "transparent"}\n',
            {"prompt": "a", "quality": "high", "background": "transparent"},
            id="model-fields",
        ),
    ],
)
def test_jsonl_lenient_shapes(tmp_path, content, expected):
    """A single URL string and an integral float `n` are accepted as what they mean."""
    [row] = read_prompt_file(_write(tmp_path, "p.jsonl", content), Defaults()).rows
    assert row.request is not None
    assert {"model": "gpt-image-2", **expected} == row.request.to_body()


def test_jsonl_image_urls_must_be_a_list(tmp_path):
    """image_urls that is neither a URL nor a list is an invalid row."""
    [row] = read_prompt_file(
        _write(tmp_path, "p.jsonl", '{"prompt": "a", "image_urls": 5}\n'), Defaults()
    ).rows
    assert "image_urls: must be a list of URLs" in (row.error or "")


def test_csv_text_cells_stay_text(tmp_path):
    """A model field that is not a number stays a string; an empty file has no rows."""
    [row] = read_prompt_file(
        _write(tmp_path, "p.csv", "prompt,quality\nfox,high\n"), Defaults()
    ).rows
    assert row.request is not None
    assert row.request.params == {"quality": "high"}
    assert read_prompt_file(_write(tmp_path, "e.csv", ""), Defaults()).rows == ()


def test_csv_broken_header(tmp_path):
    """A header whose quote never closes is one malformed row at line 1."""
    path = _write(tmp_path, "p.csv", '"prompt\n' + "x" * 200_000 + "\n")
    [row] = read_prompt_file(path, Defaults()).rows
    assert (1, True) == (row.line, row.malformed)
    assert "header" in (row.error or "")
