/**
 * Alert routing against the real tools: `amtool check-config`, `amtool config routes test` for
 * every severity × team, and inhibition observed on a real Alertmanager on loopback.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { renderAlertmanagerConfig } from "../../components/monitoring/alertmanager-config";
import { run, startAlertmanager, tempDir, tool } from "../helpers/monitoring-daemons";
import { loopbackReceivers } from "../helpers/monitoring-fixtures";

const TEAMS = ["backend", "dba", "devops"];

/** Specification of who is notified: critical pages on-call and the team; warnings reach the team. */
function expectedReceivers(severity: string, team: string | undefined): string[] {
  const owner = team && TEAMS.includes(team) ? `${team}-${severity}` : "default";
  return severity === "critical" ? ["pager", owner] : [owner];
}

const COMBINATIONS = ["critical", "warning"].flatMap((severity) =>
  [...TEAMS, "unknown", undefined].map((team) => ({
    severity,
    team,
    labels: ["alertname=Probe", `severity=${severity}`, ...(team ? [`team=${team}`] : [])],
    want: expectedReceivers(severity, team),
  })),
);

function routeCheck(file: string, labels: string[], want: string[]) {
  return run(tool("amtool"), [
    "config",
    "routes",
    "test",
    `--config.file=${file}`,
    `--verify.receivers=${want.join(",")}`,
    ...labels,
  ]);
}

interface AmConfig {
  route: { routes: { continue?: boolean; matchers?: string[]; routes?: unknown[] }[] };
  inhibit_rules: { equal: string[] }[];
}

let dir = "";
let configFile = "";

