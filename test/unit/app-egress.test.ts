/** The egress allow-list: validated config, rendered into the API's and Celery's NetworkPolicies. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../components/config/load";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const load = (celery: unknown) =>
  loadConfig({ "stock-analysis:celery": JSON.stringify(celery) }, []);

/** Loading fails with one problem naming `key` and matching `rule`. */
function rejects(egress: unknown, key: string, rule: RegExp) {
  try {
    load({ egress });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.problems.length, 1, e.message);
    assert.ok(e.problems[0].startsWith(`stock-analysis:celery.egress${key} = `), e.problems[0]);
    assert.match(e.problems[0], rule);
    return;
  }
  assert.fail(`egress ${JSON.stringify(egress)} was accepted`);
}

describe("egress allow-list config", () => {
  it("defaults to none (default-deny stands)", () => {
    assert.deepEqual(load({}).celery.egress, []);
    assert.deepEqual(loadConfig({}, []).api.egress, []);
  });
  it("accepts IPv4 and IPv6 blocks with holes, ports, ranges and protocols", () => {
    const c = load({
      egress: [
        { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "192.168.0.0/16"], ports: [{ port: 443 }] },
        { cidr: "2001:db8::/32", except: ["2001:db8:ff::/48"], ports: [{ port: 443 }] },
        { cidr: "198.51.100.7/32", ports: [{ port: 7000, endPort: 7010, protocol: "UDP" }] },
      ],
    });
    assert.equal(c.celery.egress[0].ports[0].protocol, "TCP");
    assert.deepEqual(c.celery.egress[2].ports[0], { port: 7000, endPort: 7010, protocol: "UDP" });
  });
  it("rejects a host name or malformed CIDR", () => {
    rejects(
      [{ cidr: "api.marketdata.example", ports: [{ port: 443 }] }],
      ".0.cidr",
      /IPv4 or IPv6 CIDR/,
    );
    rejects([{ cidr: "10.0.0.0/33", ports: [{ port: 443 }] }], ".0.cidr", /IPv4 or IPv6 CIDR/);
    rejects([{ cidr: "10.0.0.0", ports: [{ port: 443 }] }], ".0.cidr", /IPv4 or IPv6 CIDR/);
  });
  it("rejects host bits below the prefix", () =>
    rejects(
      [{ cidr: "203.0.113.9/24", ports: [{ port: 443 }] }],
      ".0.cidr",
      /host bits set below \/24/,
    ));
  it("rejects an except outside the block, as wide as it, or of the other family", () => {
    const rule = /smaller block inside cidr \(10\.0\.0\.0\/8\)/;
    rejects(
      [{ cidr: "10.0.0.0/8", except: ["192.168.0.0/16"], ports: [{ port: 443 }] }],
      ".0.except.0",
      rule,
    );
    rejects(
      [{ cidr: "10.0.0.0/8", except: ["10.0.0.0/8"], ports: [{ port: 443 }] }],
      ".0.except.0",
      rule,
    );
    rejects(
      [{ cidr: "10.0.0.0/8", except: ["::/64"], ports: [{ port: 443 }] }],
      ".0.except.0",
      rule,
    );
  });
  it("rejects ports out of range, reversed ranges, unknown protocols and an empty port list", () => {
    rejects(
      [{ cidr: "10.0.0.0/8", ports: [{ port: 0 }] }],
      ".0.ports.0.port",
      /between 1 and 65535/,
    );
    rejects(
      [{ cidr: "10.0.0.0/8", ports: [{ port: 70000 }] }],
      ".0.ports.0.port",
      /between 1 and 65535/,
    );
    rejects(
      [{ cidr: "10.0.0.0/8", ports: [{ port: 9000, endPort: 8000 }] }],
      ".0.ports.0.endPort",
      /at least port \(9000\)/,
    );
    rejects(
      [{ cidr: "10.0.0.0/8", ports: [{ port: 443, protocol: "ICMP" }] }],
      ".0.ports.0.protocol",
      /TCP|UDP|SCTP/,
    );
    rejects([{ cidr: "10.0.0.0/8", ports: [] }], ".0.ports", /at least one port/);
  });
});

