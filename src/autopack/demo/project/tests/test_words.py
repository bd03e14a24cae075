from textkit.words import word_count, words


def test_words_are_lower_case() -> None:
    assert words("Hello World") == ["hello", "world"]


def test_words_strips_punctuation() -> None:
    assert words("Hello, world! It's fine.") == ["hello", "world", "it's", "fine"]


def test_word_count() -> None:
    assert word_count("one two  three") == 3
    assert word_count("") == 0
