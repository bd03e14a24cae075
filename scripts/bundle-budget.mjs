#!/usr/bin/env node
// The dashboard's size budget, checked on the built dist/: the JavaScript the first page loads
// (index.html's entry script and every chunk it preloads or imports statically) must stay
// within 80 kB gzipped; every other route is its own chunk, loaded when visited.
//
//   node scripts/bundle-budget.mjs            check; exit 1 when over budget
//   node scripts/bundle-budget.mjs --json F   also write the figures to F (bench/ report)
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_GZIP_BYTES = 80 * 1000;
// For scale: the original system's dashboard shipped one 270.67 kB chunk, 87.04 kB gzipped.
const ORIGINAL_GZIP_BYTES = 87.04 * 1000;

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const dist = join(root, "dist");

function read(path) {
  try {
    return readFileSync(path);
  } catch {
    console.error(`error: ${path} is missing: build the dashboard first (npm run build)`);
    process.exit(2);
  }
}

const html = read(join(dist, "index.html")).toString("utf-8");
const entries = [...html.matchAll(/<script[^>]+src="\/([^"]+\.js)"/g)].map((m) => m[1]);
const preloads = [...html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="\/([^"]+\.js)"/g)].map((m) => m[1]);
const inlineScripts = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>/g)];
if (inlineScripts.length) {
  console.error("error: index.html has an inline script; the Content-Security-Policy forbids it");
  process.exit(1);
}

// Static imports of a chunk (`import ... from "./x.js"` / `import "./x.js"`), not dynamic ones.
function staticImports(file) {
  const code = readFileSync(join(dist, file), "utf-8");
  const found = [...code.matchAll(/(?:^|[;\s}])import\s*(?:[\w*{}\s,$]+from\s*)?["']\.\/([^"']+\.js)["']/g)];
  return found.map((m) => join(dirname(file), m[1]));
}

const initial = new Set();
const queue = [...entries, ...preloads];
while (queue.length) {
  const file = queue.shift();
  if (initial.has(file)) continue;
  initial.add(file);
  queue.push(...staticImports(file));
}

const sizes = (file) => {
  const bytes = readFileSync(join(dist, file));
  return { file, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
};
const initialChunks = [...initial].map(sizes);
const allChunks = readdirSync(join(dist, "assets"))
  .filter((name) => name.endsWith(".js"))
  .map((name) => sizes(`assets/${name}`));
const lazyChunks = allChunks.filter((chunk) => !initial.has(chunk.file));
const initialGzip = initialChunks.reduce((sum, chunk) => sum + chunk.gzip, 0);
const initialBytes = initialChunks.reduce((sum, chunk) => sum + chunk.bytes, 0);

const kb = (bytes) => `${(bytes / 1000).toFixed(2)} kB`;
console.log("initial route (loaded by index.html):");
for (const chunk of initialChunks) console.log(`  ${chunk.file.padEnd(44)} ${kb(chunk.bytes).padStart(10)}  gzip ${kb(chunk.gzip)}`);
console.log(`  total ${kb(initialBytes)}, gzip ${kb(initialGzip)} (budget ${kb(BUDGET_GZIP_BYTES)}; ${(initialGzip / ORIGINAL_GZIP_BYTES).toFixed(2)}x the original dashboard's one chunk)`);
console.log(`other chunks (loaded when their route is visited): ${lazyChunks.length}`);
for (const chunk of lazyChunks) console.log(`  ${chunk.file.padEnd(44)} ${kb(chunk.bytes).padStart(10)}  gzip ${kb(chunk.gzip)}`);

const jsonAt = process.argv.indexOf("--json");
if (jsonAt !== -1 && process.argv[jsonAt + 1]) {
  const out = resolve(process.argv[jsonAt + 1]);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        budget_gzip_bytes: BUDGET_GZIP_BYTES,
        original_gzip_bytes: ORIGINAL_GZIP_BYTES,
        initial: { bytes: initialBytes, gzip_bytes: initialGzip, chunks: initialChunks },
        lazy: lazyChunks,
        ratio_to_original: initialGzip / ORIGINAL_GZIP_BYTES,
        within_budget: initialGzip <= BUDGET_GZIP_BYTES,
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`wrote ${out}`);
}

if (initialGzip > BUDGET_GZIP_BYTES) {
  console.error(`error: the initial route's JavaScript is ${kb(initialGzip)} gzipped, over the ${kb(BUDGET_GZIP_BYTES)} budget`);
  process.exit(1);
}
