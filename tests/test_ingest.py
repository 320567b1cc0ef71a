from pathlib import Path

import pytest

from policyqa.errors import CorpusError, DocumentError
from policyqa.ingest import loaders as ingest
from policyqa.ingest.chunk import chunk_document
from policyqa.models import Chunk

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


# --- real-document shapes: items, laws, flattened notices, contents, web pages -----------------------

LAW = """# 中华人民共和国著作权法

1990年9月7日 第七届全国人民代表大会常务委员会第十五次会议通过

<!-- INFO END -->

第一章 总则

第三条 本法所称的作品，是指文学、艺术和科学领域内具有独创性并能以一定形式表现的智力成果，包括：

（一）文字作品；

（二）口述作品；

（三）音乐、戏剧、曲艺、舞蹈、杂技艺术作品；

第五条 本法不适用于：

（一）法律、法规，国家机关的决议、决定、命令和其他具有立法、行政、司法性质的文件，及其官方正式译文；

（二）单纯事实消息；

（三）历法、通用数表、通用表格和公式。

第二章 著作权

第一节 著作权人及其权利

第九条 著作权人包括：

（一）作者；

（二）其他依照本法享有著作权的自然人、法人或者非法人组织。
"""


def law_chunks() -> list[Chunk]:
    return chunk_document(ingest.parse(LAW.encode(), "law.md"))


def test_law_items_stay_in_their_article_passage() -> None:
    fifth = next(c for c in law_chunks() if "第五条" in c.text)
    assert "（一）法律、法规，国家机关的决议" in fifth.text and "（三）历法、通用数表" in fifth.text
    # two short articles of one chapter share a passage, whole, named by their range
    assert fifth.section == "第一章 总则 › 第三条至第五条"
    assert fifth.text.startswith("第一章 总则\n第三条") and "（三）音乐、戏剧" in fifth.text


def test_articles_past_a_thousand_are_articles() -> None:
    text = (
        "# 民法典\n\n第五章 名誉权和荣誉权\n\n第一千零二十四条 民事主体享有名誉权。\n\n"
        "第一千零二十五条 行为人为公共利益实施新闻报道的，不承担民事责任。\n"
    )
    doc = ingest.parse(text.encode(), "civil.md")
    assert [b.section[-1] for b in doc.blocks if b.kind == "paragraph"] == ["第一千零二十四条", "第一千零二十五条"]
    assert [c.section for c in chunk_document(doc)] == ["第五章 名誉权和荣誉权 › 第一千零二十四条至第一千零二十五条"]


def test_articles_are_packed_whole_within_their_chapter() -> None:
    body = "规定的内容是关于合同当事人权利义务的具体安排，当事人应当遵守。" * 3  # ~100 characters
    articles = "\n\n".join(f"第{n}条 {body}" for n in "一二三四五六")
    text = f"# 某法\n\n第一章 总则\n\n{articles}\n\n第二章 附则\n\n第七条 {body}\n"
    parts = chunk_document(ingest.parse(text.encode(), "l.md"))
    assert [p.section for p in parts] == [
        "第一章 总则 › 第一条至第三条",
        "第一章 总则 › 第四条至第六条",
        "第二章 附则 › 第七条",
    ]
    for part in parts:
        assert len(part.text) <= 400
        assert part.text.rstrip().endswith("遵守。")  # cut between articles, never inside one
    assert sum(p.text.count("条 规定") for p in parts) == 7  # every article once


def test_law_headings_open_the_first_article_and_stay_in_every_breadcrumb() -> None:
    ninth = next(c for c in law_chunks() if "第九条" in c.text)
    assert ninth.section == "第二章 著作权 › 第一节 著作权人及其权利 › 第九条"
    assert ninth.text.startswith("第二章 著作权\n第一节 著作权人及其权利\n第九条")
    assert "（二）其他依照本法享有著作权的自然人" in ninth.text


