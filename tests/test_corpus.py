from pathlib import Path

import pytest

from policyqa.errors import NotFoundError, TooLargeError, UploadError
from policyqa.ingest import corpus
from policyqa.ingest import loaders as ingest

TEXT = "关于数据安全的通知\n\n一、总体要求\n各单位应当加强数据安全管理。\n".encode()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../x.txt", "x.txt"),
        ("..\\..\\windows\\x.txt", "x.txt"),
        ("/etc/passwd", "passwd.txt"),
        (".hidden.md", "hidden.md"),
        ("通知\x00<>|.TXT", "通知.txt"),
        ("季度\x07报告.md", "季度_报告.md"),
        ("", "document.txt"),
        ("...", "document.txt"),
        ("报告.pdf", "报告.txt"),  # the content is text, whatever the name says
        ("a" * 300 + ".txt", "a" * 116 + ".txt"),
    ],
)
def test_safe_names_stay_inside_and_follow_the_content(name: str, expected: str) -> None:
    assert corpus.safe_name(name, TEXT) == expected


def test_content_decides_the_type() -> None:
    assert corpus.safe_name("x.txt", b"%PDF-1.4 ...") == "x.pdf"
    assert corpus.safe_name("page.htm", b"<!DOCTYPE html><html><body>x</body></html>") == "page.htm"
    with pytest.raises(UploadError, match="neither text"):
        corpus.safe_name("x.txt", b"\x00\x01\x02" * 100)


def test_check_refuses_large_empty_and_unreadable() -> None:
    with pytest.raises(TooLargeError, match="limit is 10 bytes"):
        corpus.check("a.txt", TEXT, max_bytes=10)
    with pytest.raises(UploadError, match="empty"):
        corpus.check("a.txt", b"")
    with pytest.raises(UploadError, match="cannot be read"):
        corpus.check("bad.pdf", b"%PDF-1.4\ngarbage garbage")
    assert corpus.check("a.md", TEXT) == "a.md"


def test_add_find_remove(tmp_path: Path) -> None:
    first = corpus.add(tmp_path, "../通知.txt", TEXT)
    assert first.source == "通知.txt" and (tmp_path / "通知.txt").read_bytes() == TEXT and not first.replaced
    assert first.doc_id == ingest.document_id("通知.txt")
    again = corpus.add(tmp_path, "通知.txt", TEXT + "二、附则\n".encode(), replace=True)
    assert again.replaced and again.doc_id == first.doc_id
    assert [p.name for p in tmp_path.iterdir()] == ["通知.txt"]  # no temporary files left behind
    assert corpus.find(tmp_path, first.doc_id) == tmp_path / "通知.txt"
    assert corpus.remove(tmp_path, first.doc_id) == "通知.txt"
    assert not (tmp_path / "通知.txt").exists()
    with pytest.raises(NotFoundError):
        corpus.remove(tmp_path, first.doc_id)
    with pytest.raises(NotFoundError, match="not a document id"):
        corpus.find(tmp_path, "../../etc")


def test_a_refused_file_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(UploadError):
        corpus.add(tmp_path, "bad.pdf", b"%PDF-1.4\ngarbage")
    assert list(tmp_path.iterdir()) == []
