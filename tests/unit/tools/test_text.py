import math

import pytest

from tools.text import BM25, respellings, split_sentences, stem, tokenize


def test_tokenize_lowercases_and_drops_stopwords_and_question_words():
    assert tokenize("How do I reset MY Password?") == ["reset", "password"]


def test_tokenize_keeps_product_names_and_digits():
    assert tokenize("Connect Quillpad to Slack with 2FA") == ["connect", "quillpad", "slack", "2fa"]


def test_tokenize_splits_on_punctuation():
    assert tokenize("two-factor, Settings→Security") == ["two", "factor", "set", "security"]


@pytest.mark.parametrize(
    "variants",
    [
        ["resetting", "reset", "resets"],
        ["invoices", "invoice"],
        ["syncing", "synced", "sync", "syncs"],
        ["billing", "bill", "billed"],
        ["cancelled", "cancelling", "cancel"],
        ["shared", "sharing", "share", "shares"],
        ["policies", "policy"],
        ["passes", "passed", "pass"],
        ["exports", "exported", "exporting", "export"],
    ],
)
def test_stem_conflates_inflections(variants):
    assert len({stem(v) for v in variants}) == 1


@pytest.mark.parametrize("word", ["access", "status", "analysis", "pdf", "app", "apply"])
def test_stem_leaves_words_that_only_look_inflected(word):
    assert stem(word) == word


def test_stem_keeps_distinct_words_apart():
    assert stem("export") != stem("import")
    assert stem("note") != stem("notebook")


def test_split_sentences():
    text = "Open Settings. Click Export, e.g. the PDF option!\nIs it v1.2? 3 files remain."
    assert split_sentences(text) == [
        "Open Settings.",
        "Click Export, e.g. the PDF option!",
        "Is it v1.2?",
        "3 files remain.",
    ]


def test_split_sentences_drops_list_markers_and_blank_lines():
    assert split_sentences("- First step.\n\n2. Second step.") == ["First step.", "Second step."]


def _index() -> BM25:
    return BM25(
        [
            tokenize("Reset your password from the sign-in page."),
            tokenize("Export a note to PDF or Markdown."),
            tokenize("Your password must be ten characters; password rules apply."),
            tokenize("Invite people to a workspace."),
        ]
    )


def test_bm25_ranks_matching_documents_first():
    scores = _index().scores(tokenize("reset password"))
    assert scores[0] == max(scores)
    assert scores[2] > 0
    assert scores[1] == scores[3] == 0.0


def test_bm25_rewards_term_frequency():
    index = BM25([["password", "rule"], ["password", "password", "rule"]])
    first, second = index.scores(["password"])
    assert second > first > 0


def test_bm25_idf_favours_rare_terms_and_never_goes_negative():
    index = _index()
    assert index.idf("export") > index.idf("password") > 0
    assert index.idf("nowhere") > index.idf("export")
    assert math.isclose(index.idf("nowhere"), math.log(1 + 4.5 / 0.5))
    everywhere = BM25([["sync"], ["sync"], ["sync"]])
    assert everywhere.idf("sync") > 0


def test_bm25_counts_repeated_query_tokens_once():
    index = _index()
    assert index.scores(["export", "export"]) == index.scores(["export"])


def test_bm25_length_normalisation_follows_b():
    docs = [["refund"], ["refund", "plan", "annual", "charge", "invoice", "card"]]
    normalised = BM25(docs, b=0.75).scores(["refund"])
    flat = BM25(docs, b=0.0).scores(["refund"])
    assert normalised[0] > normalised[1]
    assert math.isclose(flat[0], flat[1])


def test_bm25_on_empty_collection():
    index = BM25([])
    assert index.scores(["anything"]) == []
    assert index.idf("anything") > 0


def test_an_unknown_word_is_respelt_as_the_known_words_one_edit_away():
    known = {"password", "passport", "reset", "resent", "invoice", "later", "notion"}
    assert respellings("pasword", known) == ["password"]  # a letter dropped
    assert respellings("resett", known) == ["resent", "reset"]  # added, or changed
    assert respellings("invioce", known) == ["invoice"]  # two neighbours swapped
    assert respellings("password", known) == []  # known words stay
    assert respellings("latex", known) == []  # too short to tell from "later"
    assert respellings("passwords", {"pass"}) == []  # more than one edit
