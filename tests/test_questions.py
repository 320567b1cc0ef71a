"""Operators' known questions (<corpus>/.policyqa/questions.jsonl) and readers' marks (feedback.jsonl): the
store, the CLI and the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policyqa.api.errors import Throttled
from policyqa.api.routes.feedback import RateLimit
from policyqa.errors import NotFoundError, QuestionError
from policyqa.ingest import feedback, questions
from policyqa.ingest.questions import Target

from .conftest import NOTICE, app_client

ADMIN = {"Authorization": "Bearer t"}
ENV = {**os.environ, "POLICYQA_MODEL": "hash:64"}
TARGET = Target("0123456789ab", "notice.txt", NOTICE)


# --- the store ------------------------------------------------------------------------------------


def test_add_writes_the_contract_line_and_refuses_a_duplicate(tmp_path: Path) -> None:
    added = questions.add(tmp_path, "  稳岗补贴  怎么申请？ ", TARGET, "稳岗补贴通过网上申请。")
    lines = (tmp_path / ".policyqa" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    assert set(row) == {"id", "q", "source", "contains", "added"}
    assert row["q"] == "稳岗补贴 怎么申请？" and row["source"] == "notice.txt" and row["id"] == added.id
    assert row["added"].endswith("Z")
    # the same question after normalisation (full-width, spacing) of the same document: refused, as 409
    with pytest.raises(QuestionError) as refused:
        questions.add(tmp_path, "稳岗补贴 怎么申请?", TARGET, "企业登录平台提交材料")
    assert refused.value.status == 409
    # the same words of another document are another question, with another stable id
    other = questions.add(
        tmp_path, "稳岗补贴 怎么申请？", Target("ba9876543210", "b.txt", "稳岗补贴通过网上申请"), "网上申请"
    )
    assert other.id != added.id == questions.question_id("稳岗补贴 怎么申请？", "notice.txt")
    assert [q.id for q in questions.read(tmp_path)] == [added.id, other.id]


@pytest.mark.parametrize(
    ("q", "contains", "field"),
    [
        ("问", "稳岗补贴通过网上申请", "q"),
        ("  ", "稳岗补贴通过网上申请", "q"),
        ("问" * 501, "稳岗补贴通过网上申请", "q"),
        ("稳岗补贴怎么申请？", "网", "contains"),
        ("稳岗补贴怎么申请？", "线下窗口申请", "contains"),
    ],
)
def test_add_checks_the_question_and_its_string(tmp_path: Path, q: str, contains: str, field: str) -> None:
    with pytest.raises(QuestionError) as refused:
        questions.add(tmp_path, q, TARGET, contains)
    assert refused.value.field == field and refused.value.status == 422
    assert questions.read(tmp_path) == []


def test_contains_is_matched_after_normalisation(tmp_path: Path) -> None:
    target = Target("0123456789ab", "a.txt", "每家企业最高补贴10万元。\n企业登录平台\n提交材料。")
    assert questions.add(tmp_path, "补贴最多多少？", target, "最高补贴１０万元")  # full-width digits
    assert questions.add(tmp_path, "怎么提交？", target, "企业登录平台 提交材料")  # a line break as a space


def test_remove_checks_every_id_first(tmp_path: Path) -> None:
    a = questions.add(tmp_path, "稳岗补贴怎么申请？", TARGET, "稳岗补贴通过网上申请")
    b = questions.add(tmp_path, "补贴最多多少钱？", TARGET, "每家企业最高补贴10万元")
    with pytest.raises(NotFoundError):
        questions.remove(tmp_path, [a.id, "ffffffffff"])
    assert len(questions.read(tmp_path)) == 2
    assert [q.id for q in questions.remove(tmp_path, [a.id, a.id])] == [a.id]
    assert [q.id for q in questions.read(tmp_path)] == [b.id]


def test_writers_at_the_same_time_lose_no_line(tmp_path: Path) -> None:
    text = "".join(f"第{n}条规定{n}。" for n in range(40))
    target = Target("0123456789ab", "a.txt", text)
    threads = [
        threading.Thread(target=questions.add, args=(tmp_path, f"第{n}条说什么？", target, f"第{n}条规定{n}"))
        for n in range(40)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(questions.read(tmp_path)) == 40
    leftovers = [p.name for p in (tmp_path / ".policyqa").iterdir() if p.name.startswith(".questions")]
    assert leftovers == []  # no temporary file left behind


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    questions.add(tmp_path, "稳岗补贴怎么申请？", TARGET, "稳岗补贴通过网上申请")
    before = questions.path(tmp_path).read_bytes()

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        questions.add(tmp_path, "补贴最多多少钱？", TARGET, "每家企业最高补贴10万元")
    assert questions.path(tmp_path).read_bytes() == before
    assert len(list((tmp_path / ".policyqa").glob(".questions*"))) == 0


def test_a_line_edited_by_hand_is_passed_over(tmp_path: Path) -> None:
    questions.add(tmp_path, "稳岗补贴怎么申请？", TARGET, "稳岗补贴通过网上申请")
    with questions.path(tmp_path).open("a", encoding="utf-8") as fh:
        fh.write('not json\n{"q": "no id"}\n')
    assert len(questions.read(tmp_path)) == 1


def test_listed_says_attached_or_unmatched() -> None:
    found = [
        questions.checked("稳岗补贴怎么申请？", TARGET, "稳岗补贴通过网上申请"),
        questions.checked("补贴最多多少钱？", TARGET, "每家企业最高补贴10万元"),
    ]
    changed = Target(TARGET.doc_id, TARGET.source, NOTICE.replace("最高补贴10万元", "最高补贴5万元"))
    report = questions.report(found, {"notice.txt": changed}, "s1")
    assert [r["status"] for r in report["questions"]] == ["attached", "unmatched"]
    assert report["attached"] == report["unmatched"] == 1
    assert questions.report(found, {}, None)["questions"][0]["doc_id"] is None


def test_answering_picks_the_sentence_that_shares_most_with_the_question() -> None:
    passage = "二、申请方式\n稳岗补贴通过网上申请。企业登录平台提交材料。"
    assert questions.answering("企业怎么提交材料？", passage) == "企业登录平台提交材料。"
    assert questions.answering("abc", "xyz") == "xyz"


def test_feedback_log_is_capped_oldest_first(tmp_path: Path) -> None:
    for n in range(12):
        feedback.record(tmp_path, feedback.Mark.new(f"问题{n}", "0" * 16, "1" * 12, n % 2 == 0, "s"), 10, 10_000)
    found = feedback.marks(tmp_path)
    assert [m.q for m in found] == [f"问题{n}" for n in range(11, 1, -1)]  # newest first, two oldest dropped
    for _ in range(5):
        feedback.record(tmp_path, feedback.Mark.new("长" * 100, "0" * 16, "1" * 12, True, "s"), 1000, 1000)
    assert feedback.path(tmp_path).stat().st_size <= 1000
    tally = feedback.tallies(feedback.marks(tmp_path))
    assert tally[0].chunk_id == "0" * 16 and tally[0].helpful >= 1


def test_rate_limit_counts_a_minute_per_client() -> None:
    limit = RateLimit(2)
    limit.check("a", 0.0)
    limit.check("a", 1.0)
    limit.check("b", 1.0)  # another client has its own count
    with pytest.raises(Throttled) as throttled:
        limit.check("a", 2.0)
    assert throttled.value.retry == 58
    limit.check("a", 60.5)  # the first one is a minute old
    RateLimit(0).check("a")  # 0: no limit


# --- the CLI --------------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policyqa", *args], capture_output=True, text=True, env=ENV, timeout=300
    )


def test_cli_add_list_remove(corpus: Path, tmp_path: Path) -> None:
    folders = ("--corpus", str(corpus), "--index", str(tmp_path / "idx"))
    assert run("build", *folders).returncode == 0
    added = run(
        "questions",
        "add",
        "电能效率要求多少？",
        "--source",
        "sub/datacenter.md",
        "--contains",
        "电能利用效率不得高于1.3",
        *folders,
    )
    assert added.returncode == 0, added.stderr
    assert "added known question" in added.stdout and "index" in added.stdout  # the index is refreshed after
    again = run(
        "questions", "add", "电能效率要求多少？", "--source", "sub/datacenter.md", "--contains", "1.3", *folders
    )
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "already" in again.stderr
    wrong = run("questions", "add", "奖励多少？", "--doc-id", "0123456789ab", "--contains", "奖励", *folders)
    assert wrong.returncode == 2 and "policyqa documents" in wrong.stderr
    missing = run("questions", "add", "奖励多少？", "--source", "measures.txt", "--contains", "没有这句", *folders)
    assert missing.returncode == 2 and "does not contain" in missing.stderr
    listed = run("questions", "list", "--json", *folders)
    data = json.loads(listed.stdout)
    assert data["attached"] == 1 and data["questions"][0]["status"] == "attached"
    qid = data["questions"][0]["id"]
    assert qid in run("questions", "list", *folders).stdout
    gone = run("questions", "remove", "ffffffffff", *folders)
    assert gone.returncode == 2 and "policyqa questions list" in gone.stderr
    removed = run("questions", "remove", qid, *folders)
    assert removed.returncode == 0 and qid in removed.stdout
    assert json.loads(run("questions", "list", "--json", *folders).stdout)["questions"] == []


def test_cli_list_marks_a_question_unmatched_once_its_document_changes(corpus: Path, tmp_path: Path) -> None:
    folders = ("--corpus", str(corpus), "--index", str(tmp_path / "idx"))
    before = run("questions", "add", "奖励多少？", "--source", "measures.txt", "--contains", "x1", *folders)
    assert before.returncode == 1 and "policyqa build" in before.stderr  # as `policyqa search` without an index
    assert run("build", *folders).returncode == 0
    ok = run(
        "questions", "add", "新认定奖励多少？", "--source", "measures.txt", "--contains", "一次性奖励20万元", *folders
    )
    assert ok.returncode == 0, ok.stderr
    page = corpus / "measures.txt"
    page.write_text(page.read_text(encoding="utf-8").replace("20万元", "30万元"), encoding="utf-8")
    assert run("build", *folders).returncode == 0
    listed = run("questions", "list", *folders).stdout
    assert "unmatched" in listed and "0 attached, 1 unmatched" in listed


# --- the API --------------------------------------------------------------------------------------


@pytest.fixture
def client(corpus: Path, tmp_path: Path, embedder):
    yield from app_client(corpus, tmp_path / "idx", embedder, admin_token="t", feedback_per_minute=3)  # type: ignore[arg-type]


def first_hit(client: TestClient, q: str) -> dict:  # type: ignore[type-arg]
    return client.get("/api/search", params={"q": q, "k": 1}).json()["results"][0]


def test_api_questions_need_the_token(client: TestClient) -> None:
    assert client.get("/api/questions").status_code == 401
    assert client.post("/api/questions", json={"q": "问题", "chunk_id": "0" * 16}).status_code == 401
    assert client.delete("/api/questions/0123456789").status_code == 401
    assert client.get("/api/feedback").status_code == 401


def test_api_add_from_a_result_list_and_remove(client: TestClient, corpus: Path) -> None:
    hit = first_hit(client, "数据中心电能利用效率")
    posted = client.post("/api/questions", json={"q": "数据中心能耗要求？", "chunk_id": hit["chunk_id"]}, headers=ADMIN)
    assert posted.status_code == 202, posted.json()
    body = posted.json()
    question = body["question"]
    assert question["source"] == hit["source"] and question["doc_id"] == hit["doc_id"]
    assert question["contains"] in hit["text"] and question["status"] == "attached"
    assert body["job"]["state"] in ("queued", "running", "done")
    assert questions.read(corpus)[0].id == question["id"]
    listed = client.get("/api/questions", headers=ADMIN).json()
    assert listed["attached"] == 1 and listed["questions"][0]["id"] == question["id"]
    again = client.post("/api/questions", json={"q": "数据中心能耗要求？", "chunk_id": hit["chunk_id"]}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["field"] == "q" and "常见问题" in again.json()["message"]
    removed = client.delete(f"/api/questions/{question['id']}", headers=ADMIN)
    assert removed.status_code == 202 and removed.json()["removed"]["id"] == question["id"]
    assert client.delete(f"/api/questions/{question['id']}", headers=ADMIN).status_code == 404
    assert client.get("/api/questions", headers=ADMIN).json()["questions"] == []


def test_api_add_by_source_or_doc_id_and_contains(client: TestClient) -> None:
    doc = next(d for d in client.get("/api/documents").json()["documents"] if d["source"] == "measures.txt")
    by_source = {"q": "人才住房怎么保障？", "source": "measures.txt", "contains": "为人才提供人才公寓"}
    assert client.post("/api/questions", json=by_source, headers=ADMIN).status_code == 202
    by_id = {"q": "领军人才资助多少？", "doc_id": doc["doc_id"], "contains": "给予最高1亿元资助"}
    assert client.post("/api/questions", json=by_id, headers=ADMIN).json()["question"]["source"] == "measures.txt"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"q": "问", "source": "measures.txt", "contains": "人才公寓"}, 422, "q"),
        ({"q": "人才住房？", "source": "measures.txt", "contains": "不在文中的句子"}, 422, "contains"),
        ({"q": "人才住房？", "source": "measures.txt"}, 422, "contains"),
        ({"q": "人才住房？", "contains": "人才公寓"}, 422, "doc_id"),
        ({"q": "人才住房？", "source": "nope.txt", "contains": "人才公寓"}, 404, None),
        ({"q": "人才住房？", "doc_id": "0123456789ab", "contains": "人才公寓"}, 404, None),
        ({"q": "人才住房？", "chunk_id": "0123456789abcdef"}, 404, None),
        ({"q": "人才住房？", "chunk_id": "not-an-id"}, 422, "chunk_id"),
    ],
)
def test_api_refusals_say_what_to_do(client: TestClient, body: dict, status: int, field: str | None) -> None:  # type: ignore[type-arg]
    got = client.post("/api/questions", json=body, headers=ADMIN)
    assert got.status_code == status, got.json()
    data = got.json()
    assert data["error"] and data["message"] and data.get("field") == field


def test_api_feedback_refuses_a_passage_the_index_does_not_hold(client: TestClient, corpus: Path) -> None:
    hit = first_hit(client, "人才公寓")
    mark = {"q": "人才公寓", "chunk_id": "0123456789abcdef", "doc_id": hit["doc_id"], "helpful": True}
    unknown = client.post("/api/feedback", json=mark)
    assert unknown.status_code == 404 and "重新搜索" in unknown.json()["message"]
    assert not feedback.marks(corpus)


def test_api_feedback_is_open_rate_limited_and_listed(client: TestClient, corpus: Path) -> None:
    hit = first_hit(client, "人才公寓")
    mark = {"q": "人才公寓", "chunk_id": hit["chunk_id"], "doc_id": hit["doc_id"], "helpful": True, "snapshot": "s"}
    assert client.post("/api/feedback", json=mark).status_code == 201  # no token
    assert client.post("/api/feedback", json={**mark, "helpful": False}).status_code == 201
    assert client.post("/api/feedback", json={**mark, "helpful": "yes"}).json()["field"] == "helpful"
    assert client.post("/api/feedback", json={**mark, "q": "长" * 501}).status_code == 422
    assert client.post("/api/feedback", json={**mark, "snapshot": "s" * 101}).status_code == 422
    assert client.post("/api/feedback", json=mark).status_code == 201
    throttled = client.post("/api/feedback", json=mark)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert "秒后再试" in throttled.json()["message"] and throttled.json()["retry_after"] >= 1
    log = client.get("/api/feedback", headers=ADMIN).json()
    assert log["total"] == 3 and [m["helpful"] for m in log["marks"]] == [True, False, True]
    assert log["passages"] == [{"chunk_id": hit["chunk_id"], "doc_id": hit["doc_id"], "helpful": 2, "unhelpful": 1}]
    assert feedback.path(corpus).is_file()


def _done(client: TestClient, job: dict) -> dict:  # type: ignore[type-arg]
    import time

    for _ in range(300):
        state = client.get(f"/api/index/jobs/{job['id']}").json()
        if state["state"] in ("done", "failed", "cancelled"):
            return state  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job['id']} did not finish")


def test_a_question_set_from_a_result_answers_it_next_time(client: TestClient) -> None:
    """The whole loop: 设为常见问题 on a result queues an update that attaches the question to that passage,
    and the same question then brings the passage first, saying which known question it matched."""
    asked = "机房的PUE要控制在多少？"
    hit = first_hit(client, "数据中心电能利用效率")
    posted = client.post("/api/questions", json={"q": asked, "chunk_id": hit["chunk_id"]}, headers=ADMIN)
    assert _done(client, posted.json()["job"])["state"] == "done"
    top = client.get("/api/search", params={"q": asked, "k": 3}).json()["results"][0]
    assert top["chunk_id"] == hit["chunk_id"] and top["matched_question"] == asked
    removed = client.delete(f"/api/questions/{posted.json()['question']['id']}", headers=ADMIN)
    assert _done(client, removed.json()["job"])["state"] == "done"
    after = client.get("/api/search", params={"q": asked, "k": 3}).json()["results"]
    assert all(r["matched_question"] is None for r in after)


def test_a_hand_edit_of_the_questions_file_is_a_change_the_service_notices(corpus: Path, tmp_path: Path) -> None:
    from policyqa.embed import HashEmbedder
    from policyqa.engine import Engine

    engine = Engine(corpus, tmp_path / "idx", HashEmbedder(64))
    engine.ensure()
    assert engine.poll() is None  # nothing moved
    source = sorted(p.name for p in corpus.iterdir() if p.is_file())[0]
    text = (corpus / source).read_text(encoding="utf-8")
    line = text.strip().splitlines()[-1][:20]
    questions.add(corpus, "手工加的问题？", Target("d", source, text), line)
    job = engine.poll()
    assert job is not None and job.reason == "the corpus folder changed"


TABLE = """园区产业集群名单

