// Usage: tokens and cost from the ledger of model calls, over time and by model and role.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";

import { api, unwrap } from "../api/client";
import { LIVE_REFRESH_MS, useUsage } from "../api/queries";
import type { UsagePoint } from "../api/types";
import { BarChart, type BarSeries } from "../components/BarChart";
import { formatInteger, formatTokens, formatUsd, toNumber } from "../components/format";
import { Empty, ErrorState, Loading } from "../components/QueryState";

type Bucket = "day" | "hour";
type Measure = "cost" | "tokens";

function bucketLabel(start: string, bucket: Bucket): string {
  const date = new Date(start);
  return bucket === "day"
    ? // Days are UTC days (the server groups by them): a local rendering would name the day
      // before, west of Greenwich.
      date.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" })
    : date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit" });
}

/** Points (bucket × model × role) → one series per model over the buckets. */
export function toSeries(points: UsagePoint[], bucket: Bucket, measure: Measure): { buckets: string[]; series: BarSeries[] } {
  const starts = [...new Set(points.map((point) => point.start))].sort();
  const models = [...new Set(points.map((point) => point.model))].sort();
  const series = models.map((model) => ({
    name: model,
    values: starts.map((start) =>
      points
        .filter((point) => point.start === start && point.model === model)
        .reduce(
          (sum, point) =>
            sum + (measure === "cost" ? toNumber(point.cost_usd) : point.input_tokens + point.output_tokens),
          0,
        ),
    ),
  }));
  return { buckets: starts.map((start) => bucketLabel(start, bucket)), series };
}

function OverTime() {
  const [bucket, setBucket] = useState<Bucket>("day");
  const [measure, setMeasure] = useState<Measure>("cost");
  const timeseries = useQuery({
    queryKey: ["usage-timeseries", bucket],
    queryFn: () => unwrap(api.GET("/api/usage/timeseries", { params: { query: { bucket } } })),
    refetchInterval: LIVE_REFRESH_MS * 5,
  });
  return (
    <section className="panel" aria-labelledby="usage-time-title">
      <div className="panel-head">
        <h2 id="usage-time-title">Over time</h2>
        <div className="filters">
          <label>
            Show
            <select value={measure} onChange={(event) => setMeasure(event.target.value as Measure)}>
              <option value="cost">Cost</option>
              <option value="tokens">Tokens</option>
            </select>
          </label>
          <label>
            Per
            <select value={bucket} onChange={(event) => setBucket(event.target.value as Bucket)}>
              <option value="day">Day</option>
              <option value="hour">Hour</option>
            </select>
          </label>
        </div>
      </div>
      {timeseries.isPending ? (
        <Loading what="usage over time" />
      ) : timeseries.isError ? (
        <ErrorState error={timeseries.error} retry={() => void timeseries.refetch()} />
      ) : timeseries.data.points.length === 0 ? (
        <Empty>
          <p>No model calls yet.</p>
        </Empty>
      ) : (
        <BarChart
          title={`${measure === "cost" ? "Cost" : "Tokens"} per ${bucket} by model`}
          {...toSeries(timeseries.data.points, bucket, measure)}
          format={measure === "cost" ? formatUsd : formatTokens}
        />
      )}
    </section>
  );
}

export default function UsagePage() {
  const usage = useUsage();
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      {usage.isPending ? (
        <Loading what="usage" />
      ) : usage.isError ? (
        <ErrorState error={usage.error} retry={() => void usage.refetch()} />
      ) : (
        <>
          <dl className="facts totals">
            <div>
              <dt>Calls</dt>
              <dd>{formatInteger(usage.data.calls)}</dd>
            </div>
            <div>
              <dt>Tokens</dt>
              <dd>{formatInteger(usage.data.total_tokens)}</dd>
            </div>
            <div>
              <dt>Cache-read tokens</dt>
              <dd>{formatInteger(usage.data.cache_read_tokens)}</dd>
            </div>
            <div>
              <dt>Cost</dt>
              <dd>{formatUsd(usage.data.cost_usd)}</dd>
            </div>
          </dl>
          <OverTime />
          <section className="panel" aria-labelledby="usage-model-title">
            <h2 id="usage-model-title">By model and role</h2>
            {usage.data.by_model_role.length === 0 ? (
              <Empty>
                <p>No model calls yet.</p>
              </Empty>
            ) : (
              <div className="table-scroll">
                <table>
                  <caption className="visually-hidden">Usage by model and role</caption>
                  <thead>
                    <tr>
                      <th scope="col">Model</th>
                      <th scope="col">Provider</th>
                      <th scope="col">Role</th>
                      <th scope="col" className="num">Calls</th>
                      <th scope="col" className="num">Input</th>
                      <th scope="col" className="num">Output</th>
                      <th scope="col" className="num">Cache read</th>
                      <th scope="col" className="num">Cost</th>
                    </tr>
                  </thead>
                  <tbody>
                    {usage.data.by_model_role.map((row) => (
                      <tr key={`${row.model}-${row.role}`}>
                        <td>{row.model}</td>
                        <td>{row.provider}</td>
                        <td>{row.role}</td>
                        <td className="num">{formatInteger(row.calls)}</td>
                        <td className="num">{formatInteger(row.input_tokens)}</td>
                        <td className="num">{formatInteger(row.output_tokens)}</td>
                        <td className="num">{formatInteger(row.cache_read_tokens)}</td>
                        <td className="num">{formatUsd(row.cost_usd)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      )}
    </section>
  );
}
