"""The registry of formats is the only list of them: help, errors and Chinese messages all read it, so one more
entry shows up everywhere and is read, checked and found in the corpus like the others."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from policyqa import cli
from policyqa.api import errors as api_errors
from policyqa.errors import DocumentError, UploadError
from policyqa.ingest import corpus, formats, inspection
from policyqa.ingest import loaders as ingest
from policyqa.messages import chinese
from policyqa.models import Unit

from .conftest import ROOT

BINARY = b"\x00\x01\x02" * 100


def _odt(data: bytes, name: str, budget: object) -> list[Unit]:
    return [Unit(data.decode("utf-8").removeprefix("ODT!"))]


ODT = formats.Format("OpenDocument (.odt)", (".odt",), _odt, "odt", signature=b"ODT!")


@pytest.fixture
def with_odt(monkeypatch: pytest.MonkeyPatch) -> formats.Format:
    monkeypatch.setattr(formats, "FORMATS", (*formats.FORMATS, ODT))
    return ODT


def _help(command: str) -> str:
    sub = next(a for a in cli.parser()._actions if a.dest == "command")
    return str(sub.choices[command].format_help())  # type: ignore[index]


def _refusal_over_http() -> dict[str, str]:
    app = FastAPI()
    api_errors.install(app)

    @app.post("/upload")
    def upload() -> None:
        corpus.safe_name("x.bin", BINARY)

    return dict(TestClient(app).post("/upload").json())


def _listings(tmp_path: Path) -> dict[str, str]:
    """Every sentence people see that lists the formats, as the code writes it now."""
    odd = tmp_path / "x.xyz"
    odd.write_bytes(BINARY)
    with pytest.raises(UploadError) as refused:
        corpus.safe_name("x.bin", BINARY)
    with pytest.raises(DocumentError) as uninspectable:
        inspection.inspect_file(odd)
    over_http = _refusal_over_http()
    return {
        "add --help": _help("add"),
        "inspect --help": _help("inspect"),
        "upload refused": str(refused.value),
        "inspect refused": str(uninspectable.value),
        "empty corpus": ingest.no_documents(tmp_path),
        "message, unsupported": chinese("x.xyz: unsupported file type .xyz"),
        "message, neither": chinese(str(refused.value)),
        "API rule": over_http["rule"],
        "API message": over_http["message"],
    }


def test_every_format_is_named_wherever_formats_are_listed(tmp_path: Path) -> None:
    for where, text in _listings(tmp_path).items():
        text = " ".join(text.split())  # argparse wraps help lines
        for fmt in formats.FORMATS:
            assert fmt.extensions[0] in text, (where, fmt.name)
    assert "text, HTML, Word (.docx), PDF, PNG image nor JPEG image" in _listings(tmp_path)["upload refused"]


def test_one_more_entry_shows_up_everywhere(with_odt: formats.Format, tmp_path: Path) -> None:
    for where, text in _listings(tmp_path).items():
        assert ".odt" in " ".join(text.split()), where
    assert "OpenDocument (.odt)" in _listings(tmp_path)["upload refused"]


def test_one_more_entry_is_recognised_read_and_found(with_odt: formats.Format, tmp_path: Path) -> None:
    data = "ODT!关于开放文档格式的通知。".encode()
    assert formats.recognise(data) is with_odt and formats.sniff(data) == ".odt"
    assert corpus.safe_name("通知.txt", data) == "通知.odt"  # the content decides, as for the built-in formats
    assert ingest.parse(data, "通知.odt").text == "关于开放文档格式的通知。"
    (tmp_path / "通知.odt").write_bytes(data)
    assert [source for source, _ in ingest.corpus_entries(tmp_path)] == ["通知.odt"]


def test_the_page_offers_an_extension_of_every_format_and_no_other() -> None:
    page = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    found = re.search(r'type="file" accept="([^"]+)"', page)
    assert found is not None
    offered = set(found.group(1).split(","))
    known = {ext for fmt in formats.FORMATS for ext in fmt.extensions}
    assert offered <= known
    assert all(offered & set(fmt.extensions) for fmt in formats.FORMATS)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.7\n", ".pdf"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", ".png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", ".jpg"),
        (b"PK\x03\x04" + b"\x00" * 30 + b"word/document.xml", ".docx"),
        (b"PK\x03\x04" + b"\x00" * 30 + b"xl/workbook.xml", None),  # an archive that is not Word
        (b"  <!DOCTYPE html><html><body>x</body></html>", ".html"),
        ("<p>一段</p>".encode(), ".txt"),  # markup without a page around it is text
        ("\ufeffpolicy 通知".encode("utf-16-le"), ".txt"),  # NUL bytes, but after a UTF-16 mark
        (BINARY, None),
    ],
)
def test_contents_are_recognised_as_before(data: bytes, expected: str | None) -> None:
    assert formats.sniff(data) == expected
