"""The tantivy lexical leg beyond the contract every leg shares (tests/backends/test_lexical_contract.py).

Lucene BM25 scores, index lifecycle, concurrency and speed.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest
import tantivy

from search_rerank.backends import tantivy_index
from search_rerank.backends.tantivy_index import WORD_PATTERN, TantivyRetriever, english_analyzer
from search_rerank.core.errors import ConfigError, StageError
from search_rerank.core.filters import Filters
from search_rerank.core.product import Product
from search_rerank.core.settings import LexicalSettings


def make(products=(), path: Path | None = None, **settings) -> TantivyRetriever:
    retriever = TantivyRetriever(path, LexicalSettings(**settings))
    retriever.warm_up()
    if products:
        retriever.add(products)
    return retriever


def ids(candidates) -> list[str]:
    return [c.product_id for c in candidates]


def scores(candidates) -> dict[str, float]:
    return {c.product_id: c.score for c in candidates}


# --- scoring ---------------------------------------------------------------------------------


def lucene_bm25(tf: int, dl: int, avgdl: float, n_docs: int, doc_freq: int) -> float:
    """Lucene's classic BM25, with the (k1 + 1) numerator that tantivy keeps and Lucene 8 dropped."""
    k1, b = 1.2, 0.75
    idf = math.log(1 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


def test_bm25_score_equals_hand_computed_lucene_value_on_title_only_index():
    titles = {"one": "sofa", "two": "red sofa", "tf2": "sofa bed sofa", "four": "big red oak table", "five": "chair"}
    retriever = make([Product(id=pid, title=t) for pid, t in titles.items()], field_boosts={"title": 1.0})
    avgdl = sum(len(t.split()) for t in titles.values()) / len(titles)
    expected = {
        "one": lucene_bm25(1, 1, avgdl, 5, 3),
        "two": lucene_bm25(1, 2, avgdl, 5, 3),
        "tf2": lucene_bm25(2, 3, avgdl, 5, 3),
    }
    found = scores(retriever.search("sofa", 10))
    assert found.keys() == expected.keys()
    for pid, value in expected.items():
        assert found[pid] == pytest.approx(value, rel=1e-5), pid


def test_repeated_query_word_counts_once():
    retriever = make([Product(id="a", title="red sofa"), Product(id="b", title="oak table")])
    assert scores(retriever.search("sofa sofas SOFA", 10)) == scores(retriever.search("sofa", 10))


def test_field_boost_multiplies_bm25_score():
    catalog = [Product(id="a", title="red sofa"), Product(id="b", title="oak table")]
    plain = scores(make(catalog, field_boosts={"title": 1.0}).search("sofa", 10))["a"]
    boosted = scores(make(catalog, field_boosts={"title": 2.5}).search("sofa", 10))["a"]
    assert boosted == pytest.approx(2.5 * plain, rel=1e-6)


# --- words of scripts written without spaces ---------------------------------------------------

CJK = [
    Product(id="zh", title="东京塔模型"),
    Product(id="ja", title="東京タワーのプラモデル"),
    Product(id="en", title="Tokyo tower model kit"),
]
# "Nordic style solid wood dining table and chairs, six seats, for the home": 18 characters, 54 bytes.
LONG_CHINESE = "北欧风格实木餐桌椅组合套装六人座家用"
# "noise-cancelling wireless headphones" as one Katakana word: 20 characters, 60 bytes.
LONG_KATAKANA = "ノイズキャンセリングワイヤレスヘッドホン"
# What tantivy's simple tokenizer and a regex tokenizer must cut alike: letters and digits in runs, whatever
# their script, accents, apostrophes, hyphens, model numbers, emoji, underscores and combining marks.
NOT_CJK = [
    "café crème brûlée",
    "cafe\u0301 cre\u0300me",
    "don't won’t O'Reilly",
    "e-bike wi-fi 3-in-1 DW-4500X/B",
    '3.5mm 1/2" 12V-2A v1.2.3-beta+build.5',
    "iPhone 15 Pro Max (256GB) C++ C# .NET #hashtag @user",
    "😀 emoji 👍🏽 ❤️ family 👨\u200d👩\u200d👧 \U0001f1eb\U0001f1f7",
    "snake_case_name __init__",
    "Ⅻ ½ ² ① ⅷ ⓐⓑⓒ 𝐁𝐨𝐥𝐝 ﬁ ﬂ ß",
    "Straße ǅemal İstanbul ΣΊΣΥΦΟΣ Москва́ ёлка",
    "हिन्दी क्षत्रिय العربية עִבְרִית ภาษาไทย สวัสดี",
    "한국어 삼성TV 갤럭시S24",
    "soft\u00adhyphen zero\u200bwidth NBSP\u00a0here",
    "x" * 45,
    "é" * 25,
]


def simple_analyzer() -> tantivy.TextAnalyzer:
    """The analyzer before Chinese and Japanese were cut into words: tantivy's simple tokenizer, same filters."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def test_chinese_title_is_found_by_a_word_of_it():
    assert ids(make(CJK).search("模型", 10)) == ["zh"]


def test_japanese_title_is_found_by_a_word_of_it():
    retriever = make(CJK)
    assert ids(retriever.search("プラモデル", 10)) == ["ja"]
    assert set(ids(retriever.search("東京", 10))) == {"ja", "zh"}  # 東 is in both (Simplified 东 is not): "ja" first


def test_long_chinese_title_is_found_by_a_word_of_it():
    retriever = make([*CJK, Product(id="long", title=LONG_CHINESE)])
    assert ids(retriever.search("餐桌", 10)) == ["long"]


def test_long_katakana_word_is_found_by_itself():
    retriever = make([*CJK, Product(id="long", title=LONG_KATAKANA)])
    assert ids(retriever.search(LONG_KATAKANA, 10)) == ["long"]


def test_ideographs_and_hiragana_are_words_and_katakana_runs_one():
    assert english_analyzer().analyze("東京タワーの模型2023年版") == [
        "東",
        "京",
        "タワー",
        "の",
        "模",
        "型",
        "2023",
        "年",
        "版",
    ]


@pytest.mark.parametrize("text", NOT_CJK)
def test_text_without_chinese_or_japanese_is_cut_as_the_simple_tokenizer_cuts_it(text):
    assert english_analyzer().analyze(text) == simple_analyzer().analyze(text)


# The characters of Chinese and Japanese by their names in Python's Unicode database (an oracle independent of
# the analyzer's pattern): ideographs, kana, iteration and repeat marks, Hangzhou numerals.
CJK_NAME = re.compile(
    r"CJK |HIRAGANA |KATAKANA|HALFWIDTH KATAKANA|HENTAIGANA |IDEOGRAPHIC (ITERATION|NUMBER)|VERTICAL (KANA|IDEOGRAPHIC) "
    r"|HANGZHOU NUMERAL |OLD CHINESE |VIETNAMESE ALTERNATE READING MARK "
)


def test_every_character_outside_chinese_and_japanese_is_cut_as_before():
    """Each assigned character alone and between two letters: a word, part of theirs, or nothing, as before."""
    characters = [
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c)) not in ("Cn", "Cs") and not CJK_NAME.match(unicodedata.name(chr(c), ""))
    ]
    simple = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).build()
    words = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(WORD_PATTERN)).build()
    for text in (" ".join(characters), " ".join(f"a{c}a" for c in characters)):
        assert words.analyze(text) == simple.analyze(text)


# --- index lifecycle -------------------------------------------------------------------------


def test_index_persists_across_reopen(tmp_path):
    first = make([Product(id="a", title="red sofa", price=10.0), Product(id="b", title="lamp")], tmp_path)
    reopened = make(path=tmp_path)
    assert reopened.count() == 2
    assert reopened.search("sofa", 10, Filters(price_max=20)) == first.search("sofa", 10, Filters(price_max=20))
    reopened.add([Product(id="c", title="green sofa")])
    first.warm_up()
    assert set(ids(first.search("sofa", 10))) == {"a", "c"}


def test_reopen_with_other_schema_raises_config_error(tmp_path):
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body")
    tantivy.Index(builder.build(), path=str(tmp_path))
    with pytest.raises(ConfigError, match=str(tmp_path)):
        make(path=tmp_path)


def test_write_while_another_writer_holds_the_index_raises_stage_error(tmp_path):
    retriever = make([Product(id="a", title="sofa")], tmp_path)
    other = tantivy.Index.open(str(tmp_path)).writer(heap_size=50_000_000)
    try:
        with pytest.raises(StageError, match="Another process"):
            retriever.add([Product(id="b", title="sofa")])
    finally:
        other.wait_merging_threads()
    assert retriever.add([Product(id="b", title="sofa")]) == 1


@pytest.mark.parametrize("bm25", [{"k1": 1.5}, {"b": 0.5}])
def test_non_default_bm25_parameters_raise_config_error(bm25):
    with pytest.raises(ConfigError, match="k1=1.2, b=0.75"):
        TantivyRetriever(None, LexicalSettings(**bm25))


def test_all_zero_field_boosts_raise_config_error():
    with pytest.raises(ConfigError, match="no field a positive boost"):
        TantivyRetriever(None, LexicalSettings(field_boosts={"title": 0.0}))


def test_concurrent_searches_succeed_while_writing():
    retriever = make([Product(id=f"seed{i}", title="sofa") for i in range(50)])
    errors: list[BaseException] = []
    done = threading.Event()

    def search_until_done():
        while not done.is_set():
            try:
                if len(retriever.search("sofa", 20, Filters(price_max=1000))) > 20:
                    raise AssertionError("more than k results")
            except BaseException as exc:  # noqa: BLE001 - reported on the main thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=search_until_done) for _ in range(6)]
    for thread in threads:
        thread.start()
    for batch in range(10):
        retriever.add(Product(id=f"b{batch}-{i}", title="sofa", price=1.0) for i in range(20))
    done.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert retriever.count() == 250


def test_five_thousand_products_index_and_search_quickly():
    rng = random.Random(5)
    vocabulary = [f"word{i}" for i in range(500)]
    catalog = [
        Product(
            id=f"p{i:05d}",
            title=" ".join(rng.choices(vocabulary, k=6)),
            brand=rng.choice(["Acme", "Bolt", ""]),
            description=" ".join(rng.choices(vocabulary, k=40)),
            price=rng.choice([None, 10.0, 99.5]),
        )
        for i in range(5000)
    ]
    catalog[1234] = catalog[1234].model_copy(update={"title": "unmistakable teapot"})
    retriever = make()
    start = time.perf_counter()
    assert retriever.add(catalog) == 5000
    assert time.perf_counter() - start < 20
    assert retriever.count() == 5000
    assert ids(retriever.search("teapot", 10)) == ["p01234"]
    found = retriever.search("word1 word2 word3", 100)
    assert len(found) == 100
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


# --- typos ---------------------------------------------------------------------------------------

# Each run-together spelling is of words one product holds together; "bedrock" is of two that never meet.
BREAK_CATALOG = [
    Product(id="rustoleum", title="Rust-Oleum Stops Rust 12 oz. Flat Black Spray Paint"),
    Product(id="deckover", title="BEHR Premium DeckOver 1-gal. Wood Coating"),
    Product(id="bed", title="Oak bed frame"),
    Product(id="rock", title="Garden rock salt"),
    Product(id="rust", title="Rust remover gel"),
]


@pytest.mark.parametrize(("query", "found"), [("rustoleum", "rustoleum"), ("rustoleum spray paint", "rustoleum")])
def test_a_word_run_together_from_two_a_product_holds_together_finds_that_product_first(query, found):
    assert ids(make(BREAK_CATALOG).search(query, 10))[0] == found


def test_a_word_run_together_from_two_no_product_holds_together_is_not_broken():
    assert make(BREAK_CATALOG).search("bedrock", 10) == []


def test_an_english_word_is_never_broken_into_two_the_catalogue_has():
    # "oakbed" is no word and breaks; "bedrock" is a word of the language (and "bed"+"rock" never meet anyway).
    catalog = [*BREAK_CATALOG, Product(id="oakrock", title="bed rock")]
    assert make(catalog).search("bedrock", 10) == []


def test_a_word_an_edit_corrects_is_corrected_rather_than_broken():
    catalog = [Product(id="toilet", title="Elongated toilet seat"), Product(id="toil", title="toil et cetera")]
    assert ids(make(catalog).search("toliet", 10))[0] == "toilet"


# "deck over" and "dish washer" are each written as one word by one product, and as two by another; the two
# words are commoner in a catalogue than their compound, as in a real one.
JOIN_CATALOG = [
    Product(id="deckover", title="BEHR Premium DeckOver 1-gal. Wood Coating"),
    Product(id="deck-boards", title="Composite deck boards fastened over joists"),
    Product(id="dishwasher", title="Bosch 24 in. Dishwasher"),
    Product(id="dish-rack", title="Dish drying rack with a washer seal"),
    Product(id="deck-stain", title="Deck stain"),
    Product(id="deck-screws", title="Deck screws"),
    Product(id="over-door", title="Over the door hook"),
    Product(id="over-sink", title="Over the sink dish rack"),
    Product(id="washer", title="Front load washer"),
]


@pytest.mark.parametrize(("query", "found"), [("deck over", "deckover"), ("dish washer", "dishwasher")])
def test_two_words_a_product_writes_as_one_find_that_product_first(query, found):
    assert ids(make(JOIN_CATALOG).search(query, 10))[0] == found


def test_two_words_searched_as_typed_find_the_product_that_writes_both_first():
    # The same query without correct_typos: what the joined word changes.
    assert ids(make(JOIN_CATALOG, correct_typos=False).search("deck over", 10))[0] == "deck-boards"


def test_a_number_beside_a_word_is_not_joined_to_it():
    catalog = [Product(id="glued", title="Bin2 storage bin"), Product(id="spaced", title="Storage bin, 2 sizes")]
    assert ids(make(catalog).search("bin 2", 10))[0] == "spaced"


# --- letters with accents ------------------------------------------------------------------------

ACCENTED = [
    Product(id="a-ge", title="GE 30 in. Electric Range"),
    Product(id="cafe", title="GE Café™ 30 in. Double Oven Range"),
    Product(id="creme", title="Creme Brulee Torch"),
]


@pytest.mark.parametrize(("query", "found"), [("ge cafe", "cafe"), ("GE CAFÉ", "cafe"), ("crème brûlée", "creme")])
def test_a_word_with_accents_and_its_plain_spelling_find_each_other(query, found):
    # Elasticsearch's asciifolding, in both the index and the query: shoppers rarely type the accents a brand
    # writes, and a catalogue rarely writes those that a shopper types.
    assert ids(make(ACCENTED, correct_typos=False).search(query, 10))[0] == found


def test_a_folded_word_is_highlighted_where_the_accented_one_was_written():
    tokens = make(ACCENTED).tokens("GE Café™")
    assert [(t.text, t.char_offset_from, t.char_offset_to) for t in tokens] == [("ge", 0, 2), ("cafe", 3, 7)]


# --- inch and foot marks ----------------------------------------------------------------------------


@pytest.mark.parametrize("mark", ['"', "\u201d", "\u2033"])
def test_an_inch_mark_after_a_number_is_found_by_the_unit_typed_as_a_word(mark):
    # Without it the stand's "55" and "in." come first: the mark is no word, and the TV holds no inch.
    catalog = [
        Product(id="a-stand", title="TV Stand for TVs up to 65 in., 55 lb."),
        Product(id="b-tv", title=f"Hisense 55{mark} Class 4K TV"),
    ]
    assert ids(make(catalog, unit_spellings=True).search("55 inch tv", 10))[0] == "b-tv"


@pytest.mark.parametrize("mark", ["'", "\u2019", "\u2032"])
def test_a_foot_mark_after_a_number_is_found_by_the_unit_typed_as_a_word(mark):
    catalog = [
        Product(id="a-ladder", title="Werner 6 ft. Step Ladder, 8 Steps"),
        Product(id="b-ladder", title=f"Werner 8{mark} Step Ladder"),
    ]
    assert ids(make(catalog).search("8 ft ladder", 10))[0] == "b-ladder"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('the "300" series', ["the", "300", "seri"]),
        ("1990\u2019s style", ["1990", "s", "style"]),
        ("90's style", ["90", "s", "style"]),
        ('a "sofa"', ["a", "sofa"]),
    ],
)
def test_a_quote_or_apostrophe_is_no_unit(text, words):
    # A mark closing a quote opened before the number, or followed by letters, is no inch or foot.
    assert make().analyze(text) == words


@pytest.mark.parametrize(
    ("text", "words"), [("5'6\" ladder", ["5", "ft", "6", "in", "ladder"]), ("6'-8\"", ["6", "ft", "8", "in"])]
)
def test_a_size_in_feet_and_inches_reads_both_units(text, words):
    # A door's or a ladder's "6'8"": the foot mark is followed by the inches, and the inch mark closes no quote.
    assert make().analyze(text) == words


def test_an_inch_mark_is_highlighted_where_it_was_written():
    tokens = make().tokens('55" TV')
    assert [(t.text, t.char_offset_from, t.char_offset_to) for t in tokens] == [
        ("55", 0, 2),
        ("in", 2, 3),
        ("tv", 4, 6),
    ]


# --- units -----------------------------------------------------------------------------------------

# Each pair shares its words but for the unit, the wrong one first by id: what is found first is found by the unit.
UNIT_CATALOG = [
    Product(id="a-frame", title="60 cm Picture Frame"),
    Product(id="b-frame", title="60 in. Picture Frame"),
    Product(id="a-drill", title="18 in. Drill Bit"),
    Product(id="b-drill", title="RYOBI 18-Volt Drill"),
    Product(id="a-pipe", title="1/2 in. x 10 m PVC Pipe"),
    Product(id="b-pipe", title="1/2 in. x 10 ft. PVC Pipe"),
    Product(id="a-stud", title="Metal Stud 25 Gauge"),
    Product(id="b-stud", title="2 in. x 4 in. x 8 ft. Stud"),
    Product(id="sofa", title="Corner sofa in grey"),
    Product(id="worm", title="Inch worm toy"),
]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("60 inch picture frame", "b-frame"),
        ("60 inches frame", "b-frame"),
        ("60in frame", "b-frame"),
        ("18v drill", "b-drill"),
        ("1/2 inch pvc 10 feet", "b-pipe"),
    ],
)
def test_a_unit_spelt_another_way_finds_the_products_that_spell_it_theirs(query, found):
    assert ids(make(UNIT_CATALOG, unit_spellings=True).search(query, 10))[0] == found


def test_numbers_glued_by_an_x_find_the_dimensions_written_apart():
    assert ids(make(UNIT_CATALOG, unit_spellings=True).search("2x4 stud", 10))[0] == "b-stud"


def test_a_unit_word_not_after_a_number_is_searched_as_typed():
    # "in" of "sofa in grey" is not an inch: the inch worm toy is not found by it.
    assert "worm" not in ids(make(UNIT_CATALOG, unit_spellings=True).search("sofa in grey", 10))


def test_unit_spellings_are_off_by_default():
    assert ids(make(UNIT_CATALOG).search("60 inch picture frame", 10))[0] == "a-frame"


# --- fractions written as one character --------------------------------------------------------------

# Each distractor shares a number of the fraction: found first by that number, where the fraction finds nothing.
FRACTION_CATALOG = [
    Product(id="a-nut", title="Everbilt 3/4 in. Zinc-Plated Hex Nut"),
    Product(id="b-nut", title="Everbilt ¼ in. Zinc-Plated Hex Nut"),
    Product(id="a-tee", title="2 in. PVC Tee"),
    Product(id="b-tee", title="½ in. PVC Tee"),
    Product(id="a-pipe", title="1 in. x 2 ft. PVC Pipe"),
    Product(id="b-pipe", title="1½ in. PVC Pipe"),
    Product(id="a-bit", title="3/4 in. Spade Bit"),
    Product(id="b-bit", title="1/4 in. Spade Bit"),
]


@pytest.mark.parametrize(("query", "found"), [("1/4 hex nut", "b-nut"), ("1/2 pvc tee", "b-tee")])
def test_a_fraction_typed_with_a_slash_finds_it_written_as_one_character(query, found):
    assert ids(make(FRACTION_CATALOG).search(query, 10))[0] == found


@pytest.mark.parametrize("query", ["1-1/2 pvc pipe", "1 1/2 in pvc pipe"])
def test_a_whole_number_and_a_fraction_typed_with_a_slash_find_them_written_as_one_word(query):
    assert ids(make(FRACTION_CATALOG).search(query, 10))[0] == "b-pipe"


@pytest.mark.parametrize("query", ["¼ spade bit", "1¼ spade bit"])
def test_a_fraction_typed_as_one_character_finds_it_written_with_a_slash(query):
    assert ids(make(FRACTION_CATALOG).search(query, 10))[0] == "b-bit"


def test_a_fraction_character_is_searched_as_its_numerator_and_denominator():
    characters = [c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.decomposition(c).startswith("<fr")]
    retriever = make()
    spelled = {c: retriever.analyze(f"a{c}b") for c in characters}
    assert spelled["½"] == ["a", "1", "2", "b"]
    assert spelled["⅒"] == ["a", "1", "10", "b"]
    assert spelled["↉"] == ["a", "0", "3", "b"]
    assert all(words[1:-1] == re.findall(r"\d+", unicodedata.normalize("NFKD", c)) for c, words in spelled.items())


def test_a_fraction_character_is_highlighted_where_it_was_written():
    tokens = make().tokens("1½ in.")
    assert [(t.text, t.position, t.char_offset_from, t.char_offset_to) for t in tokens] == [
        ("1", 0, 0, 1),
        ("1", 1, 1, 2),
        ("2", 2, 1, 2),
        ("in", 3, 3, 5),
    ]


def test_a_unit_after_a_fraction_character_is_any_of_its_spellings():
    # Without the unit's spellings the shorter title would come first: "inch" is the written "in." only after a number.
    catalog = [Product(id="a-ply", title="3/4 Plywood"), Product(id="b-ply", title="¾ in. Plywood")]
    assert ids(make(catalog, unit_spellings=True).search("3/4 inch plywood", 10))[0] == "b-ply"


# --- model codes ------------------------------------------------------------------------------------------------

# What any lexical leg does with model codes is in tests/backends/test_lexical_contract.py; here, an embedded
# index of schema version 4, before codes. The code's words are elsewhere too ("10", "2").
SCHEMA_4_CATALOG = [
    Product(id="ecc", title="Makita ECC-10-2 Cordless Cutter"),
    Product(id="blade", title="Saw Blade 10 in. 2-Pack"),
]


@pytest.fixture
def schema_4_path(tmp_path, monkeypatch) -> Path:
    """An index of schema version 4 (before codes and folding), which has no code field."""
    with monkeypatch.context() as patched:
        patched.setattr(tantivy_index, "ANALYZER_NAME", tantivy_index.UNFOLDED_ANALYZER_NAME)
        make(SCHEMA_4_CATALOG, path=tmp_path)
    return tmp_path


def test_an_index_of_schema_4_opens_and_finds_a_model_number_by_its_words(schema_4_path):
    assert ids(make(path=schema_4_path).search("ecc-10-2 cutter", 10))[0] == "ecc"


def test_an_index_of_schema_4_takes_products_with_model_numbers(schema_4_path):
    retriever = make(path=schema_4_path)
    retriever.add([Product(id="kb", title="Kobalt KB-0123A Wrench Set")])
    assert ids(retriever.search("KB-0123A", 10)) == ["kb"]


def test_an_index_of_schema_4_is_written_with_exactly_that_versions_fields(schema_4_path):
    # What a release of schema 4 wrote: a field more or less and its indexes would no longer open.
    meta = json.loads((schema_4_path / "meta.json").read_text(encoding="utf-8"))
    assert [field["name"] for field in meta["schema"]] == [
        *("id", "title", "brand", "category", "attributes", "description", "category_path", "brand_key", "attr"),
        *("facet", "sort_title", "sort_brand", "sort_category", "price", "rating", "sales", "review_count"),
    ]


def test_an_index_of_schema_4_is_highlighted_in_its_own_words_before_it_is_searched(schema_4_path):
    # A highlight of the first request may cut its words before anything has opened the index.
    retriever = TantivyRetriever(schema_4_path, LexicalSettings())
    assert [token.text for token in retriever.tokens("GE Café")] == ["ge", "café"]


def test_an_index_of_schema_4_filters_by_price_on_its_first_search(tmp_path, monkeypatch):
    # Schema 5 numbers the fields after its code field one higher: a filter built before the index is open
    # would read another field (the rating) as the price.
    with monkeypatch.context() as patched:
        patched.setattr(tantivy_index, "ANALYZER_NAME", tantivy_index.UNFOLDED_ANALYZER_NAME)
        make(
            [
                Product(id="cheap", title="lamp", price=10.0, rating=4.5),
                Product(id="dear", title="lamp", price=400.0, rating=1.0),
            ],
            path=tmp_path,
        )
    retriever = TantivyRetriever(tmp_path, LexicalSettings())
    assert ids(retriever.search("lamp", 5, Filters(price_max=50))) == ["cheap"]