describe("egress allow-list in the rendered NetworkPolicies", () => {
  const marketData = [
    { cidr: "203.0.113.0/24", ports: [{ port: 443 }] },
    {
      cidr: "0.0.0.0/0",
      except: ["10.0.0.0/8"],
      ports: [{ port: 5000, endPort: 5010, protocol: "UDP" }],
    },
  ];
  let plain: RenderResult;
  let opened: RenderResult;
  before(async () => {
    [plain, opened] = await Promise.all([
      render("dev"),
      render("dev", {
        api: { egress: [marketData[0]] },
        celery: { egress: marketData },
      }),
    ]);
  });
  const egressOf = (r: RenderResult, name: string): Any[] =>
    (find(r.objects, "NetworkPolicy", `${name}-allow`) as Any).spec.egress ?? [];
  const ipRules = (r: RenderResult, name: string) =>
    egressOf(r, name).filter((e) => e.to.some((p: Any) => p.ipBlock));

  it("renders no ipBlock by default: API and Celery reach only in-cluster peers", () => {
    for (const name of ["stock-analysis-api", "stock-analysis-celery", "stock-analysis-frontend"]) {
      assert.deepEqual(ipRules(plain, name), [], name);
      assert.ok(
        egressOf(plain, name).every((e) =>
          e.to.every((p: Any) => p.podSelector || p.namespaceSelector),
        ),
      );
    }
  });
  it("adds one rule per block, with its holes and only its ports, next to the data stores", () => {
    assert.deepEqual(ipRules(opened, "stock-analysis-celery"), [
      { to: [{ ipBlock: { cidr: "203.0.113.0/24" } }], ports: [{ protocol: "TCP", port: 443 }] },
      {
        to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }],
        ports: [{ protocol: "UDP", port: 5000, endPort: 5010 }],
      },
    ]);
    assert.deepEqual(ipRules(opened, "stock-analysis-api"), [
      { to: [{ ipBlock: { cidr: "203.0.113.0/24" } }], ports: [{ protocol: "TCP", port: 443 }] },
    ]);
    // The in-cluster allows stay as they were.
    for (const name of ["stock-analysis-api", "stock-analysis-celery"]) {
      const inCluster = egressOf(opened, name).filter((e) => !e.to.some((p: Any) => p.ipBlock));
      assert.deepEqual(inCluster, egressOf(plain, name), name);
    }
    assert.deepEqual(ipRules(opened, "stock-analysis-frontend"), []);
  });
});

describe("prod's egress allow-list (Pulumi.prod.yaml)", () => {
  let prod: RenderResult;
  before(async () => {
    prod = await render("prod");
  });
  const ipRules = (name: string): Any[] =>
    ((find(prod.objects, "NetworkPolicy", `${name}-allow`) as Any).spec.egress ?? []).filter(
      (e: Any) => e.to.some((p: Any) => p.ipBlock),
    );

  it("API and Celery may reach public HTTPS only: no private, CGNAT or metadata address, no other port", () => {
    for (const name of ["stock-analysis-api", "stock-analysis-celery"]) {
      const rules = ipRules(name);
      assert.ok(rules.length >= 1, `${name}: prod lists no egress: market data cannot be fetched`);
      for (const r of rules) {
        for (const p of r.to) {
          if (p.ipBlock.cidr !== "0.0.0.0/0") continue;
          // An address-wide rule must keep internal and link-local space closed…
          for (const closed of [
            "10.0.0.0/8",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.168.0.0/16",
          ])
            assert.ok(p.ipBlock.except?.includes(closed), `${name}: ${closed} not excepted`);
          // …and open HTTPS alone.
          assert.deepEqual(r.ports, [{ protocol: "TCP", port: 443 }], name);
        }
      }
    }
    assert.deepEqual(ipRules("stock-analysis-frontend"), [], "the frontend fetches nothing");
  });
});
