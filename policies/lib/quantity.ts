/** Kubernetes resource quantities and Prometheus durations, parsed to numbers for comparison. */

const SUFFIX: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** `500m` → 0.5, `2Gi` → 2147483648, `1e3` → 1000; undefined when not a quantity. */
export function parseQuantity(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v !== "string") return undefined;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(
    v.trim(),
  );
  if (!m) return undefined;
  return Number(m[1]) * SUFFIX[m[2] ?? ""];
}

const DURATION_UNIT_DAYS: Record<string, number> = {
  y: 365,
  w: 7,
  d: 1,
  h: 1 / 24,
  m: 1 / 1440,
  s: 1 / 86400,
  ms: 1 / 86400000,
};

/** Prometheus duration (`30d`, `720h`, `4w2d`, `1y`) in days; undefined when malformed. */
export function parseDurationDays(v: string): number | undefined {
  const s = v.trim();
  if (s === "0") return 0;
  if (!/^(\d+(ms|y|w|d|h|m|s))+$/.test(s)) return undefined;
  let days = 0;
  for (const [, n, unit] of s.matchAll(/(\d+)(ms|y|w|d|h|m|s)/g)) {
    days += Number(n) * DURATION_UNIT_DAYS[unit];
  }
  return days;
}

/** A whole, non-negative number of days from an annotation or env value. */
export function parseDays(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === "string" && /^\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}
