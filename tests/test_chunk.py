import itertools

from policyqa.ingest import loaders as ingest
from policyqa.ingest.chunk import ChunkSettings, chunk_document

from .conftest import SEED


def seed_chunks():
    doc = ingest.parse(SEED.read_bytes(), SEED.name)
    return doc, chunk_document(doc)


def test_chunks_respect_the_size_limit_and_offsets() -> None:
    doc, chunks = seed_chunks()
    assert chunks
    for c in chunks:
        assert len(c.text) <= 400
        if c.kind == "text":
            assert doc.text[c.start : c.end] == c.text


def test_chunks_never_cut_a_sentence_and_overlap_by_one() -> None:
    long_para = "".join(f"第{i}句讲的是创新型产业集群的发展情况和下一步的工作安排。" for i in range(30))
    doc = ingest.parse(f"标题\n\n一、概况\n\n{long_para}\n".encode(), "long.txt")
    chunks = chunk_document(doc, ChunkSettings())
    assert len(chunks) > 2
    assert chunks[0].text.startswith("一、概况\n第0句")  # the heading opens its section's first passage
    for c in chunks:
        assert c.text.endswith("。") and c.text.removeprefix("一、概况\n").startswith("第")
        assert len(c.text) <= 400
        assert c.section == "一、概况"
    for a, b in itertools.pairwise(chunks):
        last = a.text.split("。")[-2] + "。"
        assert b.text.startswith(last)


def test_an_overlong_sentence_is_cut_at_clauses() -> None:
    sentence = "，".join(["推动创新型产业集群高质量发展"] * 60) + "。"
    doc = ingest.parse(f"标题\n\n{sentence}\n".encode(), "s.txt")
    chunks = chunk_document(doc)
    assert len(chunks) >= 3 and all(len(c.text) <= 400 for c in chunks)


def test_every_chunk_carries_title_and_breadcrumb() -> None:
    doc, chunks = seed_chunks()
    three = doc.text.index("三、推动南京创新型产业集群高质量发展的政策建议")
    under_three = [c for c in chunks if c.start > three]
    assert len(under_three) >= 8
    for c in under_three:
        assert c.section.startswith("三、推动南京创新型产业集群高质量发展的政策建议 › （".replace("（", "("))
    for c in chunks:
        assert c.title == "南京高新区创新型产业集群如何高质量发展"
        assert c.context.startswith(c.title)


def test_table_rows_are_their_own_passages() -> None:
    _, chunks = seed_chunks()
    rows = [c for c in chunks if c.kind == "table_row"]
    assert len(rows) == 15
    assert all(r.text.startswith("南京高新区创新型产业集群建设名单｜序号 ") for r in rows)


def test_chunk_ids_are_stable() -> None:
    _, a = seed_chunks()
    _, b = seed_chunks()
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    assert len({c.chunk_id for c in a}) == len(a)


def test_the_apollo_sentence_is_whole_and_caption_free() -> None:
    _, chunks = seed_chunks()
    sentence = "依托阿波罗智行信息科技(南京)有限公司建设南京市唯一的江苏省车联网先导区"
    holding = [c for c in chunks if sentence in c.text]
    assert holding
    assert all("生物医药制品制造创新型产业集群\n" not in c.text for c in holding)


def test_no_caption_inside_any_chunk() -> None:
    doc, chunks = seed_chunks()
    assert len(doc.captions) >= 5
    for caption in doc.captions:
        for c in chunks:
            assert caption not in c.text
