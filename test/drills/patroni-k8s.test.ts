// Three real Patroni 3.0 members (test/helpers/patroni.ts) using the Kubernetes DCS against the
// simulated cluster's real API server, authenticated as a ServiceAccount bound to a Role of
// exactly patroniRbacRules(): leader election and role labels on the pod objects, synchronous
// replication, an unattended failover after the leader's Patroni and postmaster are SIGKILLed
// with no acknowledged commit lost, and the old leader rejoining as a replica.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { metricSource } from "../../components/monitoring/catalogue";
import { scriptPath } from "../../components/postgres/content";
import { after, before, describe, test } from "node:test";
import { kubectl } from "../../scripts/lib/sim-cluster";
import { PatroniCluster, isLeaderStatus } from "../helpers/patroni";
import { scrapeMetricNames } from "../helpers/monitoring-daemons";
import { freePort, waitFor } from "../helpers/postgres";

const execFileP = promisify(execFile);

let c: PatroniCluster;
let leader = -1;
const all = [0, 1, 2];

before(async () => {
  c = await PatroniCluster.start({ members: 3, synchronous: true });
});

after(async () => {
  await c?.stop();
});

describe("Patroni with the Kubernetes DCS on the simulated cluster", () => {
  test("one leader is elected and the pod objects get role labels", async () =>
    c.guard(async () => {
      // The members' identity really is limited to the Role (checked on the API server).
      const can = (verb: string, resource: string) =>
        kubectl(c.sim, [
          "auth",
          "can-i",
          verb,
          resource,
          "-n",
          c.namespace,
          "--as",
          c.serviceAccount,
        ]).code === 0;
      assert.ok(can("patch", "pods") && can("patch", "configmaps"));
      assert.ok(!can("delete", "configmaps") && !can("delete", "pods") && !can("get", "secrets"));
      leader = await c.waitLeader(all, 90_000);
      for (const i of all) if (i !== leader) await c.waitReplica(i, 90_000);
      assert.deepEqual(await c.leaders(), [leader], "exactly one leader");
      await waitFor(
        "role labels",
        async () => {
          const l = c.roleLabels();
          return all.every((i) => l[c.podName(i)] === (i === leader ? "master" : "replica"));
        },
        30_000,
        500,
      );
    })());

  test("synchronous replication is on and writes reach both replicas", async () =>
    c.guard(async () => {
      await waitFor(
        "synchronous_standby_names on the leader",
        async () => (await c.sql(leader, "show synchronous_standby_names")) !== "",
        60_000,
        500,
      );
      await c.sql(leader, "create table ha_probe (id int primary key, note text)");
      await c.sql(leader, "insert into ha_probe values (1, 'before failover')");
      for (const i of all)
        if (i !== leader)
          await waitFor(
            `row on replica ${i}`,
            async () =>
              (await c.sql(i, "select note from ha_probe where id = 1")) === "before failover",
            30_000,
            300,
          );
    })());

  test("SIGKILL of the leader's Patroni and postmaster: another member takes over unattended", async () =>
    c.guard(async () => {
      // Acknowledged under synchronous_mode right before the crash.
      await c.sql(leader, "insert into ha_probe values (2, 'acked before crash')");
      const old = leader;
      const t0 = Date.now();
      c.killPatroni(old);
      c.killPostmaster(old);
      const others = all.filter((i) => i !== old);
      leader = await c.waitLeader(others, (c.timing.ttl + 40) * 1000);
      const elected = (Date.now() - t0) / 1000;
      await waitFor(
        "the master label on the new leader",
        async () => c.roleLabels()[c.podName(leader)] === "master",
        30_000,
        250,
      );
      const labelled = (Date.now() - t0) / 1000;
      console.log(
        `patroni failover: ${c.podName(leader)} leader ${elected.toFixed(1)} s after the SIGKILL ` +
          `of ${c.podName(old)}, labelled ${labelled.toFixed(1)} s (ttl ${c.timing.ttl}, ` +
          `loop_wait ${c.timing.loopWait})`,
      );
      // Nobody patches a dead member's pod: its label stays `master` until its Patroni is back.
      console.log(`patroni failover: role labels now ${JSON.stringify(c.roleLabels())}`);
      assert.equal(
        await c.sql(leader, "select note from ha_probe where id = 2"),
        "acked before crash",
      );
      assert.equal(await c.sql(leader, "select pg_is_in_recovery()"), "f");
      assert.ok(isLeaderStatus(await c.status(leader)));
      await c.sql(leader, "insert into ha_probe values (3, 'after failover')");
    })());

  test("the old leader's Patroni restarts and rejoins as a replica of the new leader", async () =>
    c.guard(async () => {
      const old = all.find((i) => !c.running(i))!;
      c.startMember(old);
      await c.waitReplica(old, 90_000);
      await waitFor(
        "the old leader to replay the post-failover row",
        async () =>
          (await c.sql(old, "select note from ha_probe where id = 3")) === "after failover",
        60_000,
        500,
      );
      await waitFor(
        "the replica label on the old leader",
        async () => c.roleLabels()[c.podName(old)] === "replica",
        30_000,
        500,
      );
      // The Role of patroniRbacRules() was enough: the API server refused no call.
      for (const i of all)
        assert.doesNotMatch(
          fs.readFileSync(c.logFile(i), "utf8"),
          /Permission denied|Forbidden/,
          `member ${i} was refused an API call`,
        );
      const log = fs.readFileSync(c.logFile(old), "utf8");
      console.log(
        `patroni rejoin: pg_rewind ${/pg_rewind exit code=0/.test(log) ? "ran" : "was not needed"}`,
      );
    })());

  test("pg-dcs-config.sh replaces the dynamic configuration; members restart for pending parameters", async () =>
    c.guard(async () => {
      const lead = await c.waitLeader(all, 60_000);
      for (const i of all) if (i !== lead) await c.waitReplica(i, 90_000);
      const current = (await (await fetch(`${c.restUrl(lead)}/config`)).json()) as {
        postgresql: { parameters: Record<string, unknown> };
      };
      const wanted = structuredClone(current);
      // A decrease, the harder order: a replica keeps the primary's value from pg_controldata
      // until the leader has restarted with the new one (pg-dcs-config.sh's second pass).
      const target = Number(current.postgresql.parameters.max_connections) - 10;
      wanted.postgresql.parameters.max_connections = target;
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "dcs-")), "dcs.json");
      fs.writeFileSync(file, JSON.stringify(wanted));
      const r = await execFileP("bash", [scriptPath("pg-dcs-config.sh"), file], {
        env: {
          PATH: process.env.PATH,
          PATRONI_MEMBERS: all.map((i) => `${c.podName(i)}=${c.restUrl(i)}`).join(" "),
          PATRONI_RESTAPI_USERNAME: c.restUser,
          PATRONI_RESTAPI_PASSWORD: c.passwords.restapi,
          DCS_CONFIG_TIMEOUT: "120",
        },
        timeout: 300_000,
      });
      assert.match(r.stdout, /dynamic configuration applied/);
      const applied = (await (await fetch(`${c.restUrl(lead)}/config`)).json()) as typeof current;
      assert.equal(applied.postgresql.parameters.max_connections, target);
      // max_connections needs a restart: the script restarted every member that flagged one.
      for (const i of all)
        await waitFor(
          `max_connections ${target} on member ${i}`,
          async () => (await c.sql(i, "show max_connections")) === String(target),
          120_000,
          1000,
        );
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    })());

  test("Patroni's /liveness stays 200 on a hung postmaster; pg-liveness.sh catches it", async () =>
    c.guard(async () => {
      const lead = await c.waitLeader(all, 60_000);
      const replica = all.find((i) => i !== lead)!;
      await c.waitReplica(replica, 90_000);
      const pm = c.postmasterPid(replica)!;
      // The rendered livenessProbe, exec'd in the member's container as the kubelet does.
      const liveness = c.pod.container.livenessProbe?.exec?.command ?? [];
      assert.deepEqual(liveness, ["bash", `/scripts/pg-liveness.sh`]);
      const probe = () => c.exec(replica, liveness, { PG_LIVENESS_TIMEOUT: "2" });
      assert.equal((await probe()).code, 0, "healthy member passes");
      process.kill(pm, "SIGSTOP");
      try {
        assert.equal(await c.restCode(replica, "/liveness"), 200, "Patroni's own check passes");
        const r = await probe();
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /does not respond/);
      } finally {
        process.kill(pm, "SIGCONT");
      }
      await c.waitReplica(replica, 90_000);
    })());

  test("pg-roles.sh ran as post_bootstrap; the postgres-exporter sidecar, with its rendered env, scrapes the leader as the monitoring role", async () =>
    c.guard(async () => {
      const lead = await c.waitLeader(all, 60_000);
      for (const i of all) if (i !== lead) await c.waitReplica(i, 90_000);
      assert.equal(
        await c.sql(lead, "select datname from pg_database where datname = 'stock_analysis'"),
        "stock_analysis",
      );
      assert.equal(
        await c.sql(lead, "select pg_has_role('monitoring', 'pg_monitor', 'member')"),
        "t",
      );
      const sidecar = c.pod.containers.find((x) => x.name === "postgres-exporter");
      const uri = sidecar?.env?.find((e) => e.name === "DATA_SOURCE_URI")?.value ?? "";
      assert.match(uri, /^localhost:5432\//);
      const port = await freePort();
      // The image's entrypoint with its default listen address, Debian's build of the exporter;
      // loopback: the member's port instead of 5432, a free port instead of 9187.
      c.startSidecar(
        lead,
        "postgres-exporter",
        ["prometheus-postgres-exporter", `--web.listen-address=127.0.0.1:${port}`],
        { DATA_SOURCE_URI: uri.replace(/^localhost:5432\//, `localhost:${c.pgPorts[lead]}/`) },
      );
      const url = `http://127.0.0.1:${port}/metrics`;
      let text = "";
      await waitFor(
        "the exporter to see pg_up 1 and streaming replicas",
        async () => {
          text = await fetch(url)
            .then((r) => r.text())
            .catch(() => "");
          return /^pg_up 1$/m.test(text) && /state="streaming"/.test(text);
        },
        60_000,
        1000,
      );
      assert.match(text, /^pg_stat_replication_pg_wal_lsn_diff\{[^}]*state="streaming"[^}]*\} /m);
      const names = await scrapeMetricNames(url);
      assert.deepEqual(
        metricSource("postgres-exporter").metrics.filter((m) => !names.has(m)),
        [],
      );
    })());
});
