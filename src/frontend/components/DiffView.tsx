// A unified diff (git's), one collapsible block per file, lines coloured by kind.

export interface DiffFile {
  path: string;
  added: number;
  removed: number;
  lines: DiffLine[];
}

export interface DiffLine {
  kind: "add" | "del" | "hunk" | "context" | "meta";
  text: string;
}

const HUNK_HEADER = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/;

/**
 * Splits git's unified diff into files and classified lines. Inside a hunk the header's line
 * counts say where it ends, so a removed line that reads "-- x" or an added "++ y" is still a
 * removal or an addition, never mistaken for a file header.
 */
export function parseUnifiedDiff(diff: string): DiffFile[] {
  const files: DiffFile[] = [];
  let current: DiffFile | null = null;
  // Lines still expected in the current hunk, old side and new side.
  let oldLeft = 0;
  let newLeft = 0;
  for (const text of diff.split("\n")) {
    if (oldLeft > 0 || newLeft > 0) {
      if (current && text.startsWith("+")) {
        current.added += 1;
        newLeft -= 1;
        current.lines.push({ kind: "add", text });
        continue;
      }
      if (current && text.startsWith("-")) {
        current.removed += 1;
        oldLeft -= 1;
        current.lines.push({ kind: "del", text });
        continue;
      }
      if (current && (text.startsWith(" ") || text === "")) {
        oldLeft -= 1;
        newLeft -= 1;
        current.lines.push({ kind: "context", text });
        continue;
      }
      if (current && text.startsWith("\\")) {
        current.lines.push({ kind: "meta", text }); // "\ No newline at end of file"
        continue;
      }
      oldLeft = 0;
      newLeft = 0;
    }
    if (text.startsWith("diff --git ")) {
      const match = / b\/(.+)$/.exec(text);
      current = { path: match?.[1] ?? text.slice(11), added: 0, removed: 0, lines: [] };
      files.push(current);
      continue;
    }
    if (!current) {
      if (!text.trim()) continue;
      // A diff without git's header (a plain unified diff): one unnamed file until "+++ b/x".
      current = { path: "(diff)", added: 0, removed: 0, lines: [] };
      files.push(current);
    }
    const hunk = HUNK_HEADER.exec(text);
    if (hunk) {
      oldLeft = hunk[1] === undefined ? 1 : Number(hunk[1]);
      newLeft = hunk[2] === undefined ? 1 : Number(hunk[2]);
      current.lines.push({ kind: "hunk", text });
    } else if (text.startsWith("+++ ") || text.startsWith("--- ")) {
      if (text.startsWith("+++ b/") && current.path === "(diff)") current.path = text.slice(6);
      current.lines.push({ kind: "meta", text });
    } else if (text.trim()) {
      current.lines.push({ kind: "meta", text });
    }
  }
  return files;
}

export function DiffView({ diff }: { diff: string | null | undefined }) {
  if (!diff || !diff.trim()) return <p className="muted">No changes in this attempt.</p>;
  const files = parseUnifiedDiff(diff);
  return (
    <div className="diff">
      {files.map((file, index) => (
        <details key={`${file.path}-${index}`} open={files.length <= 4}>
          <summary>
            <code>{file.path}</code>{" "}
            <span className="diff-add-count">+{file.added}</span>{" "}
            <span className="diff-del-count">−{file.removed}</span>
          </summary>
          <pre className="diff-body">
            {file.lines.map((line, number) => (
              <span key={number} className={`diff-line diff-${line.kind}`}>
                {line.text}
                {"\n"}
              </span>
            ))}
          </pre>
        </details>
      ))}
    </div>
  );
}
