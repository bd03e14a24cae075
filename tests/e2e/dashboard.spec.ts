// The dashboard end to end, in Chromium, against a real `autopack serve` (see server.py):
// the key prompt, the runs list, a finished run's detail, a run followed live while it
// executes, cancel, retry, a rejected plan, and every other page. Each page is saved as a
// screenshot under e2e-screenshots/ (the only way anyone sees the product).
import { readFileSync } from "node:fs";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

import { expect, test, type APIRequestContext, type Page } from "@playwright/test";

const root = resolve(import.meta.dirname, "../..");
const screenshots = join(root, "e2e-screenshots");
mkdirSync(screenshots, { recursive: true });

const apiKey = process.env.E2E_API_KEY ?? "";
const demoPlan = readFileSync(join(root, "src/autopack/demo/plan.yaml"), "utf-8");

function planWithRunId(runId: string, plan = demoPlan): string {
  return plan.replace(/^ {2}run_id: demo$/m, `  run_id: ${runId}`);
}

/** The demo plan with its first phase's test command changed: the recorded replies do not
 * answer that prompt, so the model server refuses it and the phase fails. */
function failingPlan(runId: string): string {
  return planWithRunId(runId).replace("test_cmd: python -m pytest -q", "test_cmd: python -m pytest -q -x");
}

