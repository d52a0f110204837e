"""Corpus styles: plain text to a tokenized corpus's style and back (toolkit.text.corpus_style)."""

from __future__ import annotations

import pytest

from toolkit.lm.options import train_options
from toolkit.text.corpus_style import STYLES, PlainText, detect_style, from_style, to_style, whole_tokens

PLAIN = [
    "The city's history began in 1850, when it was a well-known port.",
    "It wasn't sold (in Japan); 10,000 copies went at $3.50 each, 12% more.",
    'He said "hello" to the U.S. team... and left!',
    "I'm sure, Mr. Smith: the players' union won't agree?",
    "Where is the station? Go straight on.",
]


def test_plain_text_is_written_as_wikitext_writes_it():
    assert to_style(PLAIN[0], "wikitext") == "The city 's history began in 1850 , when it was a well @-@ known port ."
    assert to_style(PLAIN[1], "wikitext") == (
        "It wasn 't sold ( in Japan ) ; 10 @,@ 000 copies went at $ 3 @.@ 50 each , 12 % more .")
    assert to_style(PLAIN[3], "wikitext") == "I 'm sure , Mr. Smith : the players ' union won 't agree ?"


def test_plain_text_is_written_as_dailydialog_writes_it():
    assert to_style(PLAIN[0], "spaced") == "The city's history began in 1850 , when it was a well-known port ."
    assert to_style(PLAIN[2], "spaced") == 'He said " hello " to the U.S. team ... and left !'
    assert to_style("Hi, Jim.\nSee you!", "spaced") == "Hi , Jim .\nSee you !"


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("text", PLAIN)
def test_plain_text_comes_back_from_any_style(style, text):
    assert from_style(to_style(text, style), style) == text


@pytest.mark.parametrize("style, text", [
    ("wikitext", " = = Gameplay = = \n The game 's 1 @,@ 000 players ( mostly O 'Neill 's ) met in the U.S. ."),
    ("spaced", "Say , Jim , how about going for a few beers after dinner ? I don't know ... $ 5 ."),
])
def test_text_already_in_the_style_stays_as_it_is(style, text):
    assert to_style(text, style) == "\n".join(" ".join(line.split()) for line in text.split("\n"))


def test_the_corpus_spellings_are_written_plain():
    assert from_style("Do you know what it ’ s going on ? Let ' s go", "spaced") == (
        "Do you know what it’s going on? Let's go")
    assert from_style('the lyrics " Couldn \'t we " , he said', "wikitext") == 'the lyrics "Couldn\'t we", he said'
    assert from_style(" end .\n = = Plot = = \n The", "wikitext", before="x") == " end.\n= = Plot = =\nThe"


def test_a_continuation_is_spaced_after_the_prompt_it_follows():
    assert from_style(" , where", "wikitext", before="in Paris") == ", where"
    assert from_style(" 31 km )", "wikitext", before="miles (") == "31 km)"
    assert from_style(" hello \"", "spaced", before='he said "') == 'hello"'
    assert from_style("man said", "wikitext", before="the Chair") == "man said"  # goes on the word before
    assert from_style(" the", "spaced", before="in 1850 ,") == " the"


def test_plain_text_of_a_growing_text_only_grows_where_it_is_settled():
    full = ' , where the 10 @,@ 000 miles ( 31 km ) from Paris . The city \'s " history " .\n = = Notes = = \n Its'
    plain, before = PlainText("wikitext", "in Paris"), ""
    settled = 0
    for end in range(1, len(full) + 1):
        text = plain(full[:end])
        assert text.startswith(before[:settled]), (end, text, before[:settled])
        assert plain.settled <= len(text) and plain.settled == len(from_style(whole_tokens(full[:end]), "wikitext",
                                                                                "in Paris").rstrip(" "))
        before, settled = text, plain.settled
    assert text == from_style(full, "wikitext", "in Paris") == (
        ', where the 10,000 miles (31 km) from Paris. The city\'s "history".\n= = Notes = =\nIts')


def test_plain_style_leaves_text_alone():
    text = "Hello ,  world .\n"
    assert to_style(text, "plain") == text and from_style(text, "plain") == text
    plain = PlainText("plain")
    assert plain("ab c") == "ab c" and plain.settled == 4


def test_an_unknown_style_is_refused():
    with pytest.raises(ValueError, match="style must be one of plain, spaced, wikitext"):
        PlainText("moses")


def test_the_style_of_a_corpus_is_detected():
    wiki = [" The game 's story , set in 1 @,@ 000 AD , is told in parts . "] * 20
    dialogue = ["Say , Jim , how about going for a few beers after dinner ?", "You know that is tempting ."] * 10
    prose = ["It was a fine day, and we walked. Then it rained, as it does."] * 20
    assert (detect_style(wiki), detect_style(dialogue), detect_style(prose)) == ("wikitext", "spaced", "plain")
    assert detect_style(["a , b ."]) == "plain"  # too few marks to tell
    assert detect_style([]) == "plain"


def test_the_training_option_names_every_style():
    assert train_options(1, 1)["text_style"].choices == ("auto", *STYLES)
