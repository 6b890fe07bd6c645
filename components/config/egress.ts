import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";

/** A parsed CIDR: address family, network address as a number, prefix length. */
export interface Cidr {
  family: 4 | 6;
  address: bigint;
  prefix: number;
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split(".").reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(ip: string): bigint {
  // An embedded IPv4 tail (`::ffff:10.0.0.1`) stands for the last two groups.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]);
    text = `${text.slice(0, v4.index)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array(8 - headGroups.length - tailGroups.length).fill("0");
  return [...headGroups, ...fill, ...tailGroups].reduce(
    (n, group) => (n << 16n) | BigInt(parseInt(group, 16)),
    0n,
  );
}

/** `203.0.113.0/24` or `2001:db8::/32` → parsed CIDR; undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const prefix = Number(m[2]);
  if (isIPv4(m[1]) && prefix <= 32) return { family: 4, address: ipv4ToBigInt(m[1]), prefix };
  if (isIPv6(m[1]) && !m[1].includes("%") && prefix <= 128)
    return { family: 6, address: ipv6ToBigInt(m[1]), prefix };
  return undefined;
}

const bitsOf = (c: Cidr) => (c.family === 4 ? 32 : 128);
const hostMask = (c: Cidr) => (1n << BigInt(bitsOf(c) - c.prefix)) - 1n;

/** True when the address has no bits set below the prefix (`10.0.0.0/8`, not `10.1.2.3/8`). */
export function isNetworkAddress(c: Cidr): boolean {
  return (c.address & hostMask(c)) === 0n;
}

/** True when `inner` is a strictly smaller block inside `outer` (what `ipBlock.except` requires). */
export function isStrictSubnet(inner: Cidr, outer: Cidr): boolean {
  if (inner.family !== outer.family || inner.prefix <= outer.prefix) return false;
  return (inner.address & ~hostMask(outer)) === (outer.address & ~hostMask(outer));
}

const cidrString = z.string().superRefine((v, ctx) => {
  const c = parseCidr(v);
  if (!c) {
    ctx.addIssue({
      code: "custom",
      message:
        'must be an IPv4 or IPv6 CIDR such as "203.0.113.0/24" or "2001:db8::/32" (a host is /32 or /128)',
    });
  } else if (!isNetworkAddress(c)) {
    ctx.addIssue({
      code: "custom",
      message: `has host bits set below /${c.prefix}: write the network address of the block`,
    });
  }
});

const portNumber = z
  .number({ message: "must be a port number" })
  .int({ message: "must be a whole port number" })
  .min(1, { message: "must be a port between 1 and 65535" })
  .max(65535, { message: "must be a port between 1 and 65535" });

export const egressPortSchema = z
  .strictObject({
    /** Destination port, or the first port of a range. */
    port: portNumber,
    /** Last port of a range (inclusive), e.g. `port: 8000, endPort: 8100`. Unset: `port` only. */
    endPort: portNumber.optional(),
    /** TCP (default), UDP or SCTP. */
    protocol: z.enum(["TCP", "UDP", "SCTP"]).default("TCP"),
  })
  .superRefine((p, ctx) => {
    if (p.endPort !== undefined && p.endPort < p.port) {
      ctx.addIssue({
        code: "custom",
        path: ["endPort"],
        message: `must be at least port (${p.port}): a range runs from port to endPort`,
      });
    }
  });

/**
 * One allowed destination outside the cluster: an IP block (optionally with holes) and the ports
 * on it. NetworkPolicy matches IPs, never host names: list the provider's published ranges, or
 * point the rule at an egress proxy that does the name-based filtering (docs/ARCHITECTURE.md).
 */
export const egressRuleSchema = z
  .strictObject({
    /** Destination block, e.g. `203.0.113.0/24` (IPv4 or IPv6, network address). */
    cidr: cidrString,
    /** Blocks inside `cidr` that stay denied, e.g. a private range inside `0.0.0.0/0`. */
    except: z.array(cidrString).default([]),
    /** Ports allowed on the block; at least one (an allow-list never opens every port). */
    ports: z
      .array(egressPortSchema)
      .min(1, { message: "must list at least one port, e.g. [{ port: 443 }]" }),
  })
  .superRefine((r, ctx) => {
    const outer = parseCidr(r.cidr);
    if (!outer) return;
    r.except.forEach((e, i) => {
      const inner = parseCidr(e);
      if (inner && !isStrictSubnet(inner, outer)) {
        ctx.addIssue({
          code: "custom",
          path: ["except", i],
          message: `must be a smaller block inside cidr (${r.cidr}) of the same address family`,
        });
      }
    });
  });
export type EgressRule = z.output<typeof egressRuleSchema>;

/**
 * Destinations outside the cluster a workload may connect to (market-data APIs, SMTP, …).
 * Default: none — the namespace's default-deny stands and only in-cluster peers and DNS are open.
 */
export const egressSchema = z.array(egressRuleSchema).default([]);
