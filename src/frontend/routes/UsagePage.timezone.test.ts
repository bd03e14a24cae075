import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { makeUsagePoint } from "../test/fixtures";
import { toSeries } from "./UsagePage";

// The server groups usage by UTC day; west of Greenwich a local rendering of a bucket's start
// (UTC midnight) would be the evening before, and the chart would name the wrong day.
describe("day buckets in a time zone west of UTC", () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.TZ;
    process.env.TZ = "America/New_York";
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });

  it("names each day as the server counted it", () => {
    expect(new Date("2024-05-01T00:00:00Z").getDate()).toBe(30); // the zone really is in force
    const { buckets } = toSeries(
      [makeUsagePoint("2024-05-01T00:00:00Z", "m", "builder"), makeUsagePoint("2024-05-02T00:00:00Z", "m", "builder")],
      "day",
      "cost",
    );
    expect(buckets).toEqual(["May 1", "May 2"]);
  });
});