序号\t集群名称\t建设单位
1\t双碳经济创新型产业集群\t鼓楼园
2\t软件及信息服务业创新型产业集群\t雨花台园
"""


def test_a_question_set_on_a_table_row_is_attached_to_that_row(corpus: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """A table row's passage reads 序号 1｜集群名称 …, the document's text 1<tab>…: the string a result's
    question points at (the document's) still attaches it to that row."""
    (corpus / "clusters.txt").write_text(TABLE, encoding="utf-8")
    for client in app_client(corpus, tmp_path / "idx", embedder, admin_token="t"):  # type: ignore[arg-type]
        hit = first_hit(client, "双碳经济创新型产业集群 鼓楼园")
        assert hit["text"].startswith("序号 1｜集群名称")  # the row, as a passage shows it
        asked = "鼓楼园建的是什么集群？"
        posted = client.post("/api/questions", json={"q": asked, "chunk_id": hit["chunk_id"]}, headers=ADMIN)
        assert _done(client, posted.json()["job"])["state"] == "done"
        top = client.get("/api/search", params={"q": asked, "k": 3}).json()["results"][0]
        assert top["chunk_id"] == hit["chunk_id"] and top["matched_question"] == asked


def test_a_string_over_two_passages_is_refused_and_listed_unmatched(corpus: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """A build attaches a question to the passages that hold its string: one running over two rows attaches
    to none, so it is refused with what to give instead, and a list does not call it attached."""
    (corpus / "clusters.txt").write_text(TABLE, encoding="utf-8")
    over = "鼓楼园 2 软件及信息服务业"  # the end of row 1 and the start of row 2
    for client in app_client(corpus, tmp_path / "idx", embedder, admin_token="t"):  # type: ignore[arg-type]
        body = {"q": "鼓楼园和雨花台园建什么？", "source": "clusters.txt", "contains": over}
        got = client.post("/api/questions", json=body, headers=ADMIN)
        assert got.status_code == 422 and got.json()["field"] == "contains", got.json()
        assert "one passage" in got.json()["error"] and "两个段落" in got.json()["message"]
        ok = {**body, "contains": "双碳经济创新型产业集群"}
        assert client.post("/api/questions", json=ok, headers=ADMIN).status_code == 202
        doc = next(d for d in client.get("/api/documents").json()["documents"] if d["source"] == "clusters.txt")
        hand = Target(doc["doc_id"], "clusters.txt", TABLE)  # a line written by hand: not checked
        questions.add(corpus, "两个园区建什么？", hand, over)
        listed = {r["q"]: r["status"] for r in client.get("/api/questions", headers=ADMIN).json()["questions"]}
        assert listed == {"鼓楼园和雨花台园建什么？": "attached", "两个园区建什么？": "unmatched"}


def test_cli_list_without_an_index_says_to_build_it(corpus: Path, tmp_path: Path) -> None:
    """Without an index every question reads unmatched: the list says that is the missing index, not the
    questions, so nobody edits or removes good questions."""
    text = (corpus / "measures.txt").read_text(encoding="utf-8")
    questions.add(corpus, "新认定奖励多少？", Target("d", "measures.txt", text), "一次性奖励20万元")
    listed = run("questions", "list", "--corpus", str(corpus), "--index", str(tmp_path / "none"))
    assert listed.returncode == 0 and "unmatched" in listed.stdout
    assert "policyqa build" in listed.stderr and listed.stderr.count("\n") == 1
