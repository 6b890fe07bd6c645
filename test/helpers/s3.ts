// A real S3 server on 127.0.0.1 for backup tests and benchmarks: versitygw (built by
// scripts/s3-sim/build.sh into .tools/bin) serving a temp directory through its posix backend,
// over HTTPS with a freshly generated CA and server certificate (pgBackRest speaks only HTTPS to
// S3). One bucket is created through the S3 API itself; stop() kills the server and removes the dir.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { freePort, waitFor } from "./postgres";

const execFileP = promisify(execFile);
const ROOT = path.resolve(__dirname, "../..");

/** Path of the versitygw binary; run `bash scripts/s3-sim/build.sh` (or setup.sh --tools) first. */
export function versitygwPath(): string {
  const bin = process.env.VERSITYGW_BIN ?? path.join(ROOT, ".tools/bin/versitygw");
  if (!fs.existsSync(bin))
    throw new Error(`${bin} missing: run bash scripts/s3-sim/build.sh (builds versitygw once)`);
  return bin;
}

export interface S3Server {
  /** Host name the certificate is issued to (`localhost`): use it as the S3 endpoint. */
  host: string;
  port: number;
  /** `host:port`, e.g. for pgBackRest's repo1-s3-endpoint + repo1-s3-port or an S3 client URL. */
  endpoint: string;
  /** `https://host:port`. */
  url: string;
  /** PEM of the CA that signed the server certificate (world-readable). */
  caFile: string;
  accessKey: string;
  secretKey: string;
  /** Bucket created at start. */
  bucket: string;
  region: string;
  /** The posix backend's root: `<dataDir>/<bucket>/<key>` holds each object's bytes. */
  dataDir: string;
  /** Creates another bucket through the S3 API. */
  createBucket(name: string): Promise<void>;
  /** Server output so far (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

export interface S3Options {
  /** Default `backups`. */
  bucket?: string;
  /** Default `us-east-1`. */
  region?: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await execFileP("openssl", args, { cwd, timeout: 60_000 });
}

/** A CA and a server certificate for localhost / 127.0.0.1 / ::1, valid one day. */
async function makeCerts(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ext = path.join(dir, "server.ext");
  fs.writeFileSync(
    ext,
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n" +
      "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1"].concat([
      "-subj",
      "/CN=stock-analysis test S3 CA",
    ]),
    dir,
  );
  await openssl(
    ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    dir,
  );
  await openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"].concat([
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "1",
      "-extfile",
      ext,
    ]),
    dir,
  );
  fs.chmodSync(path.join(dir, "ca.pem"), 0o644);
  return {
    ca: path.join(dir, "ca.pem"),
    cert: path.join(dir, "server.pem"),
    key: path.join(dir, "server.key"),
  };
}

/** Starts versitygw over a new temp dir with TLS on a random loopback port and one bucket. */
export async function startS3(o: S3Options = {}): Promise<S3Server> {
  const bin = versitygwPath();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "s3sim-"));
  // Readable by the postgres user (pgBackRest reads the CA file as postgres).
  fs.chmodSync(root, 0o755);
  const tls = path.join(root, "tls");
  const dataDir = path.join(root, "data");
  fs.mkdirSync(tls);
  fs.chmodSync(tls, 0o755);
  fs.mkdirSync(dataDir);
  const certs = await makeCerts(tls);
  const port = await freePort();
  const accessKey = `AK${crypto.randomBytes(8).toString("hex").toUpperCase()}`;
  const secretKey = crypto.randomBytes(24).toString("base64url");
  const region = o.region ?? "us-east-1";
  const host = "localhost";
  let out = "";
  const child: ChildProcess = spawn(
    bin,
    ["--port", `127.0.0.1:${port}`, "--cert", certs.cert, "--key", certs.key]
      .concat(["--region", region, "--quiet"])
      .concat(["posix", dataDir]),
    {
      // The root account's keys through the environment, not argv (visible in ps).
      env: { ...process.env, ROOT_ACCESS_KEY_ID: accessKey, ROOT_SECRET_ACCESS_KEY: secretKey },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const url = `https://${host}:${port}`;

  /** One signed S3 request with curl (SigV4); resolves with the HTTP status. */
  const s3Request = async (method: string, key: string): Promise<number> => {
    const { stdout } = await execFileP(
      "curl",
      ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", certs.ca, "-X", method].concat([
        // versitygw requires the payload hash header; here always the empty body's.
        "-H",
        `x-amz-content-sha256:${crypto.createHash("sha256").update("").digest("hex")}`,
        "--aws-sigv4",
        `aws:amz:${region}:s3`,
        "--user",
        `${accessKey}:${secretKey}`,
        "--connect-to",
        `${host}:${port}:127.0.0.1:${port}`,
        `${url}/${key}`,
      ]),
      { timeout: 30_000 },
    );
    return Number(stdout.trim());
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    }
    if (!process.env.KEEP_S3_TEMP) fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `versitygw on port ${port}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`versitygw exited: ${out}`);
        return (await s3Request("GET", "")) === 200;
      },
      30_000,
      200,
    );
    const createBucket = async (name: string) => {
      const code = await s3Request("PUT", name);
      if (code !== 200) throw new Error(`create bucket ${name}: HTTP ${code}: ${out}`);
    };
    const bucket = o.bucket ?? "backups";
    await createBucket(bucket);
    return {
      host,
      port,
      endpoint: `${host}:${port}`,
      url,
      caFile: certs.ca,
      accessKey,
      secretKey,
      bucket,
      region,
      dataDir,
      createBucket,
      logs: () => out,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
