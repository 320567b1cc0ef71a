import json
import os
import subprocess
import sys
from pathlib import Path

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
