"""Document-aware ranking: a question's years and places against each document's identity."""

from __future__ import annotations

from pathlib import Path

from policyqa.embed import HashEmbedder
from policyqa.ingest.identity import Identities, Mentions, conflicting_places, places_in, units_in
from policyqa.ingest.segment import Segmenter, normalize
from policyqa.models import Chunk
from policyqa.search.ranking import search
from policyqa.snapshot import index
from policyqa.snapshot.refresh import refresh

ROOT = Path(__file__).resolve().parents[1]
NOTICES = ROOT / "tests" / "data" / "multidoc"


def test_places_are_found_whole_and_by_short_name() -> None:
    assert places_in("广州市海珠区2026年来穗人员") == {"广州市", "海珠区"}
    assert places_in("广西省举报") == {"广西"}
    assert places_in("海关监管关系影响仓储合同") == set()  # a word jieba tags as a place, not a division


def test_a_place_conflicts_only_when_the_document_names_another_as_specific() -> None:
    assert conflicting_places({"海珠区", "广州市"}, {"广州市", "天河区"}, "") == ["海珠区"]
    assert conflicting_places({"北京市"}, {"广州市"}, "") == ["北京市"]
    assert conflicting_places({"上海市"}, {"奉贤区"}, "") == []  # 奉贤 is in Shanghai
    assert conflicting_places({"广东"}, {"广州"}, "") == []
    assert conflicting_places({"北京市"}, set(), "") == []  # a document that names no place contradicts none
    assert conflicting_places({"北京市"}, {"广州市"}, "北京市也有类似做法") == []  # it mentions the place


def test_units_below_the_county_are_named_by_their_suffix() -> None:
    assert units_in("万里街道办事处2026年的三公经费") == {"万里街道"}
    assert units_in("上海市普陀区长征镇2025年部门预算") == {"长征镇"}
    assert units_in("参加城镇职工基本养老保险") == set()  # a generic word, not a name
    assert units_in("乡镇卫生院的补助") == set()
    assert units_in("景德镇的补贴") == set()  # a city: the division list answers for it


def test_a_unit_the_document_never_mentions_is_a_conflict() -> None:
    chunks = [
        chunk("a", "上海市普陀区人民政府万里街道办事处2025年部门预算", "部门预算收入4821.20万元。"),
        chunk("b", "上海市普陀区司法局2025年部门预算", "三公经费预算数为12万元。"),
    ]
    ids = Identities.build(chunks, Segmenter())
    question = "万里街道办事处2025年的三公经费预算是多少？"
    agree = ids.agreement(Segmenter().query_words(question), question)
    assert agree["a"].conflicts == () and agree["b"].conflicts == ("万里街道",)
    other = "上海市普陀区长征镇2025年部门预算收入是多少？"
    assert all(a.conflicts == ("长征镇",) for a in ids.agreement(Segmenter().query_words(other), other).values())


def chunk(doc: str, title: str, text: str) -> Chunk:
    return Chunk(doc + text[:4], doc, f"{doc}.txt", title, "", text, 0, len(text))


def test_years_and_places_of_the_question_against_each_document() -> None:
    chunks = [
        chunk("a", "广州市2025年度城乡居民医保缴费通告", "个人缴费标准为每人413元。"),
        chunk("b", "广州市2026年度城乡居民医保缴费通告", "个人缴费标准为每人549元。"),
    ]
    ids = Identities.build(chunks, Segmenter())
    words = Segmenter().query_words("广州市2026年度城乡居民医保个人缴费标准")
    agree = ids.agreement(words, "广州市2026年度城乡居民医保个人缴费标准")
    assert agree["a"].conflicts == ("2026",) and agree["b"].conflicts == ()
    assert agree["b"].score > agree["a"].score
    other = ids.agreement(Segmenter().query_words("深圳市医保缴费标准"), "深圳市医保缴费标准")
    assert other["a"].conflicts == ("深圳市",)
    assert ids.agreement(words, "广州市2026年度城乡居民医保个人缴费标准", ["b", "b"]) == {"b": agree["b"]}


def test_asking_about_some_documents_answers_as_asking_about_all() -> None:
    chunks = [
        chunk("a", "广州市天河区2025年积分入学指引", "天河区积分入学申请条件。海珠区另行规定。"),
        chunk("b", "深圳市2026年积分入学指引", "深圳市积分入学。"),
        chunk("c", "积分入学常见问题", "广州市海珠区、天河区均可申请。"),
        chunk("d", "广州市海珠区2026年积分入学指引", "海珠区积分入学申请条件。"),
    ]
    ids = Identities.build(chunks, Segmenter())
    for question in ("海珠区2026年积分入学申请条件", "北京市积分入学", "深圳市积分入学条件"):
        words = Segmenter().query_words(question)
        everything = ids.agreement(words, question)
        assert {d for d, a in everything.items() if a.conflicts}  # each question contradicts some document
        for some in (["a"], ["d", "b"], ["c", "a", "d"]):
            assert ids.agreement(words, question, some) == {d: everything[d] for d in some}


def test_the_year_a_question_names_picks_its_document_and_a_missing_year_is_flagged(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("notice-2024-青山市科技创新券.txt", "notice-2025-青山市科技创新券.txt"):
        (corpus / name).write_bytes((NOTICES / name).read_bytes())
    embedder = HashEmbedder(64)
    refresh(corpus, tmp_path / "index", embedder)
    ix = index.load(tmp_path / "index", embedder)
    for year, figure in (("2024", "30%"), ("2025", "40%")):
        result = search(ix, embedder, f"青山市{year}年企业用创新券买检验检测服务补贴比例是多少？", 3)
        assert year in result.hits[0].chunk.source and figure in result.hits[0].chunk.text
        assert result.confidence is not None and result.confidence.confident
    unanswerable = search(ix, embedder, "青山市2026年度科技创新券补贴标准是多少？", 3)
    assert unanswerable.confidence is not None and not unanswerable.confidence.confident
    assert unanswerable.confidence.conflicts == ("2026",)


def test_a_document_mentions_a_place_as_its_normalised_text_does() -> None:
    texts = ("办理地点：广州市天河区。", "⼴州市（康熙部首）", "ＡＢＣ 广 州", "㈱广州分公司")
    mentions = Mentions("", texts)
    for word in ("广州市", "天河区", "广州", "州分", "abc", "深圳市", "(株)广州"):
        assert (word in mentions) == any(word in normalize(t) for t in texts), word
    assert "广州市" in Mentions("", ("⼴州市",))  # a Kangxi radical that NFKC makes an ideograph
    assert "丽水市" in Mentions("", ("\U0002f800水市",))  # a compatibility ideograph beyond the basic plane
