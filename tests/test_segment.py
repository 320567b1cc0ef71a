from policyqa.ingest.segment import Segmenter, domain_words, normalize, split_sentences


def test_normalize_folds_full_width_and_case() -> None:
    assert normalize("ＡＢＣ１２３　（一）") == "abc123 (一)"


def test_sentences_cover_text_and_keep_closing_quotes() -> None:
    text = "他说：“推进创新。”然后离开了！最后一句"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["他说：“推进创新。”", "然后离开了！", "最后一句"]


def test_words_drop_stopwords_and_punctuation() -> None:
    words = Segmenter().words_of("南京有几个国家级创新型产业集群？")
    assert "南京" in words and "国家级" in words
    assert "？" not in words and "有" not in words


def test_domain_dictionary_keeps_names_whole() -> None:
    cells = [
        "人工智能(智能网联汽车)创新型产业集群",
        "新港国家高新园",
        "未来网络创新型产业集群",
        "江宁国家高新园",
        "医工创新型产业集群",
        "集成电路创新型产业集群",
    ]
    words = domain_words([], cells, ["科技部印发《关于深入推进创新型产业集群高质量发展的意见》"])
    assert {"创新型产业集群", "江宁国家高新园", "智能网联汽车"} <= words
    seg = Segmenter(words)
    tokens = seg.words_of("江宁国家高新园的智能网联汽车创新型产业集群")
    assert {"创新型产业集群", "江宁国家高新园", "智能网联汽车"} <= set(tokens)
