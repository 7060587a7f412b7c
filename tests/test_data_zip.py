"""Zip submissions: layouts, and refusal of unsafe archives before anything is decompressed."""

from __future__ import annotations

import stat
import zipfile

import pytest

from risklab.data import SubmissionError, load_submission
from risklab.data.schema import MAX_ZIP_COMPRESSION_RATIO, MAX_ZIP_MEMBERS, ZIP_RATIO_MIN_BYTES
from tests.data_fixtures import submission_files, write_files, write_zip


def _zip_with(tmp_path, extra: list[tuple[zipfile.ZipInfo | str, bytes]], folder=None):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in submission_files().items():
            zf.writestr(f"{folder}/{name}" if folder else name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return path


def _problems(path, **kw):
    with pytest.raises(SubmissionError) as info:
        load_submission(path, **kw)
    return info.value.problems


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        pytest.param("../evil.csv", "escapes the archive", id="zip slip"),
        pytest.param("sub/../../evil.csv", "escapes the archive", id="zip slip nested"),
        pytest.param("/etc/listings.csv", "absolute path", id="absolute"),
        pytest.param("C:/listings.csv", "absolute path", id="drive letter"),
        pytest.param("inner.zip", "nested archive", id="nested zip"),
        pytest.param("appeals.csv.gz", "nested archive", id="gzip member"),
        pytest.param(_symlink_info("appeals.csv"), "symbolic link", id="symlink"),
    ],
)
def test_unsafe_members_refused(tmp_path, member, fragment):
    path = _zip_with(tmp_path, [(member, b"category,period\n")])
    problems = _problems(path)
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member
    assert [p.file for p in problems] == ["s.zip"]
    assert f"member '{name}'" in problems[0].message and fragment in problems[0].message


def test_encrypted_member_refused(tmp_path):
    path = _zip_with(tmp_path, [("appeals.csv", b"category,period,appeals,overturned\n")])
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # central directory entry of the last member
    data[central + 8] |= 0x1  # general purpose flag: encrypted
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("appeals.csv").flag_bits & 0x1
    problems = _problems(path)
    assert len(problems) == 1 and "encrypted" in problems[0].message


def test_decompression_bomb_refused(tmp_path):
    size = 2 * ZIP_RATIO_MIN_BYTES
    path = _zip_with(tmp_path, [("appeals.csv", b"0" * size)])
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("appeals.csv")
        assert info.file_size / info.compress_size > MAX_ZIP_COMPRESSION_RATIO
    problems = _problems(path)
    assert len(problems) == 1 and "possible decompression bomb" in problems[0].message


def test_small_compressible_member_is_not_a_bomb(tmp_path):
    """Below ZIP_RATIO_MIN_BYTES a high ratio is harmless (and common for repetitive CSVs)."""
    files = submission_files()
    files["listings.csv"] = files["listings.csv"] + b"\n" * 50_000  # blank lines: ignored
    path = write_zip(tmp_path / "s.zip", files)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("listings.csv")
        assert info.file_size / info.compress_size > MAX_ZIP_COMPRESSION_RATIO
    assert load_submission(path) == load_submission(write_files(tmp_path / "d", files))


def test_too_many_members(tmp_path):
    extra = [(f"docs/{i}.txt", b"x") for i in range(MAX_ZIP_MEMBERS)]
    problems = _problems(_zip_with(tmp_path, extra))
    assert len(problems) == 1
    assert f"at most {MAX_ZIP_MEMBERS}" in problems[0].message


def test_member_and_total_size_limits(tmp_path, monkeypatch):
    monkeypatch.setattr("risklab.data._io.MAX_MEMBER_BYTES", 300)
    path = write_zip(tmp_path / "s.zip", submission_files())
    problems = _problems(path)
    assert any(
        "'detections.csv'" in p.message and "at most 300 bytes" in p.message for p in problems
    )
    monkeypatch.setattr("risklab.data._io.MAX_MEMBER_BYTES", 10**6)
    monkeypatch.setattr("risklab.data._io.MAX_TOTAL_BYTES", 1000)
    problems = _problems(path)
    assert any("members total" in p.message for p in problems)


def test_directory_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("risklab.data._io.MAX_MEMBER_BYTES", 300)
    problems = _problems(write_files(tmp_path / "d", submission_files()))
    assert ("detections.csv", None, None) in [(p.file, p.row, p.column) for p in problems]


def test_two_top_level_folders(tmp_path):
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in submission_files().items():
            zf.writestr(f"a/{name}", data)
        zf.writestr("b/notes.txt", b"x")
    problems = _problems(path)
    assert "a/listings.csv" in {p.file for p in problems}
    assert all("unexpected folder" in p.message for p in problems if p.file.startswith("a/"))


def test_unknown_member_in_folder_layout(tmp_path):
    path = _zip_with(tmp_path, [("sub/extra.csv", b"x")], folder="sub")
    problems = _problems(path)
    assert [(p.file, p.row) for p in problems] == [("extra.csv", None)]
    assert "unknown file" in problems[0].message


def test_corrupt_member(tmp_path):
    path = write_zip(tmp_path / "s.zip", submission_files())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("detections.csv")
    start = info.header_offset + 30 + len(info.filename) + 5  # inside its compressed data
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = _problems(path)
    assert ("detections.csv", None, None) in [(p.file, p.row, p.column) for p in problems]


def test_not_a_zip(tmp_path):
    path = tmp_path / "s.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    problems = _problems(path)
    assert problems[0].file == "s.zip"


def test_evidence_zip_is_checked_too(tmp_path):
    ev = tmp_path / "ev.zip"
    with zipfile.ZipFile(ev, "w") as zf:
        zf.writestr("../audits.csv", b"x")
    sub = write_files(tmp_path / "d", submission_files())
    problems = _problems(sub, evidence=ev)
    assert problems[0].file == "evidence/ev.zip" and "escapes" in problems[0].message