def test_a_long_article_is_split_between_items_with_its_breadcrumb() -> None:
    items = "\n\n".join(
        f"（{n}）第{n}项规定的内容是关于著作权许可使用合同应当包括的主要内容和具体条款；"
        for n in "一二三四五六七八九十"
    )
    doc = ingest.parse(f"# 某法\n\n第一章 总则\n\n第十条 许可使用合同包括下列主要内容：\n\n{items}\n".encode(), "l.md")
    parts = chunk_document(doc)
    assert len(parts) >= 2
    for part in parts:
        assert part.section == "第一章 总则 › 第十条" and len(part.text) <= 400
        assert part.text.endswith("；")  # cut between items, never inside one
    assert sum(part.text.count("（") for part in parts) == 10  # every item once, no overlap


def test_markup_comments_are_removed_by_a_named_rule() -> None:
    doc = ingest.parse(LAW.encode(), "law.md")
    assert ("markup comment", "<!-- INFO END -->") in doc.removed
    assert "INFO END" not in doc.text


def test_one_sentence_ordinal_and_numbered_items_are_body_text() -> None:
    text = "通知\n\n一、工作要求\n\n一是加强领导。\n\n二是压实责任。\n\n（一）因公出国（境）费839万元，比上年减少。"
    passages = "\n".join(c.text for c in chunk_document(ingest.parse(text.encode(), "n.txt")))
    for line in ("一是加强领导。", "二是压实责任。", "（一）因公出国（境）费839万元"):
        assert line in passages


FLAT = (
    "某市关于支持企业复工复产的通知 某市关于支持企业复工复产的通知 某府办〔2020〕8号 "
    "各区人民政府，市各有关单位： 为支持企业有序复工复产，现就有关事项通知如下： "
    "一、加大金融支持。对受影响较大的中小企业，银行不得盲目抽贷、断贷、压贷。对到期还款困难的企业，可予以展期或续贷。 "
    "二、减轻税费负担。对受疫情影响较大的企业，可申请延期缴纳税款，最长不超过3个月。"
    "（一）减免房租。对承租国有资产类经营用房的中小企业，免收2月份房租。（二）降低成本。用电、用气价格阶段性下调。 "
    "三、强化稳岗就业。对不裁员或少裁员的企业，返还其上年度实际缴纳失业保险费的50%。 某市人民政府办公室 2020年2月8日\n"
)


def test_a_flattened_notice_gets_its_structure_back() -> None:
    doc = ingest.parse(FLAT.encode(), "flat.txt")
    assert doc.title == "某市关于支持企业复工复产的通知"
    assert ("repeated title", "某市关于支持企业复工复产的通知") in doc.removed
    chunks = chunk_document(doc)
    sections = {c.section for c in chunks}
    assert "二、减轻税费负担" in sections and "一、加大金融支持" in sections
    rent = next(c for c in chunks if "免收2月份房租" in c.text)
    assert rent.section.startswith("二、减轻税费负担")
    assert any("某府办〔2020〕8号" in c.text for c in chunks)  # a document number is not a caption
    assert not doc.captions


def test_a_table_of_contents_is_removed_and_the_real_headings_kept() -> None:
    text = (
        "办法\n\n目录\n\n第一章 总则\n\n第二章 附则\n\n第一章 总则\n\n第一条 为规范管理，制定本办法。"
        "\n\n第二章 附则\n\n第二条 本办法自发布之日起施行。\n"
    )
    doc = ingest.parse(text.encode(), "t.txt")
    assert [t for r, t in doc.removed if r == "table of contents"] == ["目录", "第一章 总则", "第二章 附则"]
    second = next(c for c in chunk_document(doc) if "第二条" in c.text)
    assert second.section == "第二章 附则 › 第二条"


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>关于印发扶持办法的通知_某市人民政府门户网站</title>
<script>var x = "脚本内容";</script></head><body>
<div class="top-nav"><a href="/">首页</a><a href="/zw">政务公开</a><a href="/fw">政务服务</a></div>
<div class="position">您当前所在的位置：首页 &gt; 政务公开 &gt; 通知公告</div>
<article class="newgotop"></article>
<div class="main">
 <h1 class="content_title">关于印发扶持办法的通知</h1>
 <div class="content_attr">2024-01-05 来源：某市科技局 <span class="share">分享到 微信 微博</span></div>
 <div class="content_article">
  <p>某科规〔2024〕1号</p>
  <p>一、对新认定的高新技术企业给予一次性奖励20万元。</p>
  <p>二、对研发投入超过1000万元的企业，按照10%给予补助，最高500万元。</p>
  <div class="article-extended">打印 关闭</div>
 </div>
 <ul class="related"><li><a href="/1">相关新闻一</a></li><li><a href="/2">相关新闻二</a></li></ul>
