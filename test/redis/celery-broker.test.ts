/**
 * Celery's own transport (kombu, Python) against the Sentinel broker, configured only from the
 * Celery settings we generate (the `celery-broker` Secret's values, DNS names included): publishing
 * continues through a SIGKILL of the primary and every message sent after the kill is delivered.
 * Needs `pip install -r test/redis/requirements.txt` (KOMBU_PYTHON picks the interpreter).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { brokerConf, celeryBrokerSettings, sentinelConf } from "../../components/redis/content";
import { BrokerSet, Sandbox, TEST_PASSWORD, freePort, waitFor } from "../helpers/redis";

const PYTHON = process.env.KOMBU_PYTHON ?? "python3";
const PROBE = join(__dirname, "kombu_probe.py");
const SUBNET = 46;

function kombuAvailable(): boolean {
  try {
    execFileSync(PYTHON, ["-c", "import kombu, redis"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("celery's transport (kombu) through a sentinel failover", { timeout: 120000 }, () => {
  const available = kombuAvailable();
  const sb = new Sandbox("redis-kombu");
  let broker: BrokerSet;
  let env: Record<string, string>;

  before(async () => {
    if (!available) return;
    const hosts = [0, 1, 2].map((i) => `127.0.${SUBNET}.${10 + i}`);
    const port = await freePort(hosts);
    let sentinelPort = await freePort(hosts);
    while (sentinelPort === port) sentinelPort = await freePort(hosts);
    broker = new BrokerSet(
      sb,
      SUBNET,
      port,
      sentinelPort,
      brokerConf({ maxmemoryBytes: 64 * 1024 * 1024 }),
      sentinelConf({ masterName: "broker", downAfterMs: 1000, failoverTimeoutMs: 5000 }),
      3,
      true,
    );
    await broker.startAll();
    const settings = celeryBrokerSettings({
      password: TEST_PASSWORD,
      sentinels: broker.nodes.map((n) => ({ host: n.name, port: sentinelPort })),
      masterName: "broker",
    });
    env = {
      CELERY_BROKER_URL: settings.url,
      CELERY_BROKER_TRANSPORT_OPTIONS: JSON.stringify(settings.transportOptions),
    };
  });

  after(() => sb.cleanup());

  it("keeps publishing across the failover and delivers every message sent after it", async (t) => {
    if (!available) {
      t.skip(`${PYTHON} cannot import kombu/redis: pip install -r test/redis/requirements.txt`);
      return;
    }
    const total = 150;
    const primary = await broker.primaryIndex(0);
    const publisher = sb.spawnInNs(PYTHON, [PROBE, "publish", String(total)], env);
    let output = "";
    let lastSent = -1;
    let sentAtKill = -1;
    publisher.stdout!.on("data", (d) => {
      output += d;
      const m = [...String(output).matchAll(/^sent (\d+)$/gm)];
      if (m.length) lastSent = Number(m[m.length - 1][1]);
    });
    publisher.stderr!.on("data", (d) => (output += d));
    const exited = new Promise<number>((r) => publisher.once("exit", (code) => r(code ?? 1)));

    await waitFor("40 messages published", async () => lastSent >= 40, 30000, 20);
    sentAtKill = lastSent;
    await broker.kill(primary);
    assert.equal(await exited, 0, output);
    assert.equal(lastSent, total - 1, "every message was published");
    const newPrimary = await broker.primaryIndex(1);
    assert.notEqual(newPrimary, primary, "a replica was promoted");

    const drained = await new Promise<string>((resolve) => {
      const c = sb.spawnInNs(PYTHON, [PROBE, "drain"], env);
      let out = "";
      c.stdout!.on("data", (d) => (out += d));
      c.stderr!.on("data", (d) => (out += d));
      c.once("exit", () => resolve(out));
    });
    const received = new Set(drained.split("\n").filter((l) => /^\d+$/.test(l)));
    console.log(
      `kombu: ${received.size}/${total} delivered; killed the primary after message ${sentAtKill}`,
    );
    // Messages confirmed after the kill went to the promoted primary: none may be missing.
    for (let i = sentAtKill + 1; i < total; i++)
      assert.ok(received.has(String(i)), `message ${i} lost`);
  });
});
