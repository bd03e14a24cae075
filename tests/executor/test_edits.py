"""Builder replies: parsing every format, applying strictly, and the failures the model is told."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from autopack.errors import AutopackError
from autopack.executor.edits import (
    DeleteFile,
    EditApplyError,
    EditParseError,
    FilePatch,
    NoEditsError,
    SearchReplace,
    WholeFile,
    apply_edits,
    parse_reply,
)
from autopack.executor.governance import read_workspace_file


def reader(files: dict[str, str]) -> Callable[[str], str | None]:
    return files.get


def apply(reply: str, files: dict[str, str]) -> dict[str, str | None]:
    return apply_edits(parse_reply(reply).edits, reader(files))


# --- search/replace -----------------------------------------------------------------------------

AIDER_REPLY = """\
I'll make `greet` polite.

src/app.py
```python
<<<<<<< SEARCH
def greet(name):
    return "hi " + name
=======
def greet(name):
    return "Hello, " + name
>>>>>>> REPLACE
```

That's all.
"""


def test_search_replace_block_in_a_fence_with_the_path_before_it() -> None:
    parsed = parse_reply(AIDER_REPLY)
    assert parsed.edits == [
        SearchReplace(
            "src/app.py",
            'def greet(name):\n    return "hi " + name\n',
            'def greet(name):\n    return "Hello, " + name\n',
            line=5,
        )
    ]
    assert parsed.commentary == "I'll make `greet` polite.\n\nThat's all."
    files = {"src/app.py": 'import os\n\ndef greet(name):\n    return "hi " + name\n'}
    assert apply_edits(parsed.edits, reader(files)) == {
        "src/app.py": 'import os\n\ndef greet(name):\n    return "Hello, " + name\n'
    }


def test_path_in_backticks_inside_the_fence_and_a_leading_dot_slash() -> None:
    reply = (
        "```python\n`./src/app.py`\n<<<<<<< SEARCH\na = 1\n=======\na = 2\n>>>>>>> REPLACE\n```\n"
    )
    parsed = parse_reply(reply)
    assert parsed.edits == [SearchReplace("src/app.py", "a = 1\n", "a = 2\n", line=3)]
    assert parsed.commentary == ""


def test_several_blocks_in_one_fence_and_commentary_between_blocks() -> None:
    reply = (
        "First:\n```python\na.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n\n"
        "a.py\n<<<<<<< SEARCH\ny = 1\n=======\ny = 2\n>>>>>>> REPLACE\n```\nThen b:\n"
        "b.py\n<<<<<<< SEARCH\nz\n=======\nZ\n>>>>>>> REPLACE\n"
    )
    parsed = parse_reply(reply)
    assert [(e.path, e.line) for e in parsed.edits] == [("a.py", 4), ("a.py", 11), ("b.py", 19)]
    assert parsed.commentary == "First:\n\nThen b:"


def test_search_replace_blocks_in_a_diff_fence_are_still_blocks() -> None:
    reply = "```diff\na.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```\n"
    parsed = parse_reply(reply)
    assert parsed.edits == [SearchReplace("a.py", "x\n", "y\n", line=3)]
    assert parsed.commentary == ""


def test_parsed_reply_lists_each_path_once() -> None:
    reply = (
        "a.py\n<<<<<<< FILE\nx\n>>>>>>> FILE\nb.py\n<<<<<<< DELETE\n>>>>>>> DELETE\n"
        "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    )
    assert parse_reply(reply).paths == ["a.py", "b.py"]


def test_several_edits_to_one_file_chain_on_the_updated_content() -> None:
    reply = (
        "m.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"
        "m.py\n<<<<<<< SEARCH\nx = 2\ny = 1\n=======\nx = 3\ny = 3\n>>>>>>> REPLACE\n"
    )
    assert apply(reply, {"m.py": "x = 1\ny = 1\n"}) == {"m.py": "x = 3\ny = 3\n"}


def test_ambiguous_search_names_both_line_numbers() -> None:
    content = "def a():\n    return 0\n\ndef b():\n    return 0\n"
    reply = "m.py\n<<<<<<< SEARCH\n    return 0\n=======\n    return 1\n>>>>>>> REPLACE\n"
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {"m.py": content})
    error = caught.value
    assert error.reason == "search_ambiguous"
    assert error.path == "m.py" and error.edit_index == 1
    assert str(error) == (
        "Edit 1 (SEARCH block at reply line 2) for m.py: the search text matches 2 places in "
        "m.py, at lines 2, 5; expected exactly one. Add lines before or after it so that it "
        "matches only the place you mean."
    )
    assert isinstance(error, AutopackError)


def test_missing_search_quotes_the_closest_lines_with_numbers() -> None:
    content = "import os\n\n\ndef total(items):\n    return sum(items)\n\n\nX = 1\n"
    reply = (
        "m.py\n<<<<<<< SEARCH\ndef total(item):\n    return sum(item)\n"
        "=======\ndef total(items):\n    return sum(items) + 1\n>>>>>>> REPLACE\n"
    )
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {"m.py": content})
    assert caught.value.reason == "search_not_found"
    assert str(caught.value) == (
        "Edit 1 (SEARCH block at reply line 2) for m.py: the search text was not found in m.py. "
        "The closest lines in the file are:\n"
        "4 | def total(items):\n"
        "5 |     return sum(items)\n"
        "Copy the lines exactly as they are in the file (only trailing whitespace and the final "
        "newline may differ)."
    )


def test_trailing_whitespace_may_differ_only_when_the_relaxed_match_is_unique() -> None:
    reply = "m.py\n<<<<<<< SEARCH\nx = 1\ny = 2\n=======\nx = 9\n>>>>>>> REPLACE\n"
    assert apply(reply, {"m.py": "x = 1   \ny = 2\t\nz\n"}) == {"m.py": "x = 9\nz\n"}
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {"m.py": "x = 1 \ny = 2\nx = 1\ny = 2  \n"})
    assert caught.value.reason == "search_ambiguous"
    assert (
        "is not in m.py exactly; ignoring trailing whitespace it matches 2 places, at lines "
        "1, 3; expected exactly one" in str(caught.value)
    )


def test_leading_whitespace_or_any_other_difference_is_not_found() -> None:
    reply = "m.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {"m.py": "    x = 1\n"})
    assert caught.value.reason == "search_not_found"
    with pytest.raises(EditApplyError):
        apply(reply, {"m.py": "x  = 1\n"})


def test_the_final_newline_may_be_missing_and_stays_missing() -> None:
    reply = "m.py\n<<<<<<< SEARCH\nlast\n=======\nLAST\n>>>>>>> REPLACE\n"
    assert apply(reply, {"m.py": "first\nlast"}) == {"m.py": "first\nLAST"}
    removal = "m.py\n<<<<<<< SEARCH\nlast\n=======\n>>>>>>> REPLACE\n"
    assert apply(removal, {"m.py": "first\nlast"}) == {"m.py": "first"}


def test_crlf_files_keep_crlf_and_lf_files_keep_lf() -> None:
    reply = "w.bat\n<<<<<<< SEARCH\necho a\n=======\necho b\necho c\n>>>>>>> REPLACE\n"
    assert apply(reply, {"w.bat": "@echo off\r\necho a\r\nexit\r\n"}) == {
        "w.bat": "@echo off\r\necho b\r\necho c\r\nexit\r\n"
    }
    # A reply sent with CRLF line ends edits an LF file without bringing CR in.
    assert apply(reply.replace("\n", "\r\n"), {"w.bat": "echo a\n"}) == {
        "w.bat": "echo b\necho c\n"
    }


def test_crlf_file_on_disk_round_trips_through_the_safe_reader(tmp_path: Path) -> None:
    (tmp_path / "w.bat").write_bytes(b"@echo off\r\necho a\r\n")
    reply = "w.bat\n<<<<<<< SEARCH\necho a\n=======\necho b\n>>>>>>> REPLACE\n"
    result = apply_edits(parse_reply(reply).edits, lambda p: read_workspace_file(tmp_path, p))
    assert result == {"w.bat": "@echo off\r\necho b\r\n"}


def test_empty_search_creates_a_file_and_refuses_an_existing_one() -> None:
    reply = "pkg/new.py\n<<<<<<< SEARCH\n=======\nVALUE = 1\n>>>>>>> REPLACE\n"
    assert apply(reply, {}) == {"pkg/new.py": "VALUE = 1\n"}
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {"pkg/new.py": "old\n"})
    assert caught.value.reason == "file_exists"
    assert str(caught.value) == (
        "Edit 1 (SEARCH block at reply line 2) for pkg/new.py: the SEARCH text is empty, which "
        "creates a new file, but pkg/new.py already exists. To change it, put lines copied from "
        "it in SEARCH; to replace it entirely, use a FILE block."
    )


def test_search_in_a_missing_file_is_an_error() -> None:
    reply = "nope.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {})
    assert caught.value.reason == "file_missing"


# --- whole files and deletions ------------------------------------------------------------------


def test_file_block_creates_and_overwrites() -> None:
    reply = "Whole file:\n\n`docs/x.md`\n<<<<<<< FILE\n# Title\n\n=======\ntext\n>>>>>>> FILE\n"
    parsed = parse_reply(reply)
    # `=======` is plain text in a FILE block (a reStructuredText underline, say).
    assert parsed.edits == [WholeFile("docs/x.md", "# Title\n\n=======\ntext\n", line=4)]
    assert parsed.commentary == "Whole file:"
    assert apply(reply, {}) == {"docs/x.md": "# Title\n\n=======\ntext\n"}
    assert apply(reply, {"docs/x.md": "old\n"}) == {"docs/x.md": "# Title\n\n=======\ntext\n"}


def test_file_block_over_a_crlf_file_keeps_crlf_and_an_empty_block_empties_the_file() -> None:
    reply = "a.txt\n<<<<<<< FILE\none\ntwo\n>>>>>>> FILE\n"
    assert apply(reply, {"a.txt": "x\r\n"}) == {"a.txt": "one\r\ntwo\r\n"}
    assert apply("a.txt\n<<<<<<< FILE\n>>>>>>> FILE\n", {"a.txt": "x\n"}) == {"a.txt": ""}


def test_delete_block_deletes_and_refuses_a_missing_file() -> None:
    reply = "old.py\n<<<<<<< DELETE\n>>>>>>> DELETE\n"
    assert parse_reply(reply).edits == [DeleteFile("old.py", line=2)]
    assert apply(reply, {"old.py": "x\n"}) == {"old.py": None}
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {})
    assert caught.value.reason == "file_missing"
    assert str(caught.value) == (
        "Edit 1 (DELETE block at reply line 2) for old.py: old.py does not exist, so it cannot "
        "be deleted."
    )


def test_create_then_delete_is_no_change_and_unchanged_files_are_not_returned() -> None:
    reply = (
        "t.py\n<<<<<<< FILE\nx\n>>>>>>> FILE\nt.py\n<<<<<<< DELETE\n>>>>>>> DELETE\n"
        "same.py\n<<<<<<< SEARCH\nx\n=======\nx\n>>>>>>> REPLACE\n"
    )
    assert apply(reply, {"same.py": "x\n"}) == {}


def test_apply_is_all_or_nothing() -> None:
    reply = (
        "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
        "b.py\n<<<<<<< SEARCH\nmissing\n=======\ny\n>>>>>>> REPLACE\n"
    )
    files = {"a.py": "x\n", "b.py": "q\n"}
    with pytest.raises(EditApplyError) as caught:
        apply(reply, files)
    assert caught.value.edit_index == 2 and caught.value.path == "b.py"
    assert files == {"a.py": "x\n", "b.py": "q\n"}


# --- unified diffs ------------------------------------------------------------------------------

CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"

FENCED_DIFF = """\
Here is the patch:
```diff
diff --git a/calc.py b/calc.py
index 83db48f..bf269f4 100644
--- a/calc.py
+++ b/calc.py
@@ -4,3 +4,3 @@ def add(a, b):

 def sub(a, b):
-    return a - b
+    return a - b - 0
```
Done.
"""


def test_fenced_git_diff_applies_with_a_blank_context_line_that_lost_its_space() -> None:
    parsed = parse_reply(FENCED_DIFF)
    assert parsed.commentary == "Here is the patch:\nDone."
    (patch,) = parsed.edits
    assert isinstance(patch, FilePatch)
    assert patch.path == "calc.py" and not patch.create and not patch.delete
    assert patch.hunks[0].old_lines == ("", "def sub(a, b):", "    return a - b")
    assert apply_edits(parsed.edits, reader({"calc.py": CALC})) == {
        "calc.py": CALC.replace("a - b\n", "a - b - 0\n")
    }


def test_bare_diff_with_two_hunks_and_commentary_after_it() -> None:
    reply = (
        "--- calc.py\n+++ calc.py\n@@ -1,2 +1,3 @@\n+# calc\n def add(a, b):\n     return a + b\n"
        "@@ -5,2 +6,2 @@\n def sub(a, b):\n-    return a - b\n+    return b - a\n"
        "\nThat flips sub.\n"
    )
    parsed = parse_reply(reply)
    assert parsed.commentary == "That flips sub."
    assert apply_edits(parsed.edits, reader({"calc.py": CALC})) == {
        "calc.py": "# calc\n" + CALC.replace("a - b\n", "b - a\n")
    }


def test_diff_at_a_wrong_line_applies_at_the_one_place_its_lines_match() -> None:
    reply = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -40,2 +40,2 @@\n"
        " def sub(a, b):\n-    return a - b\n+    return 0\n"
    )
    assert apply(reply, {"calc.py": CALC}) == {"calc.py": CALC.replace("a - b\n", "0\n")}


def test_diff_with_wrong_context_fails_with_the_closest_lines() -> None:
    reply = (
        "```diff\n--- a/calc.py\n+++ b/calc.py\n@@ -5,2 +5,2 @@\n def sub(x, y):\n"
        "-    return x - y\n+    return 0\n```\n"
    )
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {"calc.py": CALC})
    assert caught.value.reason == "hunk_not_found"
    assert str(caught.value) == (
        "Edit 1 (diff at reply line 2) for calc.py: the context and removed lines of hunk 1 "
        "(@@ -5,2 +5,2 @@ at reply line 4) were not found in calc.py at line 5 (where its header "
        "puts it) nor anywhere else. The closest lines in the file are:\n"
        "5 | def sub(a, b):\n"
        "6 |     return a - b\n"
        "Copy the lines exactly as they are in the file (only trailing whitespace and the final "
        "newline may differ)."
    )


def test_diff_off_its_line_and_matching_twice_elsewhere_is_ambiguous() -> None:
    content = "x\nreturn 0\ny\nreturn 0\nz\n"
    reply = "--- a/m.py\n+++ b/m.py\n@@ -1,1 +1,1 @@\n-return 0\n+return 1\n"
    with pytest.raises(EditApplyError) as caught:
        apply(reply, {"m.py": content})
    assert caught.value.reason == "hunk_ambiguous"
    assert (
        "do not match m.py at line 1 (where its header puts it) but match 2 other "
        "places, at lines 2, 4; expected exactly one" in str(caught.value)
    )
    # At its stated line it applies even though the same lines are elsewhere too.
    stated = "--- a/m.py\n+++ b/m.py\n@@ -4,1 +4,1 @@\n-return 0\n+return 1\n"
    assert apply(stated, {"m.py": content}) == {"m.py": "x\nreturn 0\ny\nreturn 1\nz\n"}


def test_diff_creates_and_deletes_files() -> None:
    create = "--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1,2 @@\n+A = 1\n+B = 2\n"
    assert apply(create, {}) == {"pkg/new.py": "A = 1\nB = 2\n"}
    with pytest.raises(EditApplyError) as exists:
        apply(create, {"pkg/new.py": ""})
    assert exists.value.reason == "file_exists"
    delete = "--- a/old.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-A = 1\n-B = 2\n"
    assert apply(delete, {"old.py": "A = 1\nB = 2\n"}) == {"old.py": None}
    with pytest.raises(EditApplyError) as partial:
        apply(delete, {"old.py": "A = 1\nB = 2\nC = 3\n"})
    assert partial.value.reason == "delete_incomplete"


def test_a_pure_insertion_goes_after_its_stated_line_and_must_be_inside_the_file() -> None:
    reply = "--- a/m.txt\n+++ b/m.txt\n@@ -1,0 +2,1 @@\n+inserted\n"
    assert apply(reply, {"m.txt": "a\nb\n"}) == {"m.txt": "a\ninserted\nb\n"}
    beyond = "--- a/m.txt\n+++ b/m.txt\n@@ -9,0 +10,1 @@\n+x\n"
    with pytest.raises(EditApplyError) as caught:
        apply(beyond, {"m.txt": "a\nb\n"})
    assert caught.value.reason == "hunk_position"
    assert str(caught.value).endswith("inserts after line 9 but m.txt has 2 lines.")


def test_relaxed_whitespace_applies_to_diff_hunks_too() -> None:
    reply = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    assert apply(reply, {"m.py": "a  \nb\t\n"}) == {"m.py": "a\nc\n"}


def test_no_newline_at_end_of_file_markers_are_honoured() -> None:
    add_newline = (
        "--- a/m.txt\n+++ b/m.txt\n@@ -1 +1 @@\n-end\n\\ No newline at end of file\n+end\n"
    )
    assert apply(add_newline, {"m.txt": "end"}) == {"m.txt": "end\n"}
    drop_newline = (
        "--- a/m.txt\n+++ b/m.txt\n@@ -1 +1 @@\n-end\n+end\n\\ No newline at end of file\n"
    )
    assert apply(drop_newline, {"m.txt": "end\n"}) == {"m.txt": "end"}


def test_diff_on_a_crlf_file_keeps_crlf() -> None:
    reply = "--- a/w.bat\n+++ b/w.bat\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
    assert apply(reply, {"w.bat": "one\r\ntwo\r\n"}) == {"w.bat": "one\r\nTWO\r\n"}


def test_hunk_without_line_numbers_must_match_exactly_once() -> None:
    reply = (
        "--- a/calc.py\n+++ b/calc.py\n@@ @@\n def sub(a, b):\n-    return a - b\n+    return 0\n"
    )
    assert apply(reply, {"calc.py": CALC}) == {"calc.py": CALC.replace("a - b\n", "0\n")}


def test_hunk_counts_that_do_not_match_the_body_are_refused() -> None:
    too_few = "```diff\n--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n```\n"
    with pytest.raises(EditParseError) as caught:
        parse_reply(too_few)
    assert caught.value.line == 8
    assert str(caught.value) == (
        "Reply line 8: the hunk '@@ -1,3 +1,3 @@' of line 4 declares 3 old and 3 new lines but "
        "has 2 old and 2 new lines when '```' comes; expected hunk lines matching the counts of "
        "the '@@' header."
    )
    too_many = "--- a/m.py\n+++ b/m.py\n@@ -1,1 +1,1 @@\n-b\n+c\n+d\n"
    with pytest.raises(EditParseError, match="more lines than its header declares"):
        parse_reply(too_many)


def test_renames_and_hunks_without_a_file_header_are_refused() -> None:
    with pytest.raises(EditParseError, match="renames are not supported"):
        parse_reply("--- a/x.py\n+++ b/y.py\n@@ -1 +1 @@\n-a\n+b\n")
    with pytest.raises(EditParseError) as caught:
        parse_reply("text\n@@ -1 +1 @@\n-a\n+b\n")
    assert caught.value.line == 2


def test_diff_fence_with_a_stray_line_is_refused() -> None:
    reply = "```diff\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a\n+b\nnot a diff line\n```\n"
    with pytest.raises(EditParseError) as caught:
        parse_reply(reply)
    assert caught.value.line == 7


# --- malformed replies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        pytest.param(
            "a.py\n<<<<<<< SEARCH\nx\n",
            "Reply line 2: the SEARCH block opened here is not terminated; expected '=======' "
            "and then '>>>>>>> REPLACE' before the end of the reply.",
            id="unterminated-search",
        ),
        pytest.param(
            "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n",
            "Reply line 2: the SEARCH block opened here is not terminated; expected "
            "'>>>>>>> REPLACE' before the end of the reply.",
            id="unterminated-replace",
        ),
        pytest.param(
            "a.py\n<<<<<<< FILE\nx\n",
            "Reply line 2: the FILE block opened here is not terminated; expected '>>>>>>> FILE' "
            "before the end of the reply.",
            id="unterminated-file",
        ),
        pytest.param(
            "Here is the change:\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n",
            "Reply line 2: the '<<<<<<< SEARCH' block has no file path (the line before it is "
            "'Here is the change:'); expected the file's relative path alone on the line before "
            "the block (or before its opening ``` fence), optionally in backticks.",
            id="missing-path-sentence",
        ),
        pytest.param(
            "<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n",
            "Reply line 1: the '<<<<<<< SEARCH' block has no file path (the line before it is "
            "nothing); expected the file's relative path alone on the line before the block (or "
            "before its opening ``` fence), optionally in backticks.",
            id="missing-path-at-start",
        ),
        pytest.param(
            "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nq\n"
            "=======\nr\n>>>>>>> REPLACE\n",
            "Reply line 7: the '<<<<<<< SEARCH' block has no file path (the line before it is "
            "nothing); expected the file's relative path alone on the line before the block (or "
            "before its opening ``` fence), optionally in backticks.",
            id="second-block-without-path",
        ),
        pytest.param(
            "**a.py**\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n",
            "Reply line 2: the '<<<<<<< SEARCH' block has no file path (the line before it is "
            "'**a.py**'); expected the file's relative path alone on the line before the block "
            "(or before its opening ``` fence), optionally in backticks.",
            id="decorated-path",
        ),
        pytest.param(
            "Some text\n=======\ny\n>>>>>>> REPLACE\n",
            "Reply line 2: '=======' outside a block; expected a file path line and "
            "'<<<<<<< SEARCH' before it.",
            id="separator-without-search",
        ),
        pytest.param(
            "a.py\ny\n>>>>>>> REPLACE\n",
            "Reply line 3: '>>>>>>> REPLACE' outside a block; expected a file path line and "
            "'<<<<<<< SEARCH' before it.",
            id="replace-without-search",
        ),
        pytest.param(
            "a.py\n<<<<<<< SEARCH\nx\n>>>>>>> REPLACE\n",
            "Reply line 4: '>>>>>>> REPLACE' before '=======' in the SEARCH block opened at line "
            "2; expected '=======' between the search text and the replacement.",
            id="replace-before-separator",
        ),
        pytest.param(
            "a.py\n<<<<<<< SEARCH\nx\n=======\ny\nb.py\n<<<<<<< SEARCH\nq\n=======\nr\n"
            ">>>>>>> REPLACE\n",
            "Reply line 7: '<<<<<<< SEARCH' inside the SEARCH block opened at line 2; expected "
            "'>>>>>>> REPLACE' to close that block first (block text cannot contain marker "
            "lines; use a unified diff for such files).",
            id="nested-block",
        ),
        pytest.param(
            "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n=======\nz\n>>>>>>> REPLACE\n",
            "Reply line 6: a second '=======' in the SEARCH block opened at line 2; expected "
            "'>>>>>>> REPLACE' to end the replacement.",
            id="second-separator",
        ),
        pytest.param(
            "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> FILE\n",
            "Reply line 6: '>>>>>>> FILE' closes the SEARCH block opened at line 2; expected "
            "'>>>>>>> REPLACE'.",
            id="wrong-closing-marker",
        ),
        pytest.param(
            "a.py\n<<<<<<< SEARCH:\nx\n=======\ny\n>>>>>>> REPLACE\n",
            "Reply line 2: malformed marker '<<<<<<< SEARCH:'; expected one of "
            "'<<<<<<< DELETE', '<<<<<<< FILE', '<<<<<<< SEARCH', '>>>>>>> DELETE', "
            "'>>>>>>> FILE', '>>>>>>> REPLACE' exactly, alone on its line.",
            id="malformed-marker",
        ),
        pytest.param(
            "a.py\n<<<<<<< DELETE\nx\n>>>>>>> DELETE\n",
            "Reply line 3: found 'x' inside the DELETE block opened at line 2; expected "
            "'>>>>>>> DELETE' on the line right after '<<<<<<< DELETE' (a delete block has "
            "nothing between its markers).",
            id="delete-with-content",
        ),
    ],
)
def test_malformed_replies_fail_with_the_line_and_what_was_expected(
    reply: str, message: str
) -> None:
    with pytest.raises(EditParseError) as caught:
        parse_reply(reply)
    assert str(caught.value) == message
    assert caught.value.details["line"] == caught.value.line


@pytest.mark.parametrize("reply", ["", "   \n\n", "I could not find anything to change."])
def test_a_reply_without_edits_is_its_own_error(reply: str) -> None:
    with pytest.raises(NoEditsError) as caught:
        parse_reply(reply)
    assert caught.value.code == "no_edits"
    assert str(caught.value) == (
        "the reply contains no edits; expected at least one SEARCH/REPLACE block, FILE block, "
        "DELETE block or unified diff."
    )


def test_text_with_conflict_markers_can_be_searched_but_not_nested() -> None:
    # A `<<<<<<< HEAD` conflict line is text, not one of our markers.
    reply = "c.txt\n<<<<<<< SEARCH\n<<<<<<< HEAD\n=======\nresolved\n>>>>>>> REPLACE\n"
    assert apply(reply, {"c.txt": "<<<<<<< HEAD\n"}) == {"c.txt": "resolved\n"}