</div>
<div class="footer">版权所有：某市人民政府 主办单位：某市人民政府办公厅 粤ICP备12345678号</div>
</body></html>"""


def test_a_saved_page_with_a_decoy_article_keeps_its_main_content() -> None:
    doc = ingest.parse(PAGE.encode(), "page.html")
    assert doc.title == "关于印发扶持办法的通知"
    for kept in ("某科规〔2024〕1号", "一次性奖励20万元", "最高500万元", "2024-01-05 来源：某市科技局"):
        assert kept in doc.text
    for chrome in ("首页", "脚本内容", "分享到", "打印", "相关新闻", "版权所有", "ICP备", "您当前所在的位置"):
        assert chrome not in doc.text
    rules = {rule for rule, _ in doc.removed}
    assert {"navigation", "share and print links", "footer"} <= rules


def test_a_page_whose_only_article_is_empty_falls_back_to_the_body() -> None:
    page = "<html><body><article></article><div><p>第一条 为规范管理，制定本办法。</p></div></body></html>"
    assert "第一条 为规范管理" in ingest.parse(page.encode(), "p.html").text


def test_a_notices_addressees_and_signature_are_body_not_captions() -> None:
    """Plain text with single line breaks and a blank line before the addressees and the signature: the
    wider gap made both look like figure captions, and they were removed."""
    text = (
        "某市人民政府办公室关于做好春季农业生产的通知\n\n各县（市、区）人民政府，市直有关单位：\n"
        "为做好今年春季农业生产工作，现将有关事项通知如下。\n一、加强组织领导\n各地要成立工作专班，统筹推进春耕备耕。\n"
        "二、强化资金保障\n市财政安排专项资金500万元，用于支持春耕生产。\n\n某市人民政府办公室\n2024年3月1日\n"
    )
    doc = ingest.parse(text.encode(), "notice.txt")
    assert not doc.captions
    passages = " ".join(c.text for c in chunk_document(doc))
    assert "各县（市、区）人民政府，市直有关单位：" in passages
    assert "某市人民政府办公室\n2024年3月1日" in passages or "某市人民政府办公室 2024年3月1日" in passages


def test_markdown_headings_in_a_txt_file_are_headings() -> None:
    """Markdown saved as .txt (or uploaded under a .txt name: the type comes from the content, and Markdown is
    text) kept its `##` marks in the text and made a passage of each heading alone."""
    text = (
        "# 某市科技创新券管理办法\n\n## 第一章 总则\n\n第一条 为规范科技创新券管理，制定本办法。\n\n"
        "## 第二章 申领\n\n第三条 企业可在线申领创新券，每家每年不超过20万元。\n"
    )
    doc = ingest.parse(text.encode(), "办法.txt")
    assert doc.title == "某市科技创新券管理办法"
    chunks = chunk_document(doc)
    assert all("#" not in c.text for c in chunks) and all(c.body.strip() for c in chunks)
    assert next(c for c in chunks if "20万元" in c.text).section.startswith("第二章 申领")
    one = ingest.parse("# 注释行\n正文第一段。\n".encode(), "a.txt")  # one such line is not taken for Markdown
    assert "# 注释行" in one.text or one.title == "# 注释行"
