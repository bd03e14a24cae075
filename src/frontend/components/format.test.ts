import { describe, expect, it, vi } from "vitest";

import { elapsedMs, formatDuration, formatTokens, formatUsd, shortSha, toNumber } from "./format";

describe("formatUsd", () => {
  it.each([
    ["0.0042", "$0.0042"],
    ["1.5", "$1.50"],
    ["12.345", "$12.35"],
    ["0", "$0.00"],
    ["0.01", "$0.01"],
    ["0.009", "$0.0090"],
    [2, "$2.00"],
  ])("formats %s as %s", (value, expected) => {
    expect(formatUsd(value)).toBe(expected);
  });

  it("shows a dash for a missing amount and the raw text for a non-number", () => {
    expect(formatUsd(null)).toBe("—");
    expect(formatUsd(undefined)).toBe("—");
    expect(formatUsd("n/a")).toBe("n/a");
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0 ms"],
    [-20, "0 ms"],
    [999, "999 ms"],
    [1000, "1 s"],
    [59_000, "59 s"],
    [59_499, "59 s"],
    [60_000, "1 min 0 s"],
    [61_000, "1 min 1 s"],
    [3_599_000, "59 min 59 s"],
    [3_600_000, "1 h 0 min"],
    [3_660_000, "1 h 1 min"],
    [90_000_000, "25 h 0 min"],
  ])("formats %i ms as %s", (ms, expected) => {
    expect(formatDuration(ms)).toBe(expected);
  });
});

describe("elapsedMs", () => {
  const start = "2024-05-01T10:00:00Z";

  it("measures between start and end", () => {
    expect(elapsedMs(start, "2024-05-01T10:01:30Z")).toBe(90_000);
  });

  it("measures until now when the end is missing", () => {
    const now = Date.parse("2024-05-01T10:00:05Z");
    expect(elapsedMs(start, null, now)).toBe(5000);
    expect(elapsedMs(start, undefined, now)).toBe(5000);
  });

  it("uses the current time by default", () => {
    vi.useFakeTimers({ now: new Date("2024-05-01T10:02:00Z") });
    try {
      expect(elapsedMs(start, null)).toBe(120_000);
    } finally {
      vi.useRealTimers();
    }
  });

  it("is null without a start", () => {
    expect(elapsedMs(null, "2024-05-01T10:01:30Z")).toBeNull();
  });
});

describe("numbers", () => {
  it("formats tokens compactly from 10,000", () => {
    expect(formatTokens(9999)).toBe("9,999");
    expect(formatTokens(12_345)).toBe("12.3K");
  });

  it("reads decimal strings as numbers, 0 when unreadable", () => {
    expect(toNumber("1.25")).toBe(1.25);
    expect(toNumber("x")).toBe(0);
    expect(toNumber(null)).toBe(0);
  });

  it("shortens a commit sha", () => {
    expect(shortSha("0123456789abcdef")).toBe("0123456789");
    expect(shortSha(null)).toBe("—");
  });
});
