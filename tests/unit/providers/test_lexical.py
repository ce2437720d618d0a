"""The lexical half of hybrid search: which terms a text has."""

import pytest

from include.album.providers import lexical


@pytest.mark.parametrize(("one", "other"), [
    ("Набережная улица", "Прогулка по набережной"),      # Russian inflection
    ("капучино бесплатно", "получат капучино бесплатно"),
    ("Королёв", "королев"),                               # ё is е, case folded
    ("noodles", "Noodle night"),                          # English plural
    ("programming pioneer", "pioneers of computer programming"),
])
def test_inflected_forms_share_their_terms(one, other):
    assert set(lexical.terms(one)) & set(lexical.terms(other))


def test_numbers_tags_mentions_and_hosts_are_terms_of_their_own():
    terms = lexical.terms("Firmware 2.4.1, 73 рубля, 3,5 кг! #Новости @album_lab https://www.weather.gov/coast?x=1")
    assert {"2.4.1", "73", "3.5", "#новости", "новост", "@album_lab", "album", "lab", "weather.gov", "weather"} \
        <= set(terms)
    assert "https" not in terms and "coast" not in terms  # a link is its host, not its path


def test_function_words_are_not_terms():
    assert lexical.terms("the of and на и в по для") == []
    assert lexical.terms("Прогулка по набережной") == ["прогулк", "набережн"]


def test_vectors_are_sorted_unique_and_saturate_repeated_terms():
    indices, values = lexical.document_vector("noodles noodles noodles soup")
    assert indices == sorted(set(indices)) and len(indices) == 2
    weights = dict(zip(indices, values, strict=True))
    noodles, soup = lexical.term_id("noodl"), lexical.term_id("soup")
    assert weights[soup] < weights[noodles] < 3 * weights[soup]  # more is more, but not three times more
    assert lexical.query_vector("noodles, NOODLES soup") == ([min(noodles, soup), max(noodles, soup)], [1.0, 1.0])
    assert lexical.document_vector("") == ([], [])


def test_term_ids_are_stable_across_processes():
    # The collection keeps these ids: a change here must come with a new lexical.KEY (and a reindex).
    assert lexical.term_id("набережн") == 3252029950
    assert lexical.KEY == "snowball-ru-en-1"
