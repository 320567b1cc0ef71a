"""Known questions (issue 25): the bank's references and attachment, the shipped learned files, the snapshot's
attachments through builds and updates, and what a search and `inspect` say of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from policyqa.ingest.bank import (
    OPERATORS,
    SHIPPED,
    Known,
    Passage,
    article_number,
    attach,
    chinese_number,
    document_laws,
    law_title,
    parse_line,
    parse_reference,
    passage_articles,
    read_bank,
)
from policyqa.learn import learned
from policyqa.search import wording
from policyqa.search.ranking import SearchOptions, hit_dict, search
from policyqa.snapshot import index
from policyqa.snapshot.layout import QUESTION_VECTORS, QUESTIONS, current_snapshot, load_meta
from policyqa.snapshot.refresh import refresh

LAW = """# 中华人民共和国民法典

# 物权编

## 第七章  相邻关系

第二百八十八条 不动产的相邻权利人应当按照有利生产、方便生活、团结互助、公平合理的原则，正确处理相邻关系。

第二百八十九条 法律、法规对处理相邻关系有规定的，依照其规定；法律、法规没有规定的，可以按照当地习惯。

第二百九十四条 不动产权利人不得违反国家规定弃置固体废物，排放大气污染物、水污染物、土壤污染物、噪声等有害物质。
"""

NOTICE = """关于缓缴社会保险费的通知

