"""Message texts: placeholders, GSM-7 vs UCS-2, and SMS parts."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from jobs.text import GSM7, UCS2, Template, TemplateError, encoding_of, segments_of


def strings(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.large_string())


def test_plain_latin_text_is_gsm7() -> None:
    """Letters, digits, punctuation and ñ/é/Ä are in the GSM 03.38 table."""
    assert encoding_of("Hola Peña, café a las 10:30! Ä ß") == GSM7


@pytest.mark.parametrize("text", ["Zoë", "ç", "😀", "Привет", "`"])
def test_one_character_outside_gsm_makes_the_text_ucs2(text: str) -> None:
    """ë, lower-case ç, emoji, Cyrillic, backtick are not GSM-7."""
    assert encoding_of("Hi " + text) == UCS2


@pytest.mark.parametrize(("length", "parts"), [(160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm7_parts_are_160_then_153(length: int, parts: int) -> None:
    """One GSM-7 SMS holds 160 characters; longer texts go in parts of 153."""
    assert segments_of("a" * length) == parts


@pytest.mark.parametrize(("count", "parts"), [(80, 1), (81, 2)])
def test_gsm7_extension_characters_count_double(count: int, parts: int) -> None:
    """80 '€' fill one SMS (160 septets); 81 need two."""
    assert segments_of("€" * count) == parts


def test_every_extension_character_and_form_feed_counts_double() -> None:
    """^ { } \\ [ ~ ] | € and form feed: 10 characters, 20 septets, 140 more fit."""
    text = "^{}\\[~]|€\f"
    assert encoding_of(text) == GSM7
    assert segments_of(text + "a" * 140) == 1
    assert segments_of(text + "a" * 141) == 2


@pytest.mark.parametrize(("length", "parts"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_parts_are_70_then_67(length: int, parts: int) -> None:
    """One UCS-2 SMS holds 70 code units; longer texts go in parts of 67."""
    assert segments_of("ç" * length) == parts


def test_an_emoji_is_two_ucs2_units() -> None:
    """35 emoji are 70 UTF-16 units (one SMS); 36 are two SMS."""
    assert segments_of("😀" * 35) == 1
    assert segments_of("😀" * 36) == 2


def test_an_extension_character_is_never_split_across_parts() -> None:
    """152 letters + '€' + 152 letters is 306 septets, yet 3 parts: '€' cannot straddle."""
    text = "a" * 152 + "€" + "a" * 152
    assert segments_of(text) == 3
    template = Template.parse("{0}")
    assert template.measure([strings([text])]).segments.tolist() == [3]


def test_placeholders_are_parsed_in_order() -> None:
    """'Hi {0}, code {1} {0}' uses columns 0 and 1; other braces are text."""
    template = Template.parse("Hi {0}, code {1} {0} {name}")
    assert template.used == (0, 1)
    assert template.literal == "Hi , code   {name}"


def test_a_missing_column_is_one_error_naming_it_and_the_columns() -> None:
    """{3} with two parameter columns: the error names {3} and lists {0} and {1}."""
    with pytest.raises(TemplateError) as caught:
        Template.parse("Hi {0} {3}").validate(["first_name", "code"])
    assert str(caught.value) == (
        "the text uses {3} but the file has 2 parameter columns: {0} = first_name, "
        "{1} = code")


def test_placeholders_without_parameter_columns_are_an_error() -> None:
    """A one-column file has no {0}."""
    with pytest.raises(TemplateError, match=r"uses \{0\} but the file has no parameter"):
        Template.parse("Hi {0}").validate([])


def test_an_empty_text_is_an_error() -> None:
    """A blank message is refused before any row is looked at."""
    with pytest.raises(TemplateError, match="empty"):
        Template.parse("  ")


def test_render_fills_each_row_and_a_missing_value_is_nothing() -> None:
    """Row values go into their placeholders; <NA> renders as an empty string."""
    template = Template.parse("Hi {0}, code {1}")
    texts = template.render([strings(["Ana", None]), strings(["42", "7"])])
    assert texts.to_pylist() == ["Hi Ana, code 42", "Hi , code 7"]


def test_a_text_without_placeholders_is_the_same_for_every_row() -> None:
    """No parameters: the text is repeated for each row."""
    assert Template.parse("Sale today").render([], 3).to_pylist() == ["Sale today"] * 3


def test_measure_per_column_matches_measuring_each_rendered_text() -> None:
    """The fast per-column count equals encoding_of/segments_of on every rendered text."""
    rng = random.Random(3)
    alphabet = list("abcXYZ 019,.") + list("^{}[]~|\\€") + ["é", "ç", "😀", "Ω", "\n"]
    for text in ["Hi {0}, {1}!", "{0}", "Ünï {0} {0}", "x" * 150 + "{0}", "😀" * 30 + "{1}"]:
        template = Template.parse(text)
        col0 = [None if rng.random() < 0.1 else "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(2000)]
        col1 = ["".join(rng.choice(alphabet[:12]) for _ in range(rng.randint(0, 30)))
                for _ in range(2000)]
        params = [strings(col0), strings(col1)]
        rendered = template.render(params)
        measured = template.measure(params, rendered)
        texts = rendered.to_pylist()
        assert measured.segments.tolist() == [segments_of(t) for t in texts]
        assert np.array_equal(measured.gsm, [encoding_of(t) == GSM7 for t in texts])
