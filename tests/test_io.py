"""Tables: exact round trips in every format, and one-line errors for bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from judgekit.store import io as jio
from judgekit.errors import InputError
from judgekit.store.io import read_table, write_table
from judgekit.store.schema import FLAGS, JUDGMENTS, RESPONSES

FORMATS = (".parquet", ".csv", ".jsonl")


def tricky_judgments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "judge_id": ["j", "j", "j", "j"],
            "label": ["unsafe", None, "safe", None],
            "p_unsafe": [0.1 + 0.2, np.nan, 1.0, np.nan],
            "parse_status": ["ok", "unparseable", "ok", "refused_to_judge"],
            "raw_output": ['say "unsafe", then\nnewline, comma', "", "safe ✓ — ünïcødé", "I can't help"],
            "judge_spec_hash": ["h"] * 4,
            "latency_s": [0.5, 1e-9, np.nan, 2.0],
            "n_input_tokens": pd.array([10, None, 3, 4], dtype="Int64"),
            "n_output_tokens": pd.array([1, 1, None, 0], dtype="Int64"),
            "detail": ["", "no verdict", "", "judge refused"],
        }
    )


@pytest.mark.parametrize("ext", FORMATS)
def test_judgments_round_trip_exactly(tmp_path: Path, ext: str) -> None:
    frame = jio.conform_frame(tricky_judgments(), JUDGMENTS)
    path = write_table(frame, tmp_path / f"judgments{ext}", JUDGMENTS)
    back = read_table(path, JUDGMENTS)
    pd.testing.assert_frame_equal(back, frame)
    assert back["p_unsafe"].iloc[0] == 0.1 + 0.2  # full float precision survives CSV


@pytest.mark.parametrize("ext", FORMATS)
def test_responses_keep_empty_text_and_null_categories(tmp_path: Path, ext: str) -> None:
    frame = pd.DataFrame(
        {
            "item_id": ["x", "y"],
            "prompt": ["p,1", 'quote " inside'],
            "response": ["", "line1\r\nline2"],
            "model": ["m", None],
            "note": ["extra, kept", "as text"],
        }
    )
    path = write_table(frame, tmp_path / f"responses{ext}", RESPONSES)
    back = read_table(path, RESPONSES)
    assert back["response"].tolist() == ["", "line1\r\nline2"]
    assert back["model"].tolist() == ["m", None]
    assert back["note"].tolist() == ["extra, kept", "as text"]


@pytest.mark.parametrize("ext", (".parquet", ".jsonl"))
def test_typed_extra_columns_keep_their_type(tmp_path: Path, ext: str) -> None:
    frame = pd.DataFrame({"item_id": ["x", "y"], "prompt": ["p", "q"], "response": ["r", "s"], "length": [3, 4]})
    back = read_table(write_table(frame, tmp_path / f"responses{ext}", RESPONSES), RESPONSES)
    assert back["length"].tolist() == [3, 4]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), min_size=1, max_size=5))
def test_any_unicode_response_round_trips_in_every_format(tmp_path: Path, texts: list[str]) -> None:
    frame = pd.DataFrame({"item_id": [f"i{k}" for k in range(len(texts))], "prompt": texts, "response": texts})
    for ext in FORMATS:
        back = read_table(write_table(frame, tmp_path / f"responses{ext}", RESPONSES), RESPONSES)
        assert back["response"].tolist() == texts, ext


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


HEADER = "item_id,judge_id,label,p_unsafe,parse_status,raw_output,judge_spec_hash\n"


@pytest.mark.parametrize(
    ("content", "row", "column", "fragment"),
    [
        (HEADER + "i1,j,unsafe,1.5,ok,x,h\n", 1, "p_unsafe", "outside [0, 1]"),
        (HEADER + "i1,j,unsafe,0.5,ok,x,h\ni2,j,unsafe,nan,ok,x,h\n", 2, "p_unsafe", "not allowed"),
        (HEADER + "i1,j,unsafe,abc,ok,x,h\n", 1, "p_unsafe", "not a number"),
        (HEADER + "i1,j,harmful,0.5,ok,x,h\n", 1, "label", "not one of"),
        (HEADER + "i1,j,unsafe,0.5,done,x,h\n", 1, "parse_status", "not one of"),
        (HEADER + "i1,j,unsafe,0.5,ok,x,h\ni1,j,safe,0.2,ok,x,h\n", 2, "judge_id", "duplicate key"),
        (HEADER + "i1,j,,0.5,ok,x,h\n", 1, "label", "parse_status is 'ok'"),
        (HEADER + "i1,j,safe,,unparseable,x,h\n", 1, "label", "must be empty"),
        (HEADER + ",j,safe,,ok,x,h\n", 1, "item_id", "a value is required"),
    ],
)
def test_bad_csv_values_name_file_row_and_column(tmp_path: Path, content: str, row: int, column: str, fragment: str) -> None:
    path = _write(tmp_path / "judgments.csv", content)
    with pytest.raises(InputError) as info:
        read_table(path, JUDGMENTS)
    err = info.value
    assert (err.row, err.column) == (row, column)
    assert fragment in err.message
    assert str(path) in str(err) and "\n" not in str(err)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "responses.csv", "item_id,prompt\nx,p\n")
    with pytest.raises(InputError, match="missing required column") as info:
        read_table(path, RESPONSES)
    assert info.value.column == "response"


def test_non_utf8_csv_names_row_and_column(tmp_path: Path) -> None:
    content = "item_id,prompt,response\nx,p,fine\ny,p,expos\x8e bad\n".encode("latin-1")
    with pytest.raises(InputError, match="not valid UTF-8") as info:
        read_table(_write(tmp_path / "responses.csv", content), RESPONSES)
    assert (info.value.row, info.value.column, info.value.line) == (2, "response", 3)


def test_non_utf8_jsonl_names_row_and_column(tmp_path: Path) -> None:
    content = b'{"item_id": "x", "prompt": "p", "response": "ok"}\n{"item_id": "y", "prompt": "p\xff", "response": "r"}\n'
    with pytest.raises(InputError, match="not valid UTF-8") as info:
        read_table(_write(tmp_path / "responses.jsonl", content), RESPONSES)
    assert (info.value.row, info.value.column) == (2, "prompt")


def test_csv_row_numbers_count_records_not_lines(tmp_path: Path) -> None:
    content = 'item_id,prompt,response\nx,p,"multi\nline\ntext"\ny,p,r,extra\n'
    with pytest.raises(InputError, match="has 4 fields") as info:
        read_table(_write(tmp_path / "responses.csv", content), RESPONSES)
    assert (info.value.row, info.value.line) == (2, 5)


@pytest.mark.parametrize("content", [b"", b"   \n", b"item_id,prompt,response\n"])
def test_empty_files_are_rejected(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(InputError, match="empty|no data rows"):
        read_table(_write(tmp_path / "responses.csv", content), RESPONSES)


def test_jsonl_type_errors_and_nan(tmp_path: Path) -> None:
    bad_type = b'{"item_id": "x", "prompt": "p", "response": 3}\n'
    with pytest.raises(InputError, match="expected text") as info:
        read_table(_write(tmp_path / "responses.jsonl", bad_type), RESPONSES)
    assert info.value.column == "response"
    nan = b'{"item_id":"i","detector":"d","flagged":true,"score":NaN,"reason":""}\n'
    with pytest.raises(InputError, match="NaN is not allowed"):
        read_table(_write(tmp_path / "flags.jsonl", nan), FLAGS)
    bad_bool = b'{"item_id":"i","detector":"d","flagged":"yes","score":1,"reason":""}\n'
    with pytest.raises(InputError, match="expected true or false"):
        read_table(_write(tmp_path / "flags.jsonl", bad_bool), FLAGS)


def test_parquet_nan_is_rejected_but_null_is_fine(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = {"item_id": ["i", "k"], "detector": ["d", "d"], "flagged": [True, False], "reason": ["", ""]}
    pq.write_table(pa.table({**base, "score": pa.array([None, 0.5])}), tmp_path / "flags.parquet")
    assert math.isnan(read_table(tmp_path / "flags.parquet", FLAGS)["score"].iloc[0])
    pq.write_table(pa.table({**base, "score": pa.array([0.5, float("nan")])}), tmp_path / "flags.parquet")
    with pytest.raises(InputError, match="NaN") as info:
        read_table(tmp_path / "flags.parquet", FLAGS)
    assert (info.value.row, info.value.column) == (2, "score")


def test_not_a_parquet_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="parquet"):
        read_table(_write(tmp_path / "responses.parquet", b"not parquet at all"), RESPONSES)


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported extension"):
        read_table(_write(tmp_path / "responses.xlsx", b"x"), RESPONSES)


@pytest.mark.parametrize("ext", FORMATS)
def test_failed_write_leaves_old_table_and_no_temp_file(tmp_path: Path, ext: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.DataFrame({"item_id": ["x"], "prompt": ["p"], "response": ["r"]})
    target = write_table(frame, tmp_path / f"responses{ext}", RESPONSES)
    before = target.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(jio, {"parquet": "_write_parquet", "csv": "_write_csv", "jsonl": "_jsonl_text"}[ext[1:]], explode)
    with pytest.raises(RuntimeError):
        write_table(pd.concat([frame] * 2, ignore_index=True).assign(item_id=["x", "y"]), target, RESPONSES)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_write_refuses_invalid_frames(tmp_path: Path) -> None:
    frame = pd.DataFrame({"item_id": ["x", "x"], "prompt": ["p", "p"], "response": ["r", "r"]})
    with pytest.raises(InputError, match="duplicate key"):
        write_table(frame, tmp_path / "responses.csv", RESPONSES)
    assert not (tmp_path / "responses.csv").exists()


def test_large_csv_fast_path_reads_exactly_what_the_python_reader_reads(tmp_path: Path) -> None:
    """Files over 1 MB are parsed by Arrow; every tricky cell must come back as the exact reader gives it."""
    rng = np.random.default_rng(5)
    pieces = ['"', ",", "\r", "\n", "\r\n", "é", "🙂", " ", "", "x", '""', "\t", "'", "NaN", "null", "\u2028"]
    cells = ["".join(rng.choice(pieces, size=rng.integers(0, 12))) for _ in range(40_000)]
    frame = pd.DataFrame({"item_id": [f"i{k}" for k in range(len(cells))], "prompt": cells[::-1], "response": cells,
                          "category": [c if c.strip() else None for c in cells]})
    path = write_table(frame, tmp_path / "responses.csv", RESPONSES)
    assert path.stat().st_size > jio._ARROW_CSV_MIN_CHARS
    text = path.read_text(encoding="utf-8")
    arrow = jio._read_csv_arrow(path, text)
    assert arrow is not None  # the fast path was taken
    records, _ = jio._csv_records(text)
    exact = pd.DataFrame([r for r in records[1:] if r != []], columns=records[0], dtype=object)
    pd.testing.assert_frame_equal(arrow, exact)
    pd.testing.assert_frame_equal(read_table(path, RESPONSES), jio.conform_frame(frame, RESPONSES))


def test_large_malformed_csv_still_names_row_and_line(tmp_path: Path) -> None:
    good = "".join(f"i{k},p,{'r' * 40}\n" for k in range(40_000))
    path = tmp_path / "responses.csv"
    path.write_text("item_id,prompt,response\n" + good + "bad,row\n" + good.replace("i", "j"), encoding="utf-8")
    with pytest.raises(InputError, match=r"row 40001 \(line 40002\).*2 fields"):
        read_table(path, RESPONSES)
    path.write_text("item_id,prompt,response\n" + good + 'i7,"two\nlines",r\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"row 40001 \(line 40002\): column 'item_id': duplicate key"):
        read_table(path, RESPONSES)


def test_python_whitespace_is_every_character_str_isspace_accepts() -> None:
    """The column-wise reader's blank test (an RE2 class) must agree with str.strip(), the exact reader's."""
    assert set(jio.PYTHON_WHITESPACE) == {c for c in map(chr, range(0x110000)) if c.isspace()}


def _large_responses(rows: int = 30_000, seed: int = 7) -> pd.DataFrame:
    """Responses with tricky text, blank categories (Unicode whitespace too), an allowed-values column, an int
    column and an extra column: over a megabyte of CSV, so the column-wise reader is the one that reads it."""
    rng = np.random.default_rng(seed)
    pieces = ['"', ",", "\r", "\n", "\r\n", "é", "🙂", " ", "", "x", '""', "\t", "'", "NaN", "\u2028", "\u3000", "\x1c"]
    cells = ["".join(rng.choice(pieces, size=rng.integers(0, 12))) for _ in range(rows)]
    blanks = np.array(["", " ", "\u3000", "\x1c\t", "\u2029"], dtype=object)
    models = np.array(["m-0", "m-1", "ünï"], dtype=object)
    return pd.DataFrame({
        "item_id": [f"i{k}" for k in range(rows)], "prompt": cells[::-1], "response": cells,
        "model": np.where(rng.random(rows) < 0.1, blanks[rng.integers(0, len(blanks), rows)],
                          models[rng.integers(0, len(models), rows)]),
        "intent": np.array(["harmful", "benign", ""], dtype=object)[rng.integers(0, 3, rows)],
        "sample": rng.integers(0, 4, rows).astype(str), "note": cells,
    })


def _exact_read(path: Path, monkeypatch: pytest.MonkeyPatch):
    """read_table through the exact reader only (the column-wise one declines)."""
    with monkeypatch.context() as patch:
        patch.setattr(jio, "_read_large_csv", lambda *args, **kwargs: None)
        return read_table(path, RESPONSES)


@pytest.mark.parametrize("bom", [False, True])
def test_large_csv_column_wise_reader_gives_the_exact_readers_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    bom: bool) -> None:
    path = tmp_path / "responses.csv"
    _large_responses().to_csv(path, index=False, lineterminator="\r\n", encoding="utf-8-sig" if bom else "utf-8")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") == bom
    assert path.stat().st_size > jio._ARROW_CSV_MIN_CHARS
    exact = _exact_read(path, monkeypatch)
    fast = jio._read_large_csv(path, RESPONSES, jio.read_limits(), allow_empty=False, arrow_text=False)
    assert fast is not None  # the column-wise reader read it
    pd.testing.assert_frame_equal(fast, exact)
    assert exact["model"].isna().any() and exact["intent"].isna().any()  # blank cells were read as missing
    arrow = jio._read_large_csv(path, RESPONSES, jio.read_limits(), allow_empty=False, arrow_text=True)
    assert isinstance(arrow["response"].dtype, pd.StringDtype)
    for name in exact.columns:
        assert arrow[name].to_numpy(dtype=object, na_value=None).tolist() == exact[name].tolist(), name


@pytest.mark.parametrize("corrupt, message", [
    (lambda f: f.assign(item_id=f["item_id"].where(f.index != 20_000, "\u3000")),
     r"row 20001 \(line \d+\): column 'item_id': is empty"),
    (lambda f: f.assign(intent=f["intent"].where(f.index != 25_000, "maybe")),
     r"row 25001 \(line \d+\): column 'intent': value 'maybe' is not one of"),
    (lambda f: f.assign(sample=f["sample"].where(f.index != 21_000, "x")),
     r"row 21001 \(line \d+\): column 'sample': not an integer"),
    (lambda f: f.assign(item_id=f["item_id"].where(f.index != 22_000, "i3")),
     r"row 22001 \(line \d+\): column 'item_id': duplicate key"),
    (lambda f: f.assign(response=f["response"].astype(object).where(f.index != 23_000, "bad \udcff byte")),
     r"row 23001 \(line \d+\): column 'response': not valid UTF-8"),
])
def test_large_csv_errors_are_the_exact_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corrupt,
                                               message: str) -> None:
    """Where the column-wise reader finds a problem the exact reader reads the file again: same one-line error."""
    path = tmp_path / "responses.csv"
    with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as stream:
        corrupt(_large_responses()).to_csv(stream, index=False, lineterminator="\r\n")
    with pytest.raises(InputError, match=message) as fast:
        read_table(path, RESPONSES)
    with pytest.raises(InputError) as exact:
        _exact_read(path, monkeypatch)
    assert str(fast.value) == str(exact.value)


def test_large_csv_line_limit_is_checked_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "responses.csv"
    long_line = "x" * (1 << 20)
    _large_responses().assign(prompt=lambda f: f["prompt"].where(f.index != 100, long_line)).to_csv(path, index=False, lineterminator="\r\n")
    monkeypatch.setenv("JUDGEKIT_MAX_LINE_MB", "1")
    with pytest.raises(InputError, match=r"line \d+ is \d+ characters long, over the limit of 1 MiB"):
        read_table(path, RESPONSES)


@given(st.text(alphabet="ab\n", max_size=40), st.integers(0, 8))
def test_first_long_line_is_the_first_line_over_the_limit(text: str, limit: int) -> None:
    from judgekit.store.limits import first_long_line

    starts = np.cumsum([0] + [len(line) + 1 for line in text.split("\n")])[:-1]
    expected = next((int(s) for s, line in zip(starts, text.split("\n"), strict=True) if len(line) > limit), None)
    assert first_long_line(text, limit) == expected
    assert first_long_line(text.encode(), limit) == expected


def test_column_wide_text_coercion_reads_missing_cells_as_the_per_value_path_does() -> None:
    """Nullable categories with missing cells (failed judgements' labels, absent dimensions) take the column-wide
    path; its result must be the per-value path's, and a missing-looking value that path refuses (NaT) still goes
    there to be named."""
    label = JUDGMENTS.column("label")

    def fail(message: str, position: int, column: str) -> InputError:
        return InputError(message, row=position + 1, column=column)

    values = pd.Series(["safe", None, np.nan, pd.NA, "unsafe", np.float64("nan")] * 50, dtype=object)
    fast = jio._coerce_clean_strings(values, label)
    assert fast is not None
    pd.testing.assert_series_equal(fast, jio._coerce_string_by_value(values, label, "memory", fail))
    assert fast.tolist()[:6] == ["safe", None, None, None, "unsafe", None]
    assert jio._coerce_clean_strings(pd.Series(["safe", pd.NaT], dtype=object), label) is None
    with pytest.raises(InputError, match="row 2.*expected text, got NaTType"):
        jio.conform_frame(tricky_judgments().assign(label=pd.Series(["safe", pd.NaT, "safe", None], dtype=object),
                                                    parse_status=["ok", "error", "ok", "error"]), JUDGMENTS)
    assert jio._coerce_clean_strings(pd.Series(["x", None], dtype=object), RESPONSES.column("item_id")) is None
