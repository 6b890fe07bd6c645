// The pure Patroni config builder: timing rule, synchronous mode, no rendered secret, RBAC verbs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import {
  DEFAULT_TIMING,
  PatroniArgs,
  checkTiming,
  patroniConfig,
  patroniRbacRules,
} from "../../components/postgres/patroni";

const args = (over: Partial<PatroniArgs> = {}): PatroniArgs => ({
  scope: "postgresql",
  namespace: "stock-analysis",
  name: "postgresql-0",
  podIp: "10.0.0.5",
  dataDir: "/var/lib/postgresql/data/pgdata",
  binDir: "/usr/lib/postgresql/15/bin",
  pgpass: "/tmp/pgpass",
  superuser: "postgres",
  replicationUser: "replicator",
  labels: { "app.kubernetes.io/name": "postgresql" },
  synchronous: true,
  parameters: { max_connections: 200 },
  pgHba: [
    {
      type: "host",
      database: "replication",
      user: "replicator",
      address: "10.0.0.0/8",
      method: "scram-sha-256",
    },
  ],
  ...over,
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const rendered = (over: Partial<PatroniArgs> = {}): any => parse(patroniConfig(args(over)));

describe("patroniConfig", () => {
  test("default timing obeys loop_wait + 2 * retry_timeout <= ttl and is rendered", () => {
    checkTiming(DEFAULT_TIMING);
    const dcs = rendered().bootstrap.dcs;
    assert.deepEqual(
      [dcs.ttl, dcs.loop_wait, dcs.retry_timeout],
      [DEFAULT_TIMING.ttl, DEFAULT_TIMING.loopWait, DEFAULT_TIMING.retryTimeout],
    );
    assert.ok(dcs.loop_wait + 2 * dcs.retry_timeout <= dcs.ttl);
  });

  test("a timing that breaks the rule throws with the numbers", () => {
    assert.throws(
      () => patroniConfig(args({ timing: { ttl: 20, loopWait: 10, retryTimeout: 6 } })),
      /loop_wait \+ 2 \* retry_timeout must be <= ttl, got 10 \+ 2 \* 6 = 22 > ttl 20/,
    );
    assert.throws(() => checkTiming({ ttl: 0, loopWait: 1, retryTimeout: 1 }), /positive/);
    // The boundary is allowed.
    checkTiming({ ttl: 30, loopWait: 10, retryTimeout: 10 });
  });

  test("synchronous_mode follows the argument; never strict", () => {
    assert.equal(rendered({ synchronous: true }).bootstrap.dcs.synchronous_mode, true);
    assert.equal(rendered({ synchronous: false }).bootstrap.dcs.synchronous_mode, false);
    assert.equal(rendered().bootstrap.dcs.synchronous_mode_strict, false);
  });

  test("rewind, slots, parameters, pg_hba and the Kubernetes DCS settings", () => {
    const c = rendered({ pgPort: 5433, restApiPort: 8009, kubeContext: "sim" });
    assert.equal(c.bootstrap.dcs.postgresql.use_pg_rewind, true);
    assert.equal(c.bootstrap.dcs.postgresql.use_slots, true);
    assert.deepEqual(c.bootstrap.dcs.postgresql.parameters, { max_connections: 200 });
    assert.deepEqual(c.postgresql.pg_hba, ["host replication replicator 10.0.0.0/8 scram-sha-256"]);
    assert.deepEqual(c.postgresql.basebackup, [{ checkpoint: "fast" }]);
    assert.equal(c.postgresql.listen, "0.0.0.0:5433");
    assert.equal(c.postgresql.connect_address, "10.0.0.5:5433");
    assert.equal(c.restapi.connect_address, "10.0.0.5:8009");
    assert.equal(
      c.namespace,
      undefined,
      "a top-level namespace would override kubernetes.namespace",
    );
    assert.deepEqual(c.kubernetes, {
      namespace: "stock-analysis",
      labels: { "app.kubernetes.io/name": "postgresql" },
      scope_label: "cluster-name",
      role_label: "role",
      use_endpoints: false,
      pod_ip: "10.0.0.5",
      ports: [{ name: "postgresql", port: 5433 }],
      context: "sim",
    });
  });

  test("no password is rendered: only usernames, Patroni reads the env", () => {
    const text = patroniConfig(args());
    assert.doesNotMatch(text, /password/i);
    const auth = parse(text).postgresql.authentication;
    assert.deepEqual(auth, {
      superuser: { username: "postgres" },
      replication: { username: "replicator" },
    });
  });

  test("names must be DNS labels; pg_hba local lines take no address", () => {
    assert.throws(() => patroniConfig(args({ name: "Postgres_0" })), /name must be a DNS label/);
    assert.throws(
      () =>
        patroniConfig(
          args({
            pgHba: [
              {
                type: "local",
                database: "all",
                user: "all",
                address: "1.2.3.4/32",
                method: "peer",
              },
            ],
          }),
        ),
      /local entry takes no address/,
    );
    assert.throws(
      () =>
        patroniConfig(
          args({ pgHba: [{ type: "host", database: "all", user: "all", method: "peer" }] }),
        ),
      /needs an address/,
    );
  });
});

describe("patroniRbacRules", () => {
  test("exactly the verbs the ConfigMap DCS uses, nothing cluster-wide or destructive", () => {
    assert.deepEqual(patroniRbacRules(), [
      {
        apiGroups: [""],
        resources: ["configmaps"],
        verbs: ["create", "get", "list", "patch", "watch"],
      },
      { apiGroups: [""], resources: ["pods"], verbs: ["list", "patch", "watch"] },
    ]);
    const verbs = patroniRbacRules().flatMap((r) => r.verbs);
    for (const v of ["delete", "deletecollection", "update", "*"])
      assert.ok(!verbs.includes(v), `${v} granted`);
  });
});