受疫情影响的企业可以申请缓缴社会保险费，缓缴期间免收滞纳金。缓缴期限最长不超过六个月。
"""


def test_article_numbers_and_law_titles() -> None:
    assert chinese_number("二百九十四") == 294 and chinese_number("十二") == 12 and chinese_number("一千零三") == 1003
    assert article_number("第二百九十四条") == (294, 0) and article_number("第一百二十条之一") == (120, 1)
    assert article_number("第56条") == (56, 0) and article_number("二百条") is None
    assert law_title("中华人民共和国民法典") == "民法典" and law_title("商标法(2019-04-23)") == "商标法"
    assert law_title("《中华人民共和国劳动合同法》（2012年修正）") == "劳动合同法"
    assert parse_reference("中华人民共和国民法典第五十四条") == ("民法典", "第五十四条")
    assert parse_reference("刑法第二百五十三条之一") == ("刑法", "第二百五十三条之一")
    assert parse_reference("民法典") is None


def test_documents_are_matched_by_title_file_name_and_part() -> None:
    assert "民法典" in document_laws("law-民法典-物权编(2020-05-28).md", "中华人民共和国民法典")
    assert "民法典" in document_laws("民法典物权编.txt", "")
    assert "商标法" in document_laws("law-商标法(2019-04-23).md", "")
    # a title that merely mentions a law is not that law
    assert "民法典" not in document_laws("解释.txt", "最高人民法院关于适用《中华人民共和国民法典》物权编的解释")


def test_articles_are_found_at_line_starts_also_packed_and_continued() -> None:
    packed = "第二百八十八条 相邻关系。\n\n第二百八十九条 依照规定。\n**第二百九十条之一** 用水。"
    assert passage_articles(packed) == {(288, 0), (289, 0), (290, 1)}
    assert passage_articles("依照第二百八十八条的规定处理。") == set()  # a mention is not the article
    assert passage_articles("（续）排水。", "物权编 › 第七章 › 第二百九十条") == {(290, 0)}


def test_attach_by_article_and_by_string_and_lists_operators_unmatched() -> None:
    passages = [
        Passage(
            "law-民法典-物权编(2020-05-28).md",
            "中华人民共和国民法典",
            "",
            "第二百八十八条 相邻。\n第二百八十九条 习惯。",
        ),
        Passage("law-民法典-物权编(2020-05-28).md", "中华人民共和国民法典", "", "第二百九十四条 噪声。"),
        Passage("notice.txt", "通知", "", "缓缴期间免收 滞纳金。"),
        Passage("law-刑法.md", "中华人民共和国刑法", "", "第二百九十四条 组织黑社会。"),
    ]
    bank = [
        Known("邻居装修噪音太大怎么办？", "民法典", "第二百九十四条"),
        Known("邻里纠纷", "民法典", "第二百八十九条"),
        Known("商标侵权", "商标法", "第五十七条"),
        Known("缓缴要交滞纳金吗", source="notice.txt", contains="免收滞纳金", origin="operator", id="a"),
        Known("旧问题", source="notice.txt", contains="已删除的句子", origin="operator", id="b"),
    ]
    got = attach(bank, passages)
    assert got.rows == [[1], [0], [], [2], []]
    assert [k.id for k in got.unmatched] == ["b"]  # the shipped bank's absent laws are not listed


def test_bank_lines_of_both_kinds_are_read_and_bad_ones_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bank.jsonl"
    lines = [
        {"q": "邻居装修噪音太大怎么办？", "law": "中华人民共和国民法典", "article": "第二百九十四条"},
        {
            "id": "x1",
            "q": "缓缴要交滞纳金吗",
            "source": "n.txt",
            "contains": "免收滞纳金",
            "added": "2026-01-01T00:00:00Z",
        },
        {"q": "", "law": "民法典", "article": "第一条"},
        {"q": "没有地方"},
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\nnot json\n", encoding="utf-8")
    bank = read_bank(path, "operator")
    assert [(k.law, k.article, k.source, k.id) for k in bank] == [
        ("民法典", "第二百九十四条", "", ""),
        ("", "", "n.txt", "x1"),
    ]
    assert parse_line({"q": "x", "law": "民法典", "article": "五条"}) is None
    assert read_bank(tmp_path / "missing.jsonl") == []


def test_the_shipped_learned_files_are_what_the_learn_command_makes() -> None:
    data = SHIPPED.parent
    for name, text in learned().items():
        assert (data / name).read_text(encoding="utf-8") == text, f"run `python -m policyqa.learn` ({name})"
    assert (data / "LICENSE-STARD").is_file() and (data / "LICENSE-LeCoQA").is_file()
    assert len(read_bank(SHIPPED)) > 2000


def test_wording_table_expands_everyday_words_into_statute_words() -> None:
    table = wording.shipped()
    assert "相邻" in [w for w, _ in table.rows["邻居"]] and "解除" in [w for w, _ in table.rows["辞退"]]
    terms = wording.expand(["邻居", "噪音"], table, 0.5, lambda w: True)
    assert terms["邻居"] == 1.0 and terms["噪音"] == 1.0
    assert 0 < terms["相邻"] <= 0.5
    assert wording.expand(["邻居"], table, 0.0, lambda w: True) == {"邻居": 1.0}


def test_model1_training_is_deterministic_and_learns_a_translation() -> None:
    pairs = [(["邻居", "吵"], ["相邻", "噪声"]), (["邻居", "墙"], ["相邻", "建筑物"]), (["吵", "晚上"], ["噪声"])] * 2
    one, two = wording.train(pairs, min_count=1), wording.train(pairs, min_count=1)
    assert one.dumps() == two.dumps()
    assert one.rows["邻居"][0][0] == "相邻" and one.rows["吵"][0][0] == "噪声"


@pytest.fixture
def law_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "law-民法典-物权编(2020-05-28).md").write_text(LAW, encoding="utf-8")
    (folder / "notice.txt").write_text(NOTICE, encoding="utf-8")
    return folder


def operators_file(corpus: Path, *rows: dict[str, str]) -> None:
    path = corpus / OPERATORS
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_a_build_attaches_the_shipped_bank_and_the_operators_questions(law_corpus: Path, tmp_path, embedder) -> None:
    operators_file(law_corpus, {"id": "o1", "q": "缓缴要交滞纳金吗", "source": "notice.txt", "contains": "免收滞纳金"})
    refresh(law_corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)
    rows = {k.q: [ix.chunks[r].text for r in rs] for k, rs in zip(ix.known.known, ix.known.rows, strict=True)}
    assert any("第二百八十八条" in t for t in rows["邻居家门口近距离安装摄像头，是否侵犯我的隐私权？"])
    assert all("免收滞纳金" in t for t in rows["缓缴要交滞纳金吗"])
    assert not any(k.law == "刑法" for k in ix.known.known)  # laws the corpus does not hold attach nothing
    q = ix.known.known.index(next(k for k in ix.known.known if k.origin == "operator"))
    assert np.allclose(ix.known.vectors[q], embedder.encode_queries(["缓缴要交滞纳金吗"])[0], atol=1e-6)
    assert load_meta(ix.folder)["questions"]["operators"]


def test_a_change_of_the_operators_file_alone_makes_a_new_snapshot(law_corpus: Path, tmp_path, embedder) -> None:
    refresh(law_corpus, tmp_path / "idx", embedder)
    assert not refresh(law_corpus, tmp_path / "idx", embedder).changed
    operators_file(law_corpus, {"id": "o1", "q": "缓缴要交滞纳金吗", "source": "notice.txt", "contains": "免收滞纳金"})
    assert refresh(law_corpus, tmp_path / "idx", embedder).changed
    operators_file(law_corpus, {"id": "o2", "q": "过期的问题", "source": "notice.txt", "contains": "没有这句话"})
    report = refresh(law_corpus, tmp_path / "idx", embedder, delta_from=0)  # an incremental update this time
    assert report.changed and report.embedded == 0
    ix = index.load(tmp_path / "idx", embedder)
    assert [k.id for k in ix.known.unmatched] == ["o2"]
    assert "segments" in ix.meta and any(k.law == "民法典" for k in ix.known.known)


def test_an_update_keeps_attachments_and_reuses_question_vectors(law_corpus: Path, tmp_path, embedder) -> None:
    refresh(law_corpus, tmp_path / "idx", embedder)
    before = index.load(tmp_path / "idx", embedder).known
    calls: list[list[str]] = []
    encode = embedder.encode_queries

    def counted(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return encode(texts)

    embedder.encode_queries = counted
    (law_corpus / "other.txt").write_text("关于开展植树活动的通知\n\n请各单位组织植树。", encoding="utf-8")
    assert refresh(law_corpus, tmp_path / "idx", embedder, delta_from=0).changed
    after = index.load(tmp_path / "idx", embedder).known
    assert [k.q for k in after.known] == [k.q for k in before.known] and calls == []
    assert np.array_equal(after.vectors, before.vectors)


def test_a_snapshot_from_before_known_questions_still_loads(law_corpus: Path, tmp_path, embedder) -> None:
    refresh(law_corpus, tmp_path / "idx", embedder)
    folder = current_snapshot(tmp_path / "idx")
    assert folder is not None
    meta = load_meta(folder)
    for name in (QUESTIONS, QUESTION_VECTORS):
        (folder / name).unlink()
        del meta["files"][name]
    del meta["questions"]
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    ix = index.load(tmp_path / "idx", embedder)
    assert ix.known.known == [] and search(ix, embedder, "相邻关系怎么处理？", k=3).hits


def test_a_search_says_which_known_question_it_matched(law_corpus: Path, tmp_path, embedder) -> None:
    operators_file(law_corpus, {"id": "o1", "q": "缓缴要交滞纳金吗", "source": "notice.txt", "contains": "免收滞纳金"})
    refresh(law_corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)
    top = search(ix, embedder, "缓缴要交滞纳金吗", k=3).hits[0]
    assert "免收滞纳金" in top.chunk.text and top.matched_question == "缓缴要交滞纳金吗"
    assert hit_dict(top)["matched_question"] == "缓缴要交滞纳金吗"
    off = SearchOptions(wording=0, known=0, operator=0)
    assert all(h.matched_question is None for h in search(ix, embedder, "缓缴要交滞纳金吗", k=3, options=off).hits)


def test_a_corpus_without_bank_laws_searches_as_before(corpus: Path, tmp_path, embedder) -> None:
    refresh(corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)
    assert ix.known.known == []
    for q in ("新认定的高新技术企业有一次性奖励吗？", "数据中心的电能利用效率", "辞退员工要赔偿吗"):
        got = search(ix, embedder, q, k=5, options=SearchOptions(known=0, operator=0))
        plain = search(ix, embedder, q, k=5, options=SearchOptions(wording=0, known=0, operator=0))
        assert [h.chunk.chunk_id for h in got.hits][:1] == [h.chunk.chunk_id for h in plain.hits][:1]
        assert all(h.matched_question is None for h in got.hits)


@pytest.mark.model
def test_an_operators_question_brings_its_passage_first_and_a_paraphrase_into_the_top_3(tmp_path: Path) -> None:
    from policyqa import bundle
    from policyqa.embed import DEFAULT_MODEL, load_embedder

    from .conftest import SEED

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / SEED.name).write_bytes(SEED.read_bytes())
    answer = "多方拓展企业融资渠道"  # the operator's answer: without it, rank 4 and 4, and not in the top 5
    asked = "刚起步的科技公司能找谁要钱？"
    row = "双碳经济创新型产业集群"  # a table row: 鼓楼园's cluster
    operators_file(
        corpus,
        {"id": "t1", "q": asked, "source": SEED.name, "contains": answer},
        {"id": "t2", "q": "哪个园区建设双碳经济集群？", "source": SEED.name, "contains": row},
    )
    embedder = load_embedder(DEFAULT_MODEL, bundle.default_cache_root())
    refresh(corpus, tmp_path / "idx", embedder)
    ix = index.load(tmp_path / "idx", embedder)

    def rank(q: str, options: SearchOptions | None = None) -> int | None:
        hits = search(ix, embedder, q, k=5, options=options).hits
        return next((h.rank for h in hits if answer in h.chunk.text), None)

    off = SearchOptions(wording=0, known=0, operator=0)
    assert rank(asked, off) != 1
    top = search(ix, embedder, asked, k=3).hits[0]
    assert answer in top.chunk.text and top.matched_question == asked
    for paraphrase in ("新成立的科技企业怎么拿到投资", "创业公司缺钱可以找谁"):
        found = rank(paraphrase)
        assert found is not None and found <= 3, paraphrase
    # a question of something else keeps its own answer, also one of the same shape about another park
    assert "国家级创新型产业集群2个" in search(ix, embedder, "南京有几个国家级创新型产业集群？", k=1).hits[0].chunk.text
    assert "鼓楼园" in search(ix, embedder, "鼓楼园在建设什么集群？", k=1).hits[0].chunk.text
    others = (("六合园建设哪个产业集群？", "六合园"), ("集成电路创新型产业集群的建设单位是哪里？", "江北新区"))
    for other, park in others:
        first = search(ix, embedder, other, k=1).hits[0]
        assert park in first.chunk.text and first.matched_question is None, other


def test_inspect_shows_the_questions_a_build_attaches_to_each_passage(
    law_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from policyqa import cli

    operators_file(law_corpus, {"id": "o1", "q": "缓缴要交滞纳金吗", "source": "notice.txt", "contains": "免收滞纳金"})
    law = law_corpus / "law-民法典-物权编(2020-05-28).md"
    assert cli.main(["inspect", str(law), "--json", "--corpus", str(law_corpus)]) == 0
    passages = json.loads(capsys.readouterr().out)["passages"]
    asked = {q for p in passages if "第二百八十八条" in p["text"] for q in p["questions"]}
    assert "邻居家门口近距离安装摄像头，是否侵犯我的隐私权？" in asked
    assert cli.main(["inspect", str(law_corpus / "notice.txt"), "--corpus", str(law_corpus)]) == 0
    assert "问: 缓缴要交滞纳金吗" in capsys.readouterr().out


def test_search_prints_the_matched_known_question(
    law_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from policyqa import cli

    monkeypatch.setenv("POLICYQA_MODEL", "hash:64")
    operators_file(law_corpus, {"id": "o1", "q": "缓缴要交滞纳金吗", "source": "notice.txt", "contains": "免收滞纳金"})
    folders = ["--corpus", str(law_corpus), "--index", str(tmp_path / "idx")]
    assert cli.main(["build", *folders]) == 0
    capsys.readouterr()
    assert cli.main(["search", "缓缴要交滞纳金吗", "-k", "1", "--index", str(tmp_path / "idx")]) == 0
    assert "常见问题: 缓缴要交滞纳金吗" in capsys.readouterr().out
    assert cli.main(["search", "缓缴要交滞纳金吗", "-k", "1", "--json", "--index", str(tmp_path / "idx")]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["matched_question"] == "缓缴要交滞纳金吗"


@pytest.mark.parametrize("store", ["faiss", "qdrant"], indirect=True)
def test_the_api_hit_says_which_known_question_it_matched(law_corpus: Path, tmp_path: Path, embedder, store) -> None:
    from .conftest import app_client

    operators_file(law_corpus, {"id": "o1", "q": "缓缴要交滞纳金吗", "source": "notice.txt", "contains": "免收滞纳金"})
    for client in app_client(law_corpus, tmp_path / "idx", embedder, store):
        got = client.get("/api/search", params={"q": "缓缴要交滞纳金吗", "k": 3}).json()["results"]
        assert got[0]["matched_question"] == "缓缴要交滞纳金吗"
        assert all("matched_question" in r for r in got)
        got = client.get("/api/search", params={"q": "相邻关系", "k": 3, "group": "true"}).json()["results"]
        assert all("matched_question" in r for r in got)
