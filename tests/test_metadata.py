"""Policy metadata read at ingestion: 发文机关, 发文字号, dates, a law's history; stored in the index."""

from __future__ import annotations

import json
from pathlib import Path

from policyqa.embed import HashEmbedder
from policyqa.ingest import loaders as ingest
from policyqa.ingest.metadata import Metadata, extract
from policyqa.snapshot import index, layout
from policyqa.snapshot.documents import DocInfo
from policyqa.snapshot.refresh import refresh

NOTICE = """某市人民政府办公厅关于印发某市数据要素发展若干措施的通知

某府办规〔2024〕13号

各区人民政府，市政府各部门：

《某市数据要素发展若干措施》已经市人民政府同意，现印发给你们，请认真贯彻执行。根据《某省数据条例》（某府发〔2020〕6号）制定。

一、总体要求

到2027年，数据产业规模达到1000亿元。

某市人民政府办公厅
2024年3月5日
"""

LAW = """# 中华人民共和国测试法

1999年1月2日 第九届全国人民代表大会常务委员会第七次会议通过
2009年8月27日 第十一届全国人民代表大会常务委员会第十次会议《关于修改部分法律的决定》第一次修正
2019年4月23日 第十三届全国人民代表大会常务委员会第十次会议《关于修改〈中华人民共和国测试法〉的决定》第二次修正

## 第一章 总则

第一条 为了测试，制定本法。
"""

NEWS = """某省出台十条措施支持企业

2月24日，某省出台10项措施。根据《某某办法》（某府发〔2020〕9号）要求，加强产业扶贫。（记者某某）
"""

ORDER = """某市老年人优待办法

某市人民政府令
第179号

《某市老年人优待办法》已经市政府常务会议通过，现予公布。

第一条 为保障老年人合法权益，制定本办法。

某市人民政府办公厅 2021年2月7日印发
"""


def meta(text: str, name: str = "doc.txt") -> Metadata:
    return extract(ingest.parse(text.encode(), name))


def test_a_notice_gives_its_number_issuer_and_signature_date() -> None:
    m = meta(NOTICE)
    assert m.doc_number == "某府办规〔2024〕13号"  # its own, not the one it cites
    assert m.issuer == "某市人民政府办公厅"
    assert m.date == "2024-03-05"
    assert m.title.startswith("某市人民政府办公厅关于印发")


def test_a_law_gives_adoption_and_revisions_and_no_number() -> None:
    m = meta(LAW, "law.md")
    assert m.adopted == "1999-01-02"
    assert m.revised == ("2009-08-27", "2019-04-23")
    assert m.date == "2019-04-23"  # the version in force: its latest revision
    assert m.issuer == "全国人民代表大会常务委员会"
    assert m.doc_number == ""


def test_a_number_cited_after_another_title_is_not_taken() -> None:
    m = meta(NEWS)
    assert m.doc_number == "" and m.issuer == "" and m.date == ""


def test_a_government_order_is_issued_by_the_government_not_the_printing_office() -> None:
    m = meta(ORDER)
    assert m.doc_number == "某市人民政府令第179号"
    assert m.issuer == "某市人民政府"
    assert m.date == "2021-02-07"


def test_the_file_name_may_carry_the_number() -> None:
    assert (
        meta("某办法\n\n第一条 为了测试。\n", "某办法(某医保规字〔2024〕1号).txt").doc_number == "某医保规字〔2024〕1号"
    )


def test_metadata_round_trips_and_old_entries_read_empty() -> None:
    m = meta(LAW, "law.md")
    assert Metadata.from_dict(json.loads(json.dumps(m.as_dict()))) == m
    assert Metadata.from_dict(None) == Metadata()
    assert (
        DocInfo.from_dict(
            {"doc_id": "a", "source": "a", "sha256": "", "size": 0, "chunks": 0, "indexed_at": 0}
        ).metadata
        == Metadata()
    )


def test_the_index_stores_metadata_and_an_old_index_gains_it_without_embedding(
    tmp_path: Path, embedder: HashEmbedder
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notice.txt").write_text(NOTICE, encoding="utf-8")
    refresh(corpus, tmp_path / "index", embedder)
    [doc] = index.documents(tmp_path / "index")
    assert doc.metadata.doc_number == "某府办规〔2024〕13号"

    # an index written before metadata existed: the next update writes a snapshot with it, embedding nothing
    snap = layout.current_snapshot(tmp_path / "index")
    assert snap is not None
    meta_path = snap / "meta.json"
    data = json.loads(meta_path.read_text(encoding="utf-8"))
    for d in data["documents"]:
        del d["metadata"]
    meta_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    report = refresh(corpus, tmp_path / "index", embedder)
    assert report.changed and report.embedded == 0
    assert index.documents(tmp_path / "index")[0].metadata.issuer == "某市人民政府办公厅"
    assert refresh(corpus, tmp_path / "index", embedder).changed is False
