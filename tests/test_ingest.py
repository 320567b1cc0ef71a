from pathlib import Path

import pytest

from policyqa import ingest
from policyqa.errors import CorpusError, DocumentError

from .conftest import SEED, TINY


def seed_doc():
    return ingest.parse(SEED.read_bytes(), SEED.name)


def test_blocks_point_into_the_cleaned_text() -> None:
    doc = seed_doc()
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text


def test_title_and_sections_of_a_policy_text() -> None:
    doc = ingest.parse(TINY.encode(), "m.txt")
    assert doc.title == "关于支持科技企业发展的若干措施"
    sections = {" › ".join(b.section) for b in doc.blocks if b.kind == "paragraph"}
    assert "二、主要措施 › （一）加大资金支持" in sections
    assert "二、主要措施 › （二）优化人才服务 › 二是完善住房保障" in sections


def test_articles_become_sections() -> None:
    doc = ingest.parse("办法\n\n第一条 为规范管理，制定本办法。\n\n第二条 本办法自发布之日起施行。\n".encode(), "a.txt")
    assert [b.section for b in doc.blocks] == [("第一条",), ("第二条",)]


def test_seed_captions_are_removed_and_the_cut_sentence_rejoined() -> None:
    doc = seed_doc()
    assert "南京高新区(江北新区)生物医药制品制造创新型产业集群" in doc.captions
    assert "本版图片来源:南京高新区" in doc.captions
    assert "依托阿波罗智行信息科技(南京)有限公司建设南京市唯一的江苏省车联网先导区" in doc.text
    for caption in doc.captions:
        for block in doc.blocks:
            if block.kind == "paragraph":
                assert caption not in block.text


def test_seed_table_rows_carry_header_labels() -> None:
    rows = [b for b in seed_doc().blocks if b.kind == "table_row"]
    assert len(rows) == 15
    assert rows[12].table == "南京高新区创新型产业集群建设名单｜序号 13｜集群名称 生物医药产业集群｜建设单位 江宁园"


def test_gb18030_and_bom_texts_decode() -> None:
    text = "南京高新区创新型产业集群。"
    assert ingest.parse(text.encode("gb18030"), "g.txt").text == text
    assert ingest.parse(b"\xef\xbb\xbf" + text.encode(), "b.txt").text == text


def test_empty_and_unsupported_files_are_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"empty\.txt"):
        ingest.parse(b"  \n", "empty.txt")
    (tmp_path / "x.xyz").write_text("a")
    with pytest.raises(DocumentError, match=r"x\.xyz"):
        ingest.load(tmp_path / "x.xyz", tmp_path)


def test_corpus_files_skip_eval_sets_and_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("内容。")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "qa.txt").write_text("问题")
    (tmp_path / ".hidden.txt").write_text("x")
    assert [p.name for p in ingest.corpus_files(tmp_path)] == ["a.txt"]
    with pytest.raises(CorpusError):
        list(ingest.corpus_files(tmp_path / "missing"))
