// Browser tests of the dashboard: Playwright driving Debian's Chromium (never a downloaded
// browser) against a real `autopack serve` started by tests/e2e/server.py.
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { defineConfig } from "@playwright/test";

const root = resolve(import.meta.dirname, "../..");
const port = Number(process.env.E2E_PORT ?? 8765);
const python = process.env.E2E_PYTHON ?? join(root, ".venv/bin/python");
// The key the server requires and the tests type into the prompt: a test-only value, shared
// with the server (tests/e2e/server.py) and the specs through the environment.
process.env.E2E_API_KEY ??= "e2e-dashboard-key-3b9f1c";
export const screenshotsDir = join(root, "e2e-screenshots");

export default defineConfig({
  testDir: ".",
  testMatch: "*.spec.ts",
  // One server with one executor thread: the flows run one after another.
  workers: 1,
  fullyParallel: false,
  timeout: 90_000,
  expect: { timeout: 20_000 },
  retries: 0,
  reporter: [["list"]],
  outputDir: join(root, "test-results/e2e"),
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1280, height: 900 },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      // As the machine notes give them: no sandbox (CI runs as root), and no background
      // connections to Google's hosts, which this network refuses.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: `${python} -m tests.e2e.server --port ${port} --dir ${join(tmpdir(), `autopack-e2e-${port}`)}`,
    cwd: root,
    url: `http://127.0.0.1:${port}/health`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: "pipe",
    stderr: "pipe",
    gracefulShutdown: { signal: "SIGTERM", timeout: 10_000 },
  },
});
