import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig, requireNotifiedAlerts } from "../../components/config/load";
import {
  OFFLINE_SECRETS_ENV,
  PLACEHOLDER_ALERT_SECRETS,
  envSecrets,
  parseSecretArgs,
} from "../../scripts/lib/offline-secrets";
import { runProcess } from "../../scripts/lib/run-process";
import { renderRaw } from "../helpers/render";

const ROOT = path.resolve(__dirname, "../..");
const SLACK = { alertSlackWebhookUrl: "https://hooks.example.invalid/slack" };
const PAGER = { alertPagerWebhookUrl: "https://pager.example.invalid/events" };

/** Loads a config (secret values as `--secret` would mark them) and applies the deploy check. */
function check(o: Record<string, unknown>, secrets: Record<string, string> = {}) {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...o, ...secrets }))
    raw[`stock-analysis:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  return requireNotifiedAlerts(
    loadConfig(
      raw,
      Object.keys(secrets).map((k) => `stock-analysis:${k}`),
    ),
  );
}

function problems(o: Record<string, unknown>, secrets: Record<string, string> = {}): string[] {
  try {
    check(o, secrets);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  return [];
}

describe("alerts must reach people", () => {
  it("a stack without Slack and pager fails with one message naming both secret keys", () => {
    const p = problems({});
    assert.equal(p.length, 1, p.join("\n"));
    assert.match(
      p[0],
      /^stock-analysis:alertSlackWebhookUrl, stock-analysis:alertPagerWebhookUrl = \(unset\)/,
    );
    assert.match(p[0], /warning alerts reach no one/);
    assert.match(p[0], /critical alerts page no one/);
    assert.match(p[0], /pulumi config set --secret alertSlackWebhookUrl <url>/);
    assert.match(p[0], /pulumi config set --secret alertPagerWebhookUrl <url>/);
  });

  it("names only what is missing; both set passes", () => {
    const onlySlack = problems({}, SLACK);
    assert.equal(onlySlack.length, 1);
    assert.match(onlySlack[0], /^stock-analysis:alertPagerWebhookUrl = \(unset\): critical/);
    assert.doesNotMatch(onlySlack[0], /alertSlackWebhookUrl/);
    const onlyPager = problems({}, PAGER);
    assert.match(onlyPager[0], /^stock-analysis:alertSlackWebhookUrl = \(unset\): warning/);
    assert.deepEqual(problems({}, { ...SLACK, ...PAGER }), []);
  });

  it("the waiver holds on a kind cluster only, and monitoring off needs no endpoints", () => {
    const waiver = { monitoring: { alerting: { allowUnnotified: true } } };
    assert.deepEqual(problems({ ...waiver, cluster: { mode: "kind" } }), []);
    for (const mode of ["existing", "yaml"]) {
      const p = problems({ ...waiver, cluster: { mode } });
      assert.equal(p.length, 1);
      assert.match(
        p[0],
        new RegExp(
          `^stock-analysis:monitoring\\.alerting\\.allowUnnotified = true: only a kind .*cluster\\.mode is "${mode}"`,
        ),
      );
      assert.match(p[0], /pulumi config set --secret alertSlackWebhookUrl/);
    }
    // A waiver that waives nothing is harmless.
    assert.deepEqual(problems(waiver, { ...SLACK, ...PAGER }), []);
    assert.deepEqual(problems({ monitoring: { enabled: false } }), []);
  });

  it("offline secrets: --secret and STOCK_ANALYSIS_SECRETS accept only secret keys", () => {
    assert.deepEqual(parseSecretArgs(["alertSlackWebhookUrl=https://x.invalid/a=b"]), {
      alertSlackWebhookUrl: "https://x.invalid/a=b",
    });
    assert.throws(() => parseSecretArgs(["api=1"]), /"api" is not a secret config key/);
    assert.throws(() => parseSecretArgs(["alertSlackWebhookUrl="]), /non-empty value/);
    assert.deepEqual(envSecrets({ [OFFLINE_SECRETS_ENV]: JSON.stringify(PAGER) }), PAGER);
    assert.deepEqual(envSecrets({}), {});
    assert.throws(
      () => envSecrets({ [OFFLINE_SECRETS_ENV]: '{"registry":"x"}' }),
      /"registry" is not a secret config key/,
    );
    assert.throws(() => envSecrets({ [OFFLINE_SECRETS_ENV]: "[1]" }), /must be a JSON object/);
  });

  it("committed prod renders only with its alert secrets supplied, as an operator would", async () => {
    const bare = await renderRaw("prod", {}, {});
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /Invalid stack config \(1 problem\)/);
    assert.match(bare.stderr, /pulumi config set --secret alertSlackWebhookUrl/);
    assert.match(bare.stderr, /pulumi config set --secret alertPagerWebhookUrl/);
    // The same via the environment (what CI exports), with placeholders that never resolve.
    const env = {
      ...process.env,
      [OFFLINE_SECRETS_ENV]: JSON.stringify(PLACEHOLDER_ALERT_SECRETS),
    };
    const viaEnv = await runProcess(
      process.execPath,
      ["--import", "tsx", "scripts/render.ts", "--stack", "prod"],
      { cwd: ROOT, env },
    );
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, /^Alerting: every severity notifies someone/m);
    for (const url of Object.values(PLACEHOLDER_ALERT_SECRETS))
      assert.ok(!viaEnv.stdout.includes(url), "a secret value reached the summary");
  });

  it("dev renders with its waiver and says in the summary what is unnotified", async () => {
    const env = { ...process.env };
    delete env[OFFLINE_SECRETS_ENV];
    const r = await runProcess(
      process.execPath,
      ["--import", "tsx", "scripts/render.ts", "--stack", "dev"],
      { cwd: ROOT, env },
    );
    assert.equal(r.code, 0, r.stderr);
    const line = r.stdout.split("\n").find((l) => l.startsWith("Alerting:"));
    assert.match(line ?? "", /UNNOTIFIED on dev/);
    assert.match(line ?? "", /warning alerts reach no one.*set alertSlackWebhookUrl/);
    assert.match(line ?? "", /critical alerts page no one.*set alertPagerWebhookUrl/);
  });
});

describe("placeholder secrets are the same everywhere the harness sets them", () => {
  it(".ci/run, the PR workflow and scripts/test.sh export PLACEHOLDER_ALERT_SECRETS", () => {
    for (const file of [".ci/run", ".github/workflows/pr.yml", "scripts/test.sh"]) {
      const text = readFileSync(path.join(ROOT, file), "utf8");
      const json = /'(\{"alert[^']*\})'/.exec(text)?.[1];
      assert.ok(json, `${file} sets no placeholder secrets`);
      assert.deepEqual(JSON.parse(json), PLACEHOLDER_ALERT_SECRETS, file);
      assert.ok(text.includes(OFFLINE_SECRETS_ENV), file);
    }
  });
});
