// The generated client types must match the API's committed OpenAPI schema: this regenerates
// them exactly as `npm run generate:api` does and compares with schema.d.ts, byte for byte.
import { readFileSync } from "node:fs";
import { join } from "node:path";

import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import { describe, expect, it } from "vitest";

// Paths, not URL objects: in the jsdom environment `URL` is jsdom's, which node:fs refuses.
const OPENAPI = join(import.meta.dirname, "openapi.json");
const SCHEMA = join(import.meta.dirname, "schema.d.ts");

/**
 * What `openapi-typescript src/frontend/api/openapi.json -o src/frontend/api/schema.d.ts` writes
 * (node_modules/openapi-typescript/bin/cli.js, generateSchema): the comment header, then the
 * printed AST. The CLI passes no option of its own when no flag is given (the parsed flags are
 * undefined, so the library's defaults apply); its Redocly config only changes validation.
 */
async function generate(): Promise<string> {
  // A file:// string is read from disk as the CLI reads its input argument (a file URL).
  const ast = await openapiTS(`file://${OPENAPI}`, { silent: true });
  return `${COMMENT_HEADER}${astToString(ast)}`;
}

describe("src/frontend/api/schema.d.ts", () => {
  it("is what `npm run generate:api` makes from openapi.json", { timeout: 30_000 }, async () => {
    const expected = await generate();
    const committed = readFileSync(SCHEMA, "utf8");

    if (committed !== expected) {
      const committedLines = committed.split("\n");
      const expectedLines = expected.split("\n");
      const line = expectedLines.findIndex((text, index) => text !== committedLines[index]);
      const at = line === -1 ? committedLines.length : line;
      expect.fail(
        "src/frontend/api/schema.d.ts is out of date with src/frontend/api/openapi.json: " +
          "run `npm run generate:api` and commit the result.\n" +
          `First difference at line ${at + 1}:\n` +
          `  schema.d.ts: ${JSON.stringify(committedLines[at] ?? "<end of file>")}\n` +
          `  generated:   ${JSON.stringify(expectedLines[at] ?? "<end of file>")}`,
      );
    }
    expect(committed).toBe(expected);
  });

  it("starts with the generator's header", () => {
    expect(readFileSync(SCHEMA, "utf8").startsWith(COMMENT_HEADER)).toBe(true);
  });
});
