import { getDefaultNormalizer, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { DiffView, parseUnifiedDiff } from "./DiffView";

// `git diff` after changing app.py and adding tests/test_app.py (git add -N).
const GIT_DIFF = `diff --git a/app.py b/app.py
index 7894894..4429638 100644
--- a/app.py
+++ b/app.py
@@ -1,5 +1,5 @@
-def greet(name):
-    return "Hello " + name
+def greet(name: str) -> str:
+    return f"Hello {name}"
 
 
 def main():
diff --git a/tests/test_app.py b/tests/test_app.py
new file mode 100644
index 0000000..a5cb81d
--- /dev/null
+++ b/tests/test_app.py
@@ -0,0 +1,5 @@
+from app import greet
+
+
+def test_greet():
+    assert greet("x") == "Hello x"
`;

describe("parseUnifiedDiff", () => {
  const files = parseUnifiedDiff(GIT_DIFF);

  it("finds each file with its path", () => {
    expect(files.map((file) => file.path)).toEqual(["app.py", "tests/test_app.py"]);
  });

  it("counts added and removed lines, not the ---/+++ headers", () => {
    expect(files.map((file) => [file.added, file.removed])).toEqual([
      [2, 2],
      [5, 0],
    ]);
  });

  it("classifies every line of a modified file", () => {
    expect(files[0]?.lines).toEqual([
      { kind: "meta", text: "index 7894894..4429638 100644" },
      { kind: "meta", text: "--- a/app.py" },
      { kind: "meta", text: "+++ b/app.py" },
      { kind: "hunk", text: "@@ -1,5 +1,5 @@" },
      { kind: "del", text: "-def greet(name):" },
      { kind: "del", text: '-    return "Hello " + name' },
      { kind: "add", text: "+def greet(name: str) -> str:" },
      { kind: "add", text: '+    return f"Hello {name}"' },
      { kind: "context", text: " " },
      { kind: "context", text: " " },
      { kind: "context", text: " def main():" },
    ]);
  });

  it("classifies a new file's header and lines, dropping the trailing empty line", () => {
    const lines = files[1]?.lines ?? [];
    expect(lines.slice(0, 5).map((line) => line.kind)).toEqual(["meta", "meta", "meta", "meta", "hunk"]);
    expect(lines[0]?.text).toBe("new file mode 100644");
    expect(lines[2]?.text).toBe("--- /dev/null");
    expect(lines.slice(5).map((line) => line.kind)).toEqual(["add", "add", "add", "add", "add"]);
    expect(lines.at(-1)).toEqual({ kind: "add", text: '+    assert greet("x") == "Hello x"' });
  });

  it("names a renamed file by its new path", () => {
    const diff = [
      "diff --git a/src/old_name.py b/src/new_name.py",
      "similarity index 90%",
      "rename from src/old_name.py",
      "rename to src/new_name.py",
      "index 1111111..2222222 100644",
      "--- a/src/old_name.py",
      "+++ b/src/new_name.py",
      "@@ -1 +1 @@",
      "-x = 1",
      "+x = 2",
      "",
    ].join("\n");
    const [file] = parseUnifiedDiff(diff);
    expect(file?.path).toBe("src/new_name.py");
    expect(file?.lines.slice(0, 3).map((line) => line.kind)).toEqual(["meta", "meta", "meta"]);
    expect([file?.added, file?.removed]).toEqual([1, 1]);
  });

  it("names a plain unified diff (no git header) from its +++ line", () => {
    const [file, ...rest] = parseUnifiedDiff("--- a/x.txt\n+++ b/x.txt\n@@ -1 +1 @@\n-old\n+new\n");
    expect(rest).toEqual([]);
    expect(file).toMatchObject({ path: "x.txt", added: 1, removed: 1 });
  });
});

describe("DiffView", () => {
  it("shows each file's path, its counts and the added lines", () => {
    const { container } = render(<DiffView diff={GIT_DIFF} />);

    expect(screen.getByText("app.py", { selector: "summary code" })).toBeInTheDocument();
    expect(screen.getByText("tests/test_app.py", { selector: "summary code" })).toBeInTheDocument();
    expect(screen.getByText("+def greet(name: str) -> str:")).toHaveClass("diff-add");
    expect(screen.getByText("-def greet(name):")).toHaveClass("diff-del");
    // Indentation matters in a diff: match the line exactly, only its trailing newline trimmed.
    const exact = { normalizer: getDefaultNormalizer({ collapseWhitespace: false }) };
    expect(screen.getByText('+    assert greet("x") == "Hello x"', exact)).toHaveClass("diff-add");
    expect(screen.getByText('+    return f"Hello {name}"', exact)).toHaveClass("diff-add");
    const counts = [...container.querySelectorAll("summary")].map((summary) => summary.textContent);
    expect(counts).toEqual(["app.py +2 −2", "tests/test_app.py +5 −0"]);
  });

  it("says so when there is no change", () => {
    render(<DiffView diff={"  \n"} />);
    expect(screen.getByText("No changes in this attempt.")).toBeInTheDocument();
  });
});

describe("parseUnifiedDiff inside a hunk", () => {
  // A SQL file: removing a line "-- old note" and adding "++ counter" look like file headers
  // ("--- "/"+++ ") but sit inside a hunk, whose header says how many lines it holds.
  const SQL_DIFF = `diff --git a/schema.sql b/schema.sql
index 1111111..2222222 100644
--- a/schema.sql
+++ b/schema.sql
@@ -1,3 +1,3 @@
--- old note
+++ counter
 CREATE TABLE t (id int);
-DROP TABLE u;
+DROP TABLE v;
`;

  it("counts lines that start like headers as the removals and additions they are", () => {
    const [file] = parseUnifiedDiff(SQL_DIFF);
    expect(file?.path).toBe("schema.sql");
    expect([file?.added, file?.removed]).toEqual([2, 2]);
    expect(file?.lines.filter((line) => line.kind === "del").map((line) => line.text)).toEqual([
      "--- old note",
      "-DROP TABLE u;",
    ]);
  });
});
