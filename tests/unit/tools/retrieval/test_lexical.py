"""BM25 with bm25s over chunk titles and texts: weights, query stopwords, files."""

from pathlib import Path

import numpy as np

from tools.retrieval.lexical import LexicalIndex, tokenize


def test_tokens_are_stemmed_and_lucene_stopwords_dropped() -> None:
    assert tokenize(["The passwords are resetting"]) == [["password", "reset"]]
    assert tokenize(["how do I reset my password"], "extended") == [["reset", "password"]]


def test_title_weight_adds_a_title_only_score() -> None:
    index = LexicalIndex.build(["Billing", "Export"], ["billing emails", "billing exports"])
    plain = index.scores("billing", text_weight=1.0, title_weight=0.0)
    boosted = index.scores("billing", text_weight=1.0, title_weight=2.0)
    assert plain[0] > plain[1] > 0 and boosted[1] == plain[1] and boosted[0] > plain[0]
    only_titles = index.scores("billing", text_weight=0.0, title_weight=1.0)
    assert only_titles[1] == 0 and only_titles[0] > 0


def test_chunks_without_titles_or_words_score_zero_and_round_trip(tmp_path: Path) -> None:
    index = LexicalIndex.build(["", "", ""], ["alpha beta", "gamma", "the"])
    index.save(tmp_path)
    again = LexicalIndex.load(tmp_path, 3)
    for query in ("gamma", "the", "unknown words"):
        assert np.array_equal(
            index.scores(query, text_weight=1.0, title_weight=1.0),
            again.scores(query, text_weight=1.0, title_weight=1.0),
        )
    gamma = again.scores("gamma", text_weight=1.0, title_weight=1.0)
    assert gamma[0] == 0 and gamma[1] > 0 and gamma[2] == 0


def test_an_unknown_query_word_is_read_as_a_typo_of_an_indexed_one() -> None:
    index = LexicalIndex.build(["Password", "Billing"], ["reset your password", "invoices"])
    typo = index.scores("pasword", text_weight=1.0, title_weight=0.0)
    right = index.scores("password", text_weight=1.0, title_weight=0.0)
    assert np.array_equal(typo, right) and typo[0] > 0
    assert not index.scores("latex", text_weight=1.0, title_weight=1.0).any()
