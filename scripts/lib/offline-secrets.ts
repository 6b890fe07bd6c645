/**
 * Secret config for offline renders (render, policy, diff, e2e), supplied the way an operator
 * supplies it to Pulumi (`pulumi config set --secret KEY VALUE`) but without touching the stack
 * file: `--secret KEY=VALUE` (render) or the environment variable STOCK_ANALYSIS_SECRETS, a JSON
 * object `{"KEY": "VALUE", ...}`. Only the platform's secret keys are accepted. A stack file's own
 * encrypted value wins over both (it is what `pulumi up` would use).
 */
import { secretConfigKeys } from "../../components/config/schema";
import { UsageError } from "./usage-error";

export const OFFLINE_SECRETS_ENV = "STOCK_ANALYSIS_SECRETS";

/**
 * Placeholders the test and CI harnesses pass for prod's alert endpoints (the committed stack
 * file holds no operator secrets). `.invalid` never resolves, so nothing is ever notified.
 */
export const PLACEHOLDER_ALERT_SECRETS: Readonly<Record<string, string>> = {
  alertSlackWebhookUrl: "https://slack.alerts.invalid/services/placeholder",
  alertPagerWebhookUrl: "https://pager.alerts.invalid/events/placeholder",
};

function checkKey(key: string, where: string): void {
  if (!secretConfigKeys.has(key))
    throw new UsageError(
      `${where}: "${key}" is not a secret config key (secret keys: ${[...secretConfigKeys].join(", ")})`,
    );
}

/** `KEY=VALUE` arguments of `--secret`. */
export function parseSecretArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of args) {
    const eq = kv.indexOf("=");
    if (eq <= 0 || eq === kv.length - 1)
      throw new UsageError(
        `--secret expects KEY=VALUE with a non-empty value, got "${kv.split("=")[0]}=…"`,
      );
    const key = kv.slice(0, eq);
    checkKey(key, "--secret");
    out[key] = kv.slice(eq + 1);
  }
  return out;
}

/** The secrets in STOCK_ANALYSIS_SECRETS (empty when unset). */
export function envSecrets(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const raw = env[OFFLINE_SECRETS_ENV];
  if (raw === undefined || raw.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new UsageError(`${OFFLINE_SECRETS_ENV} must be a JSON object {"KEY": "VALUE"}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new UsageError(`${OFFLINE_SECRETS_ENV} must be a JSON object {"KEY": "VALUE"}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    checkKey(k, OFFLINE_SECRETS_ENV);
    if (typeof v !== "string" || v === "")
      throw new UsageError(`${OFFLINE_SECRETS_ENV}: ${k} must be a non-empty string`);
    out[k] = v;
  }
  return out;
}