function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}`;
}

async function createRun(request: APIRequestContext, plan: string): Promise<string> {
  const response = await request.post("/api/runs", {
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/yaml" },
    data: plan,
  });
  expect(response.status(), await response.text()).toBe(201);
  return ((await response.json()) as { run_id: string }).run_id;
}

async function runState(request: APIRequestContext, runId: string): Promise<string> {
  const response = await request.get(`/api/runs/${runId}`, { headers: { Authorization: `Bearer ${apiKey}` } });
  return ((await response.json()) as { state: string }).state;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

async function withKey(page: Page): Promise<void> {
  await page.addInitScript((key) => window.sessionStorage.setItem("autopack.apiKey", key), apiKey);
}

test.describe.configure({ mode: "serial" });

// Every console error fails the test it happened in: a Content-Security-Policy violation, a
// failed chunk load or an exception in React all show up there. The browser's own line for an
// API refusal (401 at the key prompt, 422 for a rejected plan) is expected, not an error of the
// page: those flows check what the page shows instead.
let consoleErrors: string[] = [];
test.beforeEach(({ page }) => {
  consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error" && !/^Failed to load resource: the server responded with a status of 4(01|22)\b/.test(message.text())) consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
});
test.afterEach(() => {
  expect(consoleErrors, "errors in the browser console").toEqual([]);
});

test("asks for an API key when the server requires one, and refuses a wrong one", async ({ page }) => {
  await page.goto("/");
  const dialog = page.getByRole("dialog", { name: "API key needed" });
  await expect(dialog).toBeVisible();
  await shot(page, "key-prompt");
  await dialog.getByLabel("API key").fill("not-a-key");
  await dialog.getByRole("button", { name: "Use this key" }).click();
  await expect(page.getByText("The server refused that key")).toBeVisible();
  await dialog.getByLabel("API key").fill(apiKey);
  await dialog.getByRole("button", { name: "Use this key" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("link", { name: /^demo-/ })).toBeVisible();
  // The key lives in this tab's sessionStorage, never in the bundle.
  expect(await page.evaluate(() => window.sessionStorage.getItem("autopack.apiKey"))).toBe(apiKey);
});

test("runs list, then the finished demo run: timeline, budgets, attempts with their diff, events", async ({ page }) => {
  await withKey(page);
  await page.goto("/");
  const row = page.getByRole("row", { name: /demo-/ });
  await expect(row).toContainText("DONE SUCCESS");
  await expect(row).toContainText("4/4");
  await shot(page, "runs");

  await row.getByRole("link").click();
  await expect(page).toHaveURL(/\/runs\/demo-/);
  const runUrl = page.url();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("DONE SUCCESS");
  await expect(page.getByRole("heading", { name: "Core features" })).toBeVisible();
  await expect(page.getByRole("meter", { name: "Tokens used" })).toBeVisible();
  await expect(page.getByRole("status").filter({ hasText: "Run finished" })).toBeVisible();
  await expect(page.getByTestId("event-log").locator("li").first()).toBeVisible();
  await expect(page.getByRole("button", { name: "Promote" })).toBeVisible();

  await page.getByRole("button", { name: /Add slugify/ }).click();
  const attempt = page.getByRole("article", { name: "Attempt 1" }).first();
  await expect(attempt).toContainText("textkit/slug.py");
  await expect(attempt.locator(".diff-add").first()).toBeVisible();
  await shot(page, "run-detail");

  // A client route survives a reload: the server answers it with the dashboard.
  await page.reload();
  await expect(page).toHaveURL(runUrl);
  await expect(page.getByRole("heading", { name: "Core features" })).toBeVisible();

  // By keyboard: a phase opens with Enter, and the navigation is made of real links.
  const phaseToggle = page.getByRole("button", { name: /Refuse oversized input/ });
  await phaseToggle.focus();
  await page.keyboard.press("Enter");
  await expect(phaseToggle).toHaveAttribute("aria-expanded", "true");
  await expect(page.getByRole("article", { name: "Attempt 1" }).first()).toBeVisible();

  // Dark, following the system, and readable at 1024 px.
  await page.emulateMedia({ colorScheme: "dark" });
  await page.setViewportSize({ width: 1024, height: 800 });
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe("rgb(17, 20, 24)");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot(page, "run-detail-dark-1024");
  await page.getByRole("link", { name: "Usage" }).focus();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/usage$/);
});

test("a new run from a pasted plan: its events arrive live while it executes", async ({ page }) => {
  await withKey(page);
  await page.goto("/runs/new");
  await expect(page.getByLabel("Project")).toContainText("demo");
  const runId = unique("e2e-live");
  await page.getByLabel("Plan (YAML or JSON)").fill(planWithRunId(runId));
  await shot(page, "new-run");
  await page.getByRole("button", { name: "Create run" }).click();

  await expect(page).toHaveURL(new RegExp(`/runs/${runId}$`));
  const log = page.getByTestId("event-log").locator("li");
  await expect(page.getByRole("status").filter({ hasText: "Live" })).toBeVisible();
  await expect(log.first()).toBeVisible();
  const early = await log.count();
  // Each model reply takes over a second: later events can only have come over the stream.
  await expect.poll(() => log.count(), { timeout: 30_000 }).toBeGreaterThan(early + 3);
  await expect(page.getByRole("heading", { level: 1 })).toContainText(/RUNNING|QUEUED/);
  await shot(page, "run-live");

  await expect(page.getByRole("heading", { level: 1 })).toContainText("DONE SUCCESS", { timeout: 80_000 });
  await expect(page.getByRole("status").filter({ hasText: "Run finished" })).toBeVisible();
  await expect(log.filter({ hasText: "run." }).last()).toBeVisible();
});

test("a run from an uploaded plan file, cancelled while it runs", async ({ page }) => {
  await withKey(page);
  await page.goto("/runs/new");
  const runId = unique("e2e-cancel");
  await page.getByLabel("Upload a plan file").setInputFiles({
    name: "plan.yaml",
    mimeType: "application/yaml",
    buffer: Buffer.from(planWithRunId(runId)),
  });
  await expect(page.getByLabel("Plan (YAML or JSON)")).toHaveValue(/e2e-cancel/);
  await page.getByLabel("Project").selectOption("demo");
  await page.getByRole("button", { name: "Create run" }).click();
  await expect(page).toHaveURL(new RegExp(`/runs/${runId}$`));
  await page.getByRole("button", { name: "Cancel run" }).click();
  await page.getByRole("button", { name: "Yes, cancel run" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("CANCELLED");
  await expect(page.getByRole("button", { name: "Cancel run" })).toHaveCount(0);
  await expect(page.getByTestId("event-log")).toContainText("CANCELLED");
  await shot(page, "run-cancelled");
});

test("retry a failed phase: the run reopens and the phase runs again", async ({ page, request }) => {
  await withKey(page);
  const runId = await createRun(request, failingPlan(unique("e2e-retry")));
  await expect.poll(() => runState(request, runId), { timeout: 60_000 }).toBe("DONE_FAILED_ENVIRONMENT");
  await page.goto(`/runs/${runId}`);
  const phase = page.locator('[data-phase-id="slugify"]');
  await expect(phase).toContainText("FAILED");
  await expect(phase).toContainText("1 attempt");
  await shot(page, "run-failed");

  await page.getByRole("button", { name: "Retry phase slugify" }).click();
  // The retry re-queues the phase and reopens the run; it fails the same way, once more.
  await expect(phase).toContainText("2 attempts", { timeout: 60_000 });
  await expect(page.getByRole("heading", { level: 1 })).toContainText("DONE FAILED ENVIRONMENT");
  await expect(page.getByTestId("event-log")).toContainText("retry");
});

test("a rejected plan shows each problem at its place and creates nothing", async ({ page, request }) => {
  await withKey(page);
  await page.goto("/runs/new");
  const runId = unique("e2e-bad");
  const bad = planWithRunId(runId).replace("tier_id: hardening\n    name:", "tier_id: hardening\n    nme:");
  await page.getByLabel("Plan (YAML or JSON)").fill(bad.replace(/tier_id: core$/m, "tier_id: nowhere"));
  await page.getByRole("button", { name: "Create run" }).click();
  const problems = page.getByRole("list", { name: "Problems in the plan" });
  await expect(problems).toBeVisible();
  await expect(problems.locator("code.loc").first()).toBeVisible();
  await expect(page.getByLabel("Plan (YAML or JSON)")).toHaveAttribute("aria-invalid", "true");
  await shot(page, "new-run-invalid");
  const response = await request.get(`/api/runs/${runId}`, { headers: { Authorization: `Bearer ${apiKey}` } });
  expect(response.status()).toBe(404);
});

test("issues and rules, usage and system pages", async ({ page }) => {
  await withKey(page);
  await page.goto("/issues");
  await expect(page.getByRole("heading", { name: "Issues backlog" })).toBeVisible();
  // The demo's frequencies phase broke a test once: that failure is in the backlog.
  const backlog = page.getByRole("table").first();
  await expect(backlog.getByRole("row").nth(1)).toContainText("demo");
  const rule = page.getByRole("row", { name: /whole test suite/ });
  await expect(rule).toContainText("candidate");
  await shot(page, "issues");
  await rule.getByRole("button", { name: /Approve rule/ }).click();
  await expect(rule).toContainText("active");
  await rule.getByRole("button", { name: /Retire rule/ }).click();
  await expect(rule).toContainText("retired");
  await expect(rule.getByRole("button")).toHaveCount(0);

  await page.getByRole("link", { name: "Usage" }).click();
  await expect(page.getByRole("heading", { name: "By model and role" })).toBeVisible();
  await expect(page.getByRole("img", { name: /by model/ })).toBeVisible();
  await expect(page.getByRole("table")).toContainText("builder");
  await shot(page, "usage");

  await page.getByRole("link", { name: "System" }).click();
  await expect(page.getByRole("heading", { name: "Database" })).toBeVisible();
  await expect(page.getByText("sqlite")).toBeVisible();
  await expect(page.getByText("in-process executor")).toBeVisible();
  await shot(page, "system");
});

test("promote the finished demo run into its project's branch", async ({ page }) => {
  await withKey(page);
  await page.goto("/");
  await page.getByRole("row", { name: /demo-/ }).getByRole("link").click();
  await page.getByRole("button", { name: "Promote" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Promoted to" })).toContainText(/Promoted to main at [0-9a-f]{10}/);
  await shot(page, "run-promoted");
});
