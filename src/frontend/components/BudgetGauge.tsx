// One budget as a meter: how much is used against its cap (or just the amount, with no cap).
// Progress toward a goal (phases complete) is a progress bar instead: full is good there.
export interface BudgetGaugeProps {
  label: string;
  used: number;
  cap: number | null | undefined;
  format: (value: number) => string;
  /** Progress rather than spend: reaching the cap is the goal, not a warning. */
  goal?: boolean;
}

export function BudgetGauge({ label, used, cap, format, goal = false }: BudgetGaugeProps) {
  const hasCap = cap !== null && cap !== undefined && cap > 0;
  const ratio = hasCap ? used / cap : 0;
  const level = goal ? "progress" : ratio >= 1 ? "over" : ratio >= 0.8 ? "high" : "ok";
  return (
    <div className={`gauge gauge-${hasCap ? level : "uncapped"}`}>
      <div className="gauge-label">
        <span>{label}</span>
        <span className="gauge-figures">
          {format(used)}
          {hasCap ? ` of ${format(cap)}` : " (no cap)"}
        </span>
      </div>
      {hasCap && goal ? (
        <progress aria-label={label} max={cap} value={Math.min(used, cap)} />
      ) : hasCap ? (
        <meter
          aria-label={`${label} used`}
          min={0}
          max={cap}
          low={cap * 0.8}
          high={cap * 0.95}
          optimum={0}
          value={Math.min(used, cap)}
        />
      ) : null}
    </div>
  );
}
