// Stacked bars in SVG: one bar per time bucket, one colour per series. Small on purpose (no
// charting library for one chart); the figures are also in a table for screen readers.

export interface BarSeries {
  name: string;
  /** One value per bucket, in bucket order. */
  values: number[];
}

export interface BarChartProps {
  title: string;
  buckets: string[];
  series: BarSeries[];
  format: (value: number) => string;
  height?: number;
}

const PALETTE = ["#3b6fe0", "#e07b39", "#2f9e6e", "#b04fc0", "#c9a227", "#d1495b", "#5aa9c9", "#7a7a7a"];

export function seriesColour(index: number): string {
  return PALETTE[index % PALETTE.length] ?? "#7a7a7a";
}

export function BarChart({ title, buckets, series, format, height = 220 }: BarChartProps) {
  const totals = buckets.map((_, index) => series.reduce((sum, item) => sum + (item.values[index] ?? 0), 0));
  const max = Math.max(0, ...totals);
  const width = 720;
  const left = 64;
  const bottom = 28;
  const plotHeight = height - bottom - 8;
  const slot = buckets.length ? (width - left) / buckets.length : 0;
  const barWidth = Math.max(2, Math.min(48, slot * 0.7));
  const scale = (value: number) => (max > 0 ? (value / max) * plotHeight : 0);
  const labelEvery = Math.max(1, Math.ceil(buckets.length / 8));
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}, ${buckets.length} periods`} preserveAspectRatio="xMidYMid meet">
        <line x1={left} x2={width} y1={plotHeight + 8} y2={plotHeight + 8} className="axis" />
        <text x={left - 8} y={16} textAnchor="end" className="tick">
          {format(max)}
        </text>
        <text x={left - 8} y={plotHeight + 8} textAnchor="end" className="tick">
          {format(0)}
        </text>
        {buckets.map((bucket, index) => {
          let y = plotHeight + 8;
          const x = left + index * slot + (slot - barWidth) / 2;
          return (
            <g key={bucket}>
              {series.map((item, seriesIndex) => {
                const value = item.values[index] ?? 0;
                const h = scale(value);
                y -= h;
                return value > 0 ? (
                  <rect key={item.name} x={x} y={y} width={barWidth} height={h} fill={seriesColour(seriesIndex)}>
                    <title>{`${bucket} · ${item.name}: ${format(value)}`}</title>
                  </rect>
                ) : null;
              })}
              {index % labelEvery === 0 ? (
                <text x={x + barWidth / 2} y={height - 8} textAnchor="middle" className="tick">
                  {bucket}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul className="legend" aria-label="Series">
          {series.map((item, index) => (
            <li key={item.name}>
              <svg width="12" height="12" aria-hidden="true">
                <rect width="12" height="12" fill={seriesColour(index)} />
              </svg>{" "}
              {item.name}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
