import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { resetAuthForTests } from "../api/auth";
import type { UsagePoint, UsageSummary } from "../api/types";
import {
  emptyUsageSummary,
  errorResponse,
  jsonResponse,
  makeUsagePoint,
  requestsTo,
  routes,
  usageSummary,
} from "../test/fixtures";
import { renderWithProviders } from "../test/render";
import UsagePage, { toSeries } from "./UsagePage";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

const DAY1 = "2024-05-01T00:00:00Z";
const DAY2 = "2024-05-02T00:00:00Z";
const DAY3 = "2024-05-03T00:00:00Z";

/** How the page labels a day bucket (locale- and time-zone-dependent, so computed alike). */
function dayLabel(start: string): string {
  return new Date(start).toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

// Out of order on purpose; amounts exactly representable so sums compare exactly.
const points: UsagePoint[] = [
  makeUsagePoint(DAY2, "gpt-4o", "planner", { cost_usd: "1.5", input_tokens: 300, output_tokens: 30 }),
  makeUsagePoint(DAY1, "claude-sonnet-4", "builder", { cost_usd: "0.5", input_tokens: 1000, output_tokens: 200 }),
  makeUsagePoint(DAY1, "claude-sonnet-4", "auditor", { cost_usd: "0.25", input_tokens: 400, output_tokens: 40 }),
  makeUsagePoint(DAY3, "claude-sonnet-4", "builder", { cost_usd: "2", input_tokens: 5000, output_tokens: 500 }),
  makeUsagePoint(DAY1, "gpt-4o", "planner", { cost_usd: "0.125", input_tokens: 100, output_tokens: 10 }),
  makeUsagePoint(DAY3, "claude-sonnet-4", "auditor", { cost_usd: "0.75", input_tokens: 600, output_tokens: 60 }),
];

describe("toSeries", () => {
  it("makes one series per model over the sorted buckets, summing cost across roles", () => {
    const { buckets, series } = toSeries(points, "day", "cost");

    expect(buckets).toEqual([DAY1, DAY2, DAY3].map(dayLabel));
    expect(series).toEqual([
      { name: "claude-sonnet-4", values: [0.75, 0, 2.75] },
      { name: "gpt-4o", values: [0.125, 1.5, 0] },
    ]);
  });

  it("sums input and output tokens for the token measure", () => {
    const { series } = toSeries(points, "day", "tokens");

    expect(series).toEqual([
      { name: "claude-sonnet-4", values: [1000 + 200 + 400 + 40, 0, 5000 + 500 + 600 + 60] },
      { name: "gpt-4o", values: [100 + 10, 300 + 30, 0] },
    ]);
  });

  it("labels hour buckets with the hour", () => {
    const hours = ["2024-05-01T10:00:00Z", "2024-05-01T09:00:00Z"];
    const { buckets, series } = toSeries(
      hours.map((start) => makeUsagePoint(start, "m", "builder", { cost_usd: "1" })),
      "hour",
      "cost",
    );

    expect(buckets).toEqual(
      [...hours].sort().map((start) =>
        new Date(start).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit" }),
      ),
    );
    expect(new Set(buckets).size).toBe(2);
    expect(series).toEqual([{ name: "m", values: [1, 1] }]);
  });

  it("with no points, has no buckets and no series", () => {
    expect(toSeries([], "day", "cost")).toEqual({ buckets: [], series: [] });
  });
});

function serve(summary: UsageSummary, timeseries: UsagePoint[]) {
  fetchMock.mockImplementation(
    routes({
      "GET /api/usage": () => jsonResponse(summary),
      "GET /api/usage/timeseries": (_request, url) =>
        jsonResponse({ bucket: url.searchParams.get("bucket") === "hour" ? "hour" : "day", points: timeseries }),
    }),
  );
}

/** The figure a total shows, by its label. */
function total(label: string): string {
  return screen.getByText(label, { selector: "dt" }).nextElementSibling?.textContent ?? "";
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("UsagePage", () => {
  it("shows the totals", async () => {
    serve(usageSummary, points);
    renderWithProviders(<UsagePage />);

    await screen.findByText("Calls", { selector: "dt" });
    expect(total("Calls")).toBe("1,234");
    expect(total("Tokens")).toBe("1,234,567");
    expect(total("Cache-read tokens")).toBe("50,000");
    expect(total("Cost")).toBe("$12.50");
  });

  it("charts the cost per day by model, with a legend item per model", async () => {
    serve(usageSummary, points);
    renderWithProviders(<UsagePage />);

    const chart = await screen.findByRole("img", { name: /by model/ });
    expect(chart).toHaveAccessibleName("Cost per day by model, 3 periods");
    expect(requestsTo(fetchMock, "GET", "/api/usage/timeseries")[0]?.url).toMatch(/\?bucket=day$/);
    const legend = screen.getByRole("list", { name: "Series" });
    expect(within(legend).getAllByRole("listitem").map((item) => item.textContent?.trim())).toEqual([
      "claude-sonnet-4",
      "gpt-4o",
    ]);
    // One bar per model and bucket with a value: claude on days 1 and 3, gpt-4o on days 1 and 2.
    const bars = Array.from(chart.querySelectorAll("rect > title")).map((title) => title.textContent);
    expect(bars).toEqual([
      `${dayLabel(DAY1)} · claude-sonnet-4: $0.75`,
      `${dayLabel(DAY1)} · gpt-4o: $0.13`,
      `${dayLabel(DAY2)} · gpt-4o: $1.50`,
      `${dayLabel(DAY3)} · claude-sonnet-4: $2.75`,
    ]);
  });

  it("switches the chart to tokens, and to hours (asking for hour buckets)", async () => {
    const user = userEvent.setup();
    serve(usageSummary, points);
    renderWithProviders(<UsagePage />);
    await screen.findByRole("img", { name: /by model/ });

    await user.selectOptions(screen.getByRole("combobox", { name: "Show" }), "tokens");
    expect(screen.getByRole("img", { name: /by model/ })).toHaveAccessibleName("Tokens per day by model, 3 periods");

    await user.selectOptions(screen.getByRole("combobox", { name: "Per" }), "hour");
    await waitFor(() =>
      expect(requestsTo(fetchMock, "GET", "/api/usage/timeseries").map((request) => new URL(request.url).search)).toContain(
        "?bucket=hour",
      ),
    );
    expect(await screen.findByRole("img", { name: /^Tokens per hour by model/ })).toBeInTheDocument();
  });

  it("lists the usage by model and role", async () => {
    serve(usageSummary, points);
    renderWithProviders(<UsagePage />);

    const table = await screen.findByRole("table", { name: "Usage by model and role" });
    const rows = within(table)
      .getAllByRole("row")
      .slice(1)
      .map((row) => within(row).getAllByRole("cell").map((cell) => cell.textContent));
    // Model | Provider | Role | Calls | Input | Output | Cache read | Cost
    expect(rows).toEqual([
      ["claude-sonnet-4", "anthropic", "builder", "900", "800,000", "200,000", "50,000", "$10.00"],
      ["claude-sonnet-4", "anthropic", "auditor", "300", "150,000", "30,000", "0", "$2.00"],
      ["gpt-4o", "openai", "planner", "34", "50,000", "4,567", "0", "$0.50"],
    ]);
  });

  it("with no model calls, says so instead of a chart and a table", async () => {
    serve(emptyUsageSummary, []);
    renderWithProviders(<UsagePage />);

    await waitFor(() => expect(screen.getAllByText("No model calls yet.")).toHaveLength(2));
    expect(total("Calls")).toBe("0");
    expect(total("Cost")).toBe("$0.00");
    expect(screen.queryByRole("img")).not.toBeInTheDocument();
    expect(screen.queryByRole("table")).not.toBeInTheDocument();
  });

  it("shows the server's error message", async () => {
    fetchMock.mockImplementation(
      routes({ "GET /api/usage": () => errorResponse(500, "internal_error", "The ledger is unavailable") }),
    );
    renderWithProviders(<UsagePage />);

    expect(await screen.findByRole("alert")).toHaveTextContent("The ledger is unavailable");
    expect(screen.queryByText("Calls", { selector: "dt" })).not.toBeInTheDocument();
  });
});
