import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyqa import cli
from policyqa.errors import NotFoundError
from policyqa.ingest import corpus as corpus_mod

from .conftest import SEED

ENV = {**os.environ, "POLICYQA_MODEL": "hash:64"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policyqa", *args], capture_output=True, text=True, env=env or ENV, timeout=300
    )


def test_help_is_instant_and_does_not_import_torch() -> None:
    code = "import sys; from policyqa import cli; print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
    assert run("--help").returncode == 0


def test_build_then_search(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    built = run("build", "--corpus", str(corpus), "--index", str(idx))
    assert built.returncode == 0, built.stderr
    assert "2 documents" in built.stdout
    again = run("build", "--corpus", str(corpus), "--index", str(idx))
    assert "already up to date" in again.stdout
    found = run("search", "数据中心电能利用效率", "-k", "2", "--json", "--index", str(idx))
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert len(data["results"]) == 2
    assert data["results"][0]["source"] == "sub/datacenter.md"
    text = run("search", "数据中心电能利用效率", "--index", str(idx))
    assert "1.3" in text.stdout and "sub/datacenter.md" in text.stdout


def test_missing_corpus_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = run("build", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "idx"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "does not exist" in out.stderr


def test_empty_corpus_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    out = run("build", "--corpus", str(tmp_path / "c"), "--index", str(tmp_path / "idx"))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "no documents" in out.stderr


def test_search_without_index_says_build(tmp_path: Path) -> None:
    out = run("search", "问题", "--index", str(tmp_path / "none"))
    assert out.returncode == 1 and "policyqa build" in out.stderr and out.stderr.count("\n") == 1


def test_environment_selects_folders(corpus: Path, tmp_path: Path) -> None:
    env = {**ENV, "POLICYQA_CORPUS_DIR": str(corpus), "POLICYQA_INDEX_DIR": str(tmp_path / "envidx")}
    assert run("build", env=env).returncode == 0
    assert (tmp_path / "envidx" / "CURRENT").is_file()


def test_add_documents_remove(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    folders = ("--corpus", str(corpus), "--index", str(idx))
    assert run("build", *folders).returncode == 0
    doc = tmp_path / "incoming" / "海洋规划.txt"
    doc.parent.mkdir()
    doc.write_text("海洋经济发展规划\n\n一、发展目标\n到2030年，海洋生产总值达到1.5万亿元。\n", encoding="utf-8")
    added = run("add", str(doc), *folders)
    assert added.returncode == 0, added.stderr
    assert "added 海洋规划.txt" in added.stdout and "index updated" in added.stdout
    assert (corpus / "海洋规划.txt").is_file()
    again = run("add", str(doc), *folders)  # the same bytes again: one document, not 海洋规划-2.txt
    assert again.returncode == 0 and "already in the corpus: 海洋规划.txt" in again.stdout
    assert not (corpus / "海洋规划-2.txt").exists()
    listed = json.loads(run("documents", "--json", "--index", str(idx)).stdout)
    ocean = next(d for d in listed["documents"] if d["source"] == "海洋规划.txt")
    found = json.loads(run("search", "海洋生产总值", "-k", "1", "--json", "--index", str(idx)).stdout)
    assert found["results"][0]["source"] == "海洋规划.txt"
    removed = run("remove", ocean["doc_id"], *folders)
    assert removed.returncode == 0 and "removed 海洋规划.txt" in removed.stdout
    assert not (corpus / "海洋规划.txt").exists()
    assert ocean["doc_id"] not in run("documents", "--index", str(idx)).stdout


def test_add_refuses_bad_files_before_adding_any(corpus: Path, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.txt", tmp_path / "bad.pdf"
    good.write_text("好的文件\n\n内容。\n", encoding="utf-8")
    bad.write_bytes(b"%PDF-1.4 garbage")
    out = run("add", str(good), str(bad), "--corpus", str(corpus), "--index", str(tmp_path / "idx"))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "bad.pdf" in out.stderr
    assert not (corpus / "good.txt").exists()
    missing = run("add", str(tmp_path / "nope.txt"), "--corpus", str(corpus), "--index", str(tmp_path / "idx"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    unknown = run("remove", "0123456789ab", "--corpus", str(corpus), "--index", str(tmp_path / "idx"))
    assert unknown.returncode == 1 and "no document with id" in unknown.stderr and unknown.stderr.count("\n") == 1


def test_eval_groups_questions_and_fails_below_a_threshold(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    assert run("build", "--corpus", str(corpus), "--index", str(idx)).returncode == 0
    qa = tmp_path / "qa.jsonl"
    lines = [
        {"q": "数据中心电能利用效率", "must": ["不得高于1.3"], "source": "sub/datacenter.md", "origin": "law x"},
        {"q": "高新技术企业奖励多少", "must": ["一次性奖励20万元"], "source": "measures.txt", "origin": "notice y"},
        {"q": "深圳市的补贴标准", "must": [], "source": None, "origin": "none z"},
    ]
    qa.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    out = run("eval", str(qa), "--index", str(idx), "--group-by", "origin", "--json")
    assert out.returncode == 0, out.stderr
    names = [r["name"] for r in json.loads(out.stdout)]
    assert names == ["hybrid", "hybrid/law", "hybrid/none", "hybrid/notice"]
    grouped = {r["name"]: r for r in json.loads(out.stdout)}
    assert grouped["hybrid/law"]["questions"] == 1 and grouped["hybrid/none"]["unanswerable"] == 1
    text = run("eval", str(qa), "--index", str(idx), "--group-by", "source")
    assert "hybrid/measures.txt" in text.stdout and "hybrid/sub" in text.stdout
    failing = run("eval", str(qa), "--index", str(idx), "--min-hit1", "1.01")
    assert failing.returncode == 1
    assert failing.stderr.strip().startswith("policyqa: error: retrieval below the thresholds")
    assert len(failing.stderr.strip().splitlines()) == 1


def _no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the model (15 s with the real one) fails the test: these mistakes must be found before it."""

    def loaded(settings: object) -> None:
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(cli, "_engine", loaded)


def test_argument_errors_come_before_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_model(monkeypatch)
    idx = tmp_path / "idx"
    for query, said in (("", "the query is empty"), (" \x00 ", "the query is empty"), ("长" * 600, "600 characters")):
        assert cli.main(["search", query, "--index", str(idx)]) == 1
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1
    assert cli.main(["search", "补贴", "--index", str(idx)]) == 1
    err = capsys.readouterr().err
    assert "no whole index in" in err and "policyqa build" in err and err.count("\n") == 1
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"q": "补贴", "must": ["补贴"]}, ensure_ascii=False), encoding="utf-8")
    assert cli.main(["eval", str(qa), "--index", str(idx)]) == 1
    assert "no whole index in" in capsys.readouterr().err
    assert cli.main(["build", "--corpus", str(tmp_path / "missing"), "--index", str(idx)]) == 2
    err = capsys.readouterr().err
    assert "corpus folder" in err and "does not exist" in err and err.count("\n") == 1
    assert not idx.exists()  # a failed build leaves no empty index folder behind


def test_remove_folds_a_repeated_id_and_updates_the_index(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    folders = ("--corpus", str(corpus), "--index", str(idx))
    assert run("build", *folders).returncode == 0
    listed = json.loads(run("documents", "--json", "--index", str(idx)).stdout)["documents"]
    doc_id = next(d["doc_id"] for d in listed if d["source"] == "measures.txt")
    removed = run("remove", doc_id, doc_id, *folders)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.count("removed measures.txt") == 1 and "index updated" in removed.stdout
    assert doc_id not in run("documents", "--index", str(idx)).stdout


def test_add_refuses_a_missing_corpus_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_model(monkeypatch)
    doc = tmp_path / "通知.txt"
    doc.write_text("关于补贴的通知\n\n一、补贴对象\n中小企业。\n", encoding="utf-8")
    missing, idx = tmp_path / "missing" / "folder", tmp_path / "idx"
    assert cli.main(["add", str(doc), "--corpus", str(missing), "--index", str(idx)]) == 2
    err = capsys.readouterr().err
    assert "corpus folder" in err and "does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "missing").exists() and not idx.exists()


@pytest.mark.parametrize("args", [("inspect", str(SEED)), ("inspect", str(SEED), "--full", "--json")])
def test_a_reader_that_stops_early_gets_no_traceback(args: tuple[str, ...]) -> None:
    """`policyqa ... | head -1`: the reader is gone before the command writes (the short output fails when it
    is flushed at the end, the long one while it is written)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "policyqa", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 1
    assert err == ""


def test_errors_name_the_cli_command_that_lists_documents(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_model(monkeypatch)
    folders = ["--corpus", str(corpus), "--index", str(tmp_path / "idx")]
    for argv in (
        ["remove", "0123456789ab", *folders],
        ["remove", "not-an-id", *folders],
        ["search", "补贴", "--doc-id", "not-an-id", "--index", str(tmp_path / "idx")],
    ):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "`policyqa documents`" in err and "/api/" not in err, err
    # the HTTP API answers with the library's message, which names its own endpoint
    with pytest.raises(NotFoundError, match="list them with GET /api/documents"):
        corpus_mod.find(corpus, "0123456789ab")


def test_unknown_doc_id_filter_names_the_cli_command(corpus: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    assert run("build", "--corpus", str(corpus), "--index", str(idx)).returncode == 0
    out = run("search", "补贴", "--doc-id", "0123456789ab", "--index", str(idx))
    assert out.returncode == 1 and "no document 0123456789ab" in out.stderr
    assert "`policyqa documents`" in out.stderr and "/api/" not in out.stderr


@pytest.mark.parametrize("k", ["0", "51", "-3"])
def test_k_out_of_range_is_one_short_line(
    k: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _no_model(monkeypatch)
    assert cli.main(["search", "补贴", "-k", k, "--index", str(tmp_path / "idx")]) == 2
    assert capsys.readouterr().err == "policyqa: error: -k must be between 1 and 50\n"


def test_eval_columns_line_up_under_chinese_group_names_and_passages_stay_indented(capsys) -> None:
    assert cli._pad("hybrid/法律", 14) == "hybrid/法律   "  # 7 + 2 x 2 columns, then 3 spaces
    assert len(cli._pad("hybrid/law", 14)) == 14
    row = {"source": "a.txt", "section": "一、总则", "text": "第一行\n第二行", "answer_start": 0, "answer_end": 3}
    cli._print_row({**row, "rank": 1, "score": 1.0}, "1.")
    out = capsys.readouterr().out
    assert "   第一行\n   第二行\n" in out