describe("alertmanager config (amtool)", () => {
  before(() => {
    dir = tempDir("am-cfg-");
    configFile = join(dir, "alertmanager.yml");
    writeFileSync(configFile, renderAlertmanagerConfig(loopbackReceivers()));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("amtool check-config accepts the rendered config", () => {
    const r = run(tool("amtool"), ["check-config", configFile]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS/);
    assert.match(r.output, /- 8 receivers/);
    assert.match(r.output, /- 2 inhibit rules/);
  });

  for (const { severity, team, labels, want } of COMBINATIONS) {
    test(`routes severity=${severity} team=${team ?? "(none)"} to ${want.join(", ")}`, () => {
      const r = routeCheck(configFile, labels, want);
      assert.equal(r.status, 0, r.output);
    });
  }

  const routeMutations: { name: string; mutate: (c: AmConfig) => void }[] = [
    {
      name: "critical no longer continues past the pager",
      mutate: (c) => delete c.route.routes[0].continue,
    },
    {
      name: "a team route matches another team",
      mutate: (c) => (c.route.routes[2].matchers = ['team="dbx"']),
    },
    {
      name: "the critical sub-route of a team is gone",
      mutate: (c) => delete c.route.routes[1].routes,
    },
  ];
  for (const m of routeMutations) {
    test(`route mutation is caught: ${m.name}`, () => {
      const doc = parse(renderAlertmanagerConfig(loopbackReceivers())) as AmConfig;
      m.mutate(doc);
      const file = join(dir, "mutated.yml");
      writeFileSync(file, stringify(doc));
      const failing = COMBINATIONS.filter((c) => routeCheck(file, c.labels, c.want).status !== 0);
      assert.ok(failing.length > 0, "every routing check still passes");
    });
  }

  test("routes test fails for a wrong receiver (the check itself can fail)", () => {
    const r = run(tool("amtool"), [
      "config",
      "routes",
      "test",
      `--config.file=${configFile}`,
      "--verify.receivers=backend-warning",
      "severity=critical",
      "team=backend",
    ]);
    assert.notEqual(r.status, 0, r.output);
  });

  test("without secret endpoints (dev) the config is still valid and routes the same", () => {
    const minimal = loopbackReceivers();
    const file = join(dir, "minimal.yml");
    writeFileSync(
      file,
      renderAlertmanagerConfig({
        smtp: minimal.smtp,
        defaultEmail: minimal.defaultEmail,
        teams: minimal.teams,
      }),
    );
    assert.equal(run(tool("amtool"), ["check-config", file]).status, 0);
    const r = run(tool("amtool"), [
      "config",
      "routes",
      "test",
      `--config.file=${file}`,
      "--verify.receivers=pager,dba-critical",
      "severity=critical",
      "team=dba",
    ]);
    assert.equal(r.status, 0, r.output);
  });

  test("the rendered config embeds credentials and endpoints (so it is stored in a Secret)", () => {
    const settings = loopbackReceivers();
    const yaml = renderAlertmanagerConfig({
      ...settings,
      smtp: { ...settings.smtp, authUsername: "am", authPassword: "s3cr3t-pw" },
    });
    assert.ok(yaml.includes("s3cr3t-pw"));
    assert.ok(yaml.includes(settings.slackApiUrl!));
    assert.ok(yaml.includes(settings.pagerWebhookUrl!));
  });
});

describe("inhibition on a real Alertmanager", () => {
  const base = { namespace: "stock-analysis" };
  const alerts: Record<string, Record<string, string>> = {
    apiDown: {
      ...base,
      alertname: "ServiceDown",
      app: "stock-analysis-api",
      severity: "critical",
      team: "backend",
      pod: "api-1",
    },
    apiErrors: {
      ...base,
      alertname: "HighErrorRate",
      app: "stock-analysis-api",
      severity: "critical",
      team: "backend",
    },
    apiLatency: {
      ...base,
      alertname: "HighResponseTime",
      app: "stock-analysis-api",
      severity: "warning",
      team: "backend",
    },
    redisMemory: {
      ...base,
      alertname: "RedisMemoryHigh",
      app: "redis",
      pod: "redis-0",
      severity: "critical",
      team: "dba",
    },
    pgDown: {
      ...base,
      alertname: "PostgreSQLDown",
      app: "postgresql",
      pod: "postgresql-0",
      severity: "critical",
      team: "dba",
    },
    pgReplicaMissing: {
      ...base,
      alertname: "PostgreSQLReplicaMissing",
      app: "postgresql",
      severity: "critical",
      team: "dba",
    },
    pvcCritical: {
      ...base,
      alertname: "PVCFillingUp",
      persistentvolumeclaim: "data-postgresql-0",
      instance: "node-1",
      severity: "critical",
      team: "devops",
    },
    pvcWarning: {
      ...base,
      alertname: "PVCFillingUp",
      persistentvolumeclaim: "data-postgresql-0",
      instance: "node-1",
      severity: "warning",
      team: "devops",
    },
    otherPvcWarning: {
      ...base,
      alertname: "PVCFillingUp",
      persistentvolumeclaim: "data-redis-0",
      instance: "node-1",
      severity: "warning",
      team: "devops",
    },
    tlsWarning: {
      ...base,
      alertname: "TLSCertificateExpiring",
      host: "stock.example.com",
      severity: "warning",
      team: "devops",
    },
  };
  const expected: Record<string, "active" | "suppressed"> = {
    apiDown: "active",
    apiErrors: "suppressed", // symptom of the down service
    apiLatency: "suppressed",
    redisMemory: "active", // another app
    pgDown: "active",
    pgReplicaMissing: "suppressed",
    pvcCritical: "active",
    pvcWarning: "suppressed", // the critical of the same volume
    otherPvcWarning: "active", // another volume
    tlsWarning: "active", // no critical for it
  };

  /** Posts every alert to a fresh Alertmanager with `config` and reads back each one's state. */
  async function observe(config: string): Promise<Record<string, string>> {
    const am = await startAlertmanager(config);
    try {
      const startsAt = new Date().toISOString();
      const endsAt = new Date(Date.now() + 3600_000).toISOString();
      const post = await fetch(`${am.url}/api/v2/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(Object.values(alerts).map((labels) => ({ labels, startsAt, endsAt }))),
      });
      assert.equal(post.status, 200, await post.text());
      const stateOf = async () => {
        const res = await fetch(`${am.url}/api/v2/alerts`);
        const body = (await res.json()) as {
          labels: Record<string, string>;
          status: { state: string };
        }[];
        const states: Record<string, string> = {};
        for (const [k, labels] of Object.entries(alerts)) {
          const a = body.find(
            (x) => JSON.stringify(sorted(x.labels)) === JSON.stringify(sorted(labels)),
          );
          states[k] = a?.status.state ?? "missing";
        }
        return states;
      };
      // The inhibitor learns source alerts asynchronously: poll until two reads agree and
      // every alert is present, then a little longer for late inhibitions.
      let states = await stateOf();
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const next = await stateOf();
        const settled = JSON.stringify(next) === JSON.stringify(states);
        states = next;
        if (settled && !Object.values(states).includes("missing") && i >= 5) break;
      }
      return states;
    } finally {
      await am.stop();
    }
  }

  test("critical silences the matching warning; a down service silences its symptoms", async () => {
    assert.deepEqual(await observe(renderAlertmanagerConfig(loopbackReceivers())), expected);
  });

  test("inhibition mutations are caught (down rule dropped, severity rule too broad)", async () => {
    const doc = parse(renderAlertmanagerConfig(loopbackReceivers())) as AmConfig;
    doc.inhibit_rules = [{ ...doc.inhibit_rules[0], equal: ["alertname"] }];
    const states = await observe(stringify(doc));
    assert.deepEqual(
      Object.keys(expected)
        .filter((k) => states[k] !== expected[k])
        .sort(),
      ["apiErrors", "apiLatency", "otherPvcWarning", "pgReplicaMissing"],
    );
  });
});

function sorted(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => a.localeCompare(b));
}

describe("notification delivery from a real Alertmanager", () => {
  const received: { path: string; body: string }[] = [];
  let sink: Server;
  let am: Awaited<ReturnType<typeof startAlertmanager>> | undefined;
  before(async () => {
    sink = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        received.push({ path: req.url ?? "", body });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", () => r()));
    const port = (sink.address() as AddressInfo).port;
    am = await startAlertmanager(renderAlertmanagerConfig(loopbackReceivers(port)));
  });
  after(async () => {
    await am?.stop();
    await new Promise((r) => sink.close(r));
  });

  test("a critical dba alert pages, reaches the team's Slack channel and the webhook", async () => {
    const labels = {
      alertname: "PostgreSQLDown",
      severity: "critical",
      team: "dba",
      namespace: "stock-analysis",
      app: "postgresql",
    };
    const post = await fetch(`${am!.url}/api/v2/alerts`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify([
        { labels, annotations: { summary: "PostgreSQL postgresql-0 is down" } },
      ]),
    });
    assert.equal(post.status, 200);
    // Critical groups wait 10 s before the first notification.
    const deadline = Date.now() + 25_000;
    const paths = () => new Set(received.map((r) => r.path));
    while (Date.now() < deadline && !["/pager", "/slack", "/webhook"].every((p) => paths().has(p)))
      await new Promise((r) => setTimeout(r, 250));
    assert.deepEqual(
      [...paths()].sort(),
      ["/pager", "/slack", "/webhook"],
      am!.daemon.output().slice(-1500),
    );
    const pager = JSON.parse(received.find((r) => r.path === "/pager")!.body) as {
      receiver: string;
      alerts: { labels: Record<string, string> }[];
    };
    assert.equal(pager.receiver, "pager");
    assert.equal(pager.alerts[0].labels.alertname, "PostgreSQLDown");
    const webhook = JSON.parse(received.find((r) => r.path === "/webhook")!.body) as {
      receiver: string;
    };
    assert.equal(webhook.receiver, "dba-critical");
    const slack = JSON.parse(received.find((r) => r.path === "/slack")!.body) as {
      channel: string;
      attachments: { title: string; text: string }[];
    };
    assert.equal(slack.channel, "#dba-alerts");
    assert.match(slack.attachments[0].title, /\[FIRING:1\] PostgreSQLDown \(critical\)/);
    assert.match(slack.attachments[0].text, /PostgreSQL postgresql-0 is down/);
  });
});
