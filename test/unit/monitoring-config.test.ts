import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../components/config/load";

const load = (o: Record<string, unknown>, secret: string[] = []) =>
  loadConfig(
    Object.fromEntries(
      Object.entries(o).map(([k, v]) => [
        `stock-analysis:${k}`,
        typeof v === "string" ? v : JSON.stringify(v),
      ]),
    ),
    secret.map((k) => `stock-analysis:${k}`),
  );

function problems(o: Record<string, unknown>, secret: string[] = []): string[] {
  try {
    load(o, secret);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  return [];
}

describe("monitoring config", () => {
  it("defaults: monitoring on, small dev retention, one Alertmanager, no endpoints", () => {
    const c = load({});
    assert.equal(c.monitoring.enabled, true);
    assert.equal(c.monitoring.prometheus.retention, "2d");
    assert.equal(c.monitoring.loki.retentionDays, 2);
    assert.equal(c.monitoring.alertmanager.replicas, 1);
    assert.equal(c.alertSlackWebhookUrl, undefined);
  });

  it("rejects a retention that Prometheus would not parse, naming key and value", () => {
    const p = problems({ monitoring: { prometheus: { retention: "30 days" } } });
    assert.equal(p.length, 1);
    assert.match(
      p[0],
      /^stock-analysis:monitoring\.prometheus\.retention = "30 days": must be a duration/,
    );
  });

  it("rejects a malformed team channel and an unknown key with a hint", () => {
    const p = problems({
      monitoring: {
        alerting: {
          teams: {
            backend: { email: "dev@company.com", slackChannel: "backend" },
            dba: { email: "dba@company.com", slackChannel: "#dba" },
            devops: { email: "admin@company.com", slackChannel: "#ops" },
          },
        },
        lokki: {},
      },
    });
    assert.ok(
      p.some((l) =>
        /monitoring\.alerting\.teams\.backend\.slackChannel = "backend": must be a channel/.test(l),
      ),
      p.join("\n"),
    );
    assert.ok(
      p.some((l) => /monitoring\.lokki = .*did you mean "loki"/.test(l)),
      p.join("\n"),
    );
  });

  it("alert endpoints must be secrets: plain text is refused without echoing it", () => {
    const url = "https://hooks.slack.com/services/T000/B000/XXXX";
    const p = problems({ alertSlackWebhookUrl: url });
    assert.equal(p.length, 1);
    assert.match(
      p[0],
      /^stock-analysis:alertSlackWebhookUrl = \[secret\]: must be set as a secret/,
    );
    assert.ok(!p[0].includes(url));
    const ok = load({ alertSlackWebhookUrl: url }, ["alertSlackWebhookUrl"]);
    assert.equal(ok.alertSlackWebhookUrl?.value, url);
  });
});
