"""时效性 read from a document's own clauses (ingest/validity.py) and judged across a corpus on a day
(snapshot/versions.py): effective and end dates, what a document repeals or prevails over, 现行有效 / 已被替代 /
已失效 / 尚未生效."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyqa.ingest import loaders
from policyqa.ingest.inspection import inspect_file
from policyqa.ingest.metadata import Metadata
from policyqa.ingest.validity import Validity, extract
from policyqa.models import Document
from policyqa.snapshot.documents import DocInfo
from policyqa.snapshot.versions import Versions, title_key

from .conftest import ROOT


def doc(text: str, name: str = "通知.txt") -> Document:
    return loaders.parse(text.encode("utf-8"), name)


def stated(text: str, issued: str = "") -> Validity:
    return extract(doc("某市科技局关于某事项的通知\n\n" + text), issued)


@pytest.mark.parametrize(
    ("text", "issued", "effective", "expires"),
    [
        ("本办法自2024年1月1日起施行，有效期5年。", "", "2024-01-01", "2028-12-31"),
        ("本细则自2024年3月1日起实施，有效期两年。", "", "2024-03-01", "2026-02-28"),
        ("本通知自印发之日起施行，有效期3年。", "2024-01-03", "2024-01-03", "2027-01-02"),
        ("本通知自发布之日起执行。", "2020-02-17", "2020-02-17", ""),
        ("本通告自2020年2月21日零时施行。", "", "2020-02-21", ""),
        ("本意见明确的政策措施自印发之日起施行，有效期至2025年12月31日。", "2024-06-01", "2024-06-01", "2025-12-31"),
        ("本办法自2023年7月1日起施行。\n本办法有效期至2026年6月30日。", "", "2023-07-01", "2026-06-30"),
        ("本措施有效期自2024年1月1日至2025年12月31日。", "", "2024-01-01", "2025-12-31"),
        ("本方案自2024年2月1日起试行，试行期6个月。", "", "2024-02-01", "2024-07-31"),
        ("本办法自2024年2月29日起施行，有效期1年。", "", "2024-02-29", "2025-02-28"),
    ],
)
def test_when_a_document_takes_effect_and_ends(text: str, issued: str, effective: str, expires: str) -> None:
    found = stated(text, issued)
    assert (found.effective, found.expires) == (effective, expires)


@pytest.mark.parametrize(
    "text",
    [
        "本通知自发布之日起执行，有效期至疫情防控一级响应解除之日止。",  # an event, not a day
        "食品生产经营许可证书有效期顺延至一级响应解除；健康证明有效期届满的，可延期6个月。",  # other things' 有效期
        "自2020年2月1日起实施阶段性减免，对中小企业免征三个月房租。",  # a measure's date, not the document's
        "注册商标的有效期为十年，自核准注册之日起计算。",
        "本通知自发布之日起施行。",  # its date unknown: not guessed
    ],
)
def test_what_is_not_stated_is_left_empty(text: str) -> None:
    found = stated(text)
    assert (found.effective, found.expires) == ("", "")


def test_a_period_without_a_start_is_not_guessed() -> None:
    assert stated("本办法有效期5年。").expires == ""


def test_what_a_document_repeals_and_prevails_over() -> None:
    found = stated(
        "本办法自2024年1月1日起施行，原《某市科技创新券管理办法》（某科规〔2019〕2号）同时废止。"
        "《某市创新券实施细则》和《某市创新券申领指南》自2024年1月1日起不再执行。"
        "此前我市出台的《某市研发补助办法》与本办法不一致的，以本办法为准。"
    )
    assert found.repeals == ("某市科技创新券管理办法", "某市创新券实施细则", "某市创新券申领指南")
    assert found.prevails == ("某市研发补助办法",)
    assert not found.prevails_earlier


def test_an_unnamed_earlier_rule_is_a_weaker_relation_and_a_citation_is_none() -> None:
    found = stated(
        "根据《中华人民共和国科学技术进步法》，制定本办法。此前有关规定与本办法不一致的，以本办法为准。"
        "合同约定与本合同不一致的，以本合同为准。《某条例》规定的事项废止后另行规定。"
    )
    assert found.prevails_earlier and found.prevails == ()
    assert found.repeals == ()


def test_a_law_states_its_effective_date_and_what_it_repealed() -> None:
    law = doc(
        "# 中华人民共和国测试法\n\n1982年8月23日第五届全国人民代表大会常务委员会第二十四次会议通过\n\n"
        "第一条 为了测试，制定本法。\n\n第二条 本法自1983年3月1日起施行。1963年4月10日国务院公布的《测试管理条例》"
        "同时废止；其他有关测试的规定，凡与本法抵触的，同时失效。\n",
        "law-测试法.md",
    )
    found = extract(law, "1982-08-23")
    assert found == Validity("1983-03-01", "", ("测试管理条例",), (), True)


def test_validity_survives_its_json_form() -> None:
    found = stated("本办法自2024年1月1日起施行，有效期5年，原《甲办法》同时废止。")
    assert Validity.from_dict(found.as_dict()) == found
    assert Validity.from_dict(None) == Validity()


DEVSET = ROOT.parent / "shared" / "devset" / "docs"


@pytest.mark.skipif(not DEVSET.is_dir(), reason="../shared/devset is not present")
@pytest.mark.parametrize(
    ("name", "effective", "expires", "repeals"),
    [
        ("gz-广州市长期护理保险试行办法(穗医保规字〔2024〕1号).html", "2024-01-03", "2027-01-02", 0),
        ("gz-市场主体登记管理条例(国务院令第746号).html", "2022-03-01", "", 5),
        ("gz-广州市老年人优待办法(广州市人民政府令第179号).html", "2021-05-01", "", 0),
        ("law-商标法(2019-04-23).md", "1983-03-01", "", 1),
        ("ncp-9c6768c4-关于有序推动服务业恢复营业的通告.txt", "2020-02-21", "", 0),
        # 有效期至新冠肺炎疫情解除后再顺延3个月: an event, left empty
        (
            "ncp-5efb2c35-浙江省委省政府出台坚决打赢疫情防控阻击战、全力稳企业稳经济稳发展30条意见.txt",
            "2020-02-10",
            "",
            0,
        ),
        ("gov-上海市普陀区人民政府万里街道办事处2025年部门预算.pdf", "", "", 0),
    ],
)
def test_the_dev_sets_documents(name: str, effective: str, expires: str, repeals: int) -> None:
    found = inspect_file(DEVSET / name).as_dict()["validity"]
    assert (found["effective"], found["expires"], len(found["repeals"])) == (effective, expires, repeals)


NONE = Validity()


def info(doc_id: str, title: str, issuer: str = "某市科技局", day: str = "", validity: Validity = NONE) -> DocInfo:
    return DocInfo(doc_id, f"{doc_id}.txt", "", 1, 1, 0.0, title, Metadata(title, issuer, "", day), validity)


def test_titles_apart_from_year_or_edition() -> None:
    assert title_key("青山市2025年度科技创新券实施细则") == title_key("青山市2024年度科技创新券实施细则")
    assert title_key("某市长期护理保险试行办法") == title_key("某市长期护理保险办法（2024年修订）")
    assert title_key("中华人民共和国著作权法") == title_key("著作权法")
    assert title_key("某市科技创新券实施细则") != title_key("某市科技创新券管理办法")


def test_a_later_edition_of_the_same_issuer_replaces_the_earlier() -> None:
    docs = [
        info("a2024", "某市2024年度创新券实施细则", day="2024-02-01"),
        info("a2025", "某市2025年度创新券实施细则", day="2025-02-10"),
        info("a2026", "某市2026年度创新券实施细则", day="2026-02-10"),
        info("other", "某市2023年度创新券实施细则", issuer="另一个局", day="2023-02-01"),
        info("nobody", "某市2022年度创新券实施细则", issuer="", day="2022-02-01"),
    ]
    versions = Versions.of(docs)
    assert versions.newer == {"a2024": ("a2025",), "a2025": ("a2026",)}
    old = versions.status("a2024", "2026-12-01")
    assert (old.code, old.label, old.superseded_by, old.current_version) == ("superseded", "已被替代", "a2025", "a2026")
    assert versions.status("a2026", "2026-12-01").label == "现行有效"
    # judged on an earlier day, the 2026 edition is not in force yet and the 2025 one is
    assert versions.status("a2026", "2025-06-01").label == "尚未生效"
    assert versions.status("a2025", "2025-06-01").label == "现行有效"
    assert versions.status("a2024", "2025-06-01").current_version == "a2025"
    assert versions.status("other", "2026-12-01").label == versions.status("nobody", "2026-12-01").label == "现行有效"
    assert versions.older("a2026") == ["a2025"] and versions.family("a2025") == {"a2024", "a2025", "a2026"}


def test_editions_of_one_day_are_not_ordered() -> None:
    parts = [info(p, "中华人民共和国民法典", "全国人民代表大会", "2020-05-28") for p in ("总则", "物权编")]
    assert Versions.of(parts).newer == {}


def test_a_named_repeal_replaces_and_a_stated_end_expires() -> None:
    docs = [
        info("old", "某市科技创新券管理办法", day="2019-01-01"),
        info(
            "new", "某市创新券办法", "某市科技局", "2023-12-01", Validity("2024-01-01", "", ("某市科技创新券管理办法",))
        ),
        info("short", "某市研发补助通知", day="2020-01-01", validity=Validity("2020-01-01", "2022-12-31")),
        info("weak", "某市研发补助办法", day="2018-01-01"),
        info("prevailing", "某市研发新规", day="2021-01-01", validity=Validity(prevails=("某市研发补助办法",))),
    ]
    versions = Versions.of(docs)
    assert versions.status("old", "2023-12-15").label == "现行有效"  # the new one is not in force yet
    assert versions.status("old", "2024-01-01").superseded_by == "new"
    assert versions.status("short", "2022-12-31").label == "现行有效"
    assert versions.status("short", "2023-01-01").label == "已失效"
    weak = versions.row("weak", "2024-01-01")
    assert weak["status_label"] == "现行有效" and weak["prevailed_by"] == ["prevailing"]
    assert versions.row("new", "2024-01-01")["replaces"] == ["old"]


def test_an_index_written_before_validity_reads_as_stating_nothing(tmp_path: Path) -> None:
    row = info("x", "某办法").as_dict()
    del row["validity"]
    assert DocInfo.from_dict(row).validity == Validity()
