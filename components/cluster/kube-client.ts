import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

/**
 * A read-only Kubernetes API client for the preflight: the program must ask the cluster what it
 * has before it registers a single resource, which the kubernetes provider cannot do.
 * Understands what kubeconfigs carry in practice: CA/cert/key as files or inline data, bearer
 * tokens (inline or file), `insecure-skip-tls-verify`, and exec credential plugins.
 */
export interface KubeReader {
  /** Which cluster this reads (for messages). */
  readonly server: string;
  /** GET an API path; null on 404, the parsed body on 2xx, an error otherwise. */
  get(apiPath: string): Promise<Record<string, unknown> | null>;
}

interface NamedEntry<T> {
  name: string;
  [key: string]: T | string;
}

interface KubeconfigFile {
  "current-context"?: string;
  contexts?: NamedEntry<{ cluster: string; user: string }>[];
  clusters?: NamedEntry<Record<string, unknown>>[];
  users?: NamedEntry<Record<string, unknown>>[];
}

export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeconfigError";
  }
}

/** The kubeconfig file kubectl would read: explicit path, else $KUBECONFIG's first, else ~/.kube/config. */
export function kubeconfigPath(explicit?: string): string {
  if (explicit) return explicit.replace(/^~(?=$|\/)/, os.homedir());
  const env = process.env.KUBECONFIG?.split(path.delimiter).find((p) => p.length > 0);
  return env ?? path.join(os.homedir(), ".kube", "config");
}

function entry<T>(list: NamedEntry<T>[] | undefined, name: string, key: string, file: string): T {
  const found = list?.find((e) => e.name === name);
  if (!found || typeof found[key] !== "object")
    throw new KubeconfigError(`${file}: no ${key} named "${name}"`);
  return found[key] as T;
}

function readMaybe(value: unknown, file: unknown, base: string): Buffer | undefined {
  if (typeof value === "string") return Buffer.from(value, "base64");
  if (typeof file === "string") return fs.readFileSync(path.resolve(base, file));
  return undefined;
}

interface Credentials {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecure: boolean;
}

function execCredential(spec: Record<string, unknown>): Partial<Credentials> {
  const command = String(spec.command);
  const args = Array.isArray(spec.args) ? spec.args.map(String) : [];
  const env = { ...process.env } as Record<string, string>;
  for (const e of (spec.env as { name: string; value: string }[] | undefined) ?? [])
    env[e.name] = e.value;
  const out = execFileSync(command, args, { env, encoding: "utf8", timeout: 30_000 });
  const status = (JSON.parse(out) as { status?: Record<string, string> }).status ?? {};
  return {
    token: status.token,
    cert: status.clientCertificateData ? Buffer.from(status.clientCertificateData) : undefined,
    key: status.clientKeyData ? Buffer.from(status.clientKeyData) : undefined,
  };
}

/** A reader for `context` (the file's current context when unset) of the given kubeconfig. */
export function kubeReader(opts: { kubeconfig?: string; context?: string }): KubeReader {
  const file = kubeconfigPath(opts.kubeconfig);
  if (!fs.existsSync(file)) throw new KubeconfigError(`kubeconfig ${file} does not exist`);
  const doc = (parseYaml(fs.readFileSync(file, "utf8")) ?? {}) as KubeconfigFile;
  const contextName = opts.context ?? doc["current-context"];
  if (!contextName) throw new KubeconfigError(`${file}: no context given and no current-context`);
  const ctx = entry(doc.contexts, contextName, "context", file);
  const cluster = entry(doc.clusters, ctx.cluster, "cluster", file);
  const user = entry(doc.users, ctx.user, "user", file);
  const base = path.dirname(file);
  const server = String(cluster.server ?? "");
  if (!server.startsWith("https://"))
    throw new KubeconfigError(`${file}: cluster "${ctx.cluster}" has no https server`);
  const creds: Credentials = {
    ca: readMaybe(cluster["certificate-authority-data"], cluster["certificate-authority"], base),
    cert: readMaybe(user["client-certificate-data"], user["client-certificate"], base),
    key: readMaybe(user["client-key-data"], user["client-key"], base),
    token:
      typeof user.token === "string"
        ? user.token
        : typeof user.tokenFile === "string"
          ? fs.readFileSync(path.resolve(base, user.tokenFile), "utf8").trim()
          : undefined,
    insecure: cluster["insecure-skip-tls-verify"] === true,
  };
  let execDone = false;
  const agent = () => {
    if (!execDone && user.exec && typeof user.exec === "object") {
      Object.assign(creds, execCredential(user.exec as Record<string, unknown>));
      execDone = true;
    }
    return new https.Agent({
      ca: creds.ca,
      cert: creds.cert,
      key: creds.key,
      rejectUnauthorized: !creds.insecure,
    });
  };
  return {
    server,
    get(apiPath: string) {
      const url = new URL(apiPath, server);
      return new Promise((resolve, reject) => {
        const req = https.get(
          url,
          {
            agent: agent(),
            headers: {
              Accept: "application/json",
              ...(creds.token ? { Authorization: `Bearer ${creds.token}` } : {}),
            },
            timeout: 15_000,
          },
          (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (body += d));
            res.on("end", () => {
              const code = res.statusCode ?? 0;
              if (code === 404) resolve(null);
              else if (code >= 200 && code < 300)
                resolve(JSON.parse(body) as Record<string, unknown>);
              else reject(new Error(`GET ${url.pathname}: HTTP ${code} ${body.slice(0, 200)}`));
            });
          },
        );
        req.on("timeout", () => req.destroy(new Error(`GET ${url.pathname}: timed out`)));
        req.on("error", reject);
      });
    },
  };
}
