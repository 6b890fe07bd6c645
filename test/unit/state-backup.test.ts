/**
 * scripts/state-backup and scripts/state-restore with a fake `pulumi` on PATH (the real CLI cannot
 * run here) that keeps stacks as files and records every call; the encryption is real openssl.
 * A round trip brings every stack's export back byte for byte into an empty backend, with the
 * passphrase salt its secrets were encrypted under.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "../..");
let work: string;
let bin: string;

// Stacks live in $FAKE_STORE/<name>.json (the deployment as `stack export` prints it).
const FAKE_PULUMI = `#!/usr/bin/env bash
set -euo pipefail
echo "$* | backend=$PULUMI_BACKEND_URL" >>"$FAKE_LOG"
[ "$1" = --non-interactive ] && shift
opt() { local want=$1; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
mkdir -p "$FAKE_STORE"
case "$1 \${2:-}" in
  "version ") echo v3.270.0 ;;
  "stack ls")
    printf '['; sep=""
    for f in "$FAKE_STORE"/*.json; do [ -e "$f" ] || continue; n=$(basename "$f" .json); printf '%s{"name":"%s"}' "$sep" "$n"; sep=,; done
    echo ']' ;;
  "stack export") cp "$FAKE_STORE/$(opt --stack "$@").json" "$(opt --file "$@")" ;;
  "stack init")
    s=$3
    [ -e "$FAKE_STORE/$s.json" ] && { echo "error: stack '$s' already exists" >&2; exit 255; }
    cp "$(opt --cwd "$@")/Pulumi.$s.yaml" "$FAKE_STORE/$s.init-config.yaml"
    echo '{"version":3,"deployment":{}}' >"$FAKE_STORE/$s.json" ;;
  "stack import")
    [ -n "\${PULUMI_CONFIG_PASSPHRASE:-}\${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] || { echo "error: passphrase" >&2; exit 255; }
    cp "$(opt --file "$@")" "$FAKE_STORE/$(opt --stack "$@").json" ;;
  *) echo "fake pulumi: unexpected $*" >&2; exit 3 ;;
esac
`;

function deployment(stack: string): string {
  return JSON.stringify({
    version: 3,
    deployment: {
      manifest: { time: "2026-12-01T00:00:00Z", version: "v3.270.0" },
      secrets_providers: { type: "passphrase", state: { salt: `v1:${stack}SALT:v1:abc:def` } },
      resources: [
        {
          urn: `urn:pulumi:${stack}::stock-analysis::pulumi:providers:kubernetes::cluster-k8s`,
          type: "pulumi:providers:kubernetes",
          outputs: {
            password: {
              "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
              ciphertext: `v1:${stack}:CIPHERTEXT-MARKER`,
            },
          },
        },
      ],
    },
  });
}

interface Env {
  store: string;
  backend: string;
  log: string;
}

function newBackend(name: string, stacks: string[]): Env {
  const backend = path.join(work, name);
  const store = path.join(backend, ".fake-store");
  fs.mkdirSync(store, { recursive: true });
  for (const s of stacks) fs.writeFileSync(path.join(store, `${s}.json`), deployment(s));
  const log = path.join(backend, "calls.log");
  fs.writeFileSync(log, "");
  return { store, backend, log };
}

function run(script: string, args: string[], env: Env, extra: Record<string, string> = {}) {
  const r = spawnSync("bash", [path.join(ROOT, script), ...args], {
    encoding: "utf8",
    timeout: 120_000,
    env: {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: work,
      PULUMI_TOOLS_DIR: path.join(work, "no-tools"), // never the repo's installed CLI
      PULUMI_BACKEND_URL: `file://${env.backend}`,
      FAKE_STORE: env.store,
      FAKE_LOG: env.log,
      STATE_BACKUP_KEY_FILE: path.join(work, "backup.key"),
      ...extra,
    },
  });
  const calls = fs.readFileSync(env.log, "utf8").trim().split("\n").filter(Boolean);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, calls };
}

const archives = (dir: string) =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".tar.gz.enc"))
        .sort()
    : [];

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "state-backup-"));
  bin = path.join(work, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "pulumi"), FAKE_PULUMI, { mode: 0o755 });
  fs.writeFileSync(path.join(work, "backup.key"), "correct horse battery staple 2026\n");
  fs.writeFileSync(path.join(work, "wrong.key"), "a different key of enough length\n");
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe("scripts/state-backup and scripts/state-restore", () => {
  it("round trip: every stack's export comes back into an empty backend with its salt", () => {
    const src = newBackend("src", ["dev", "prod"]);
    fs.mkdirSync(path.join(src.backend, "config"));
    fs.writeFileSync(
      path.join(src.backend, "config/Pulumi.prod.yaml"),
      "encryptionsalt: v1:prodSALT:v1:abc:def\nconfig: {}\n",
    );
    const out = path.join(work, "backups-rt");
    const b = run("scripts/state-backup", ["--out", out], src);
    assert.equal(b.code, 0, b.stderr);
    const [archive] = archives(out);
    assert.match(archive, /^state-\d{8}T\d{6}Z\.tar\.gz\.enc$/);
    assert.match(b.stdout, /stacks: dev prod/);
    // Exports without --show-secrets: secret values stay encrypted by the stack's provider.
    assert.ok(b.calls.some((c) => /stack export --stack prod --file /.test(c)));
    assert.ok(!b.calls.some((c) => c.includes("--show-secrets")));
    // Encrypted: nothing of the state is readable in the file, which is openssl's salted format.
    const bytes = fs.readFileSync(path.join(out, archive));
    assert.equal(bytes.subarray(0, 8).toString(), "Salted__");
    assert.ok(!bytes.includes("CIPHERTEXT-MARKER") && !bytes.includes("cluster-k8s"));
    assert.equal(
      fs.statSync(path.join(out, archive)).mode & 0o077,
      0,
      "archive readable by others",
    );

    const list = run("scripts/state-restore", [path.join(out, archive), "--list"], src);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^backend: file://${src.backend}$`, "m"));
    assert.match(list.stdout, /^stacks: dev prod$/m);
    assert.match(list.stdout, /^secrets-provider prod: passphrase$/m);
    assert.match(list.stdout, /^pulumi: v3\.270\.0$/m);

    const dst = newBackend("dst", []);
    const r = run("scripts/state-restore", [path.join(out, archive)], dst, {
      PULUMI_CONFIG_PASSPHRASE: "the stacks' passphrase",
    });
    assert.equal(r.code, 0, r.stderr);
    for (const s of ["dev", "prod"]) {
      assert.equal(
        fs.readFileSync(path.join(dst.store, `${s}.json`), "utf8"),
        fs.readFileSync(path.join(src.store, `${s}.json`), "utf8"),
      );
      // stack init saw the export's salt, so the old secrets decrypt with the old passphrase.
      const initConfig = fs.readFileSync(path.join(dst.store, `${s}.init-config.yaml`), "utf8");
      assert.match(initConfig, new RegExp(`^encryptionsalt: v1:${s}SALT:v1:abc:def\\n`));
      assert.equal(initConfig.match(/encryptionsalt/g)!.length, 1);
      // The tracked stack config rides along (prod's has the cluster context).
      if (s === "prod") assert.match(initConfig, /context: stock-analysis-prod/);
      assert.equal(
        fs.readFileSync(path.join(dst.backend, `config/Pulumi.${s}.yaml`), "utf8"),
        initConfig,
      );
      const init = r.calls.findIndex((c) => c.startsWith(`--non-interactive stack init ${s} `));
      const imp = r.calls.findIndex((c) =>
        c.startsWith(`--non-interactive stack import --stack ${s} `),
      );
      assert.ok(init >= 0 && imp > init, r.calls.join("\n"));
      assert.match(r.calls[init], /--secrets-provider passphrase/);
    }
  });

  it("a wrong key, a damaged archive, a missing passphrase or an existing stack: exit 2, nothing imported", () => {
    const src = newBackend("src2", ["prod"]);
    const out = path.join(work, "backups-bad");
    assert.equal(run("scripts/state-backup", ["--out", out], src).code, 0);
    const archive = path.join(out, archives(out)[0]);
    const dst = newBackend("dst2", []);
    const pass = { PULUMI_CONFIG_PASSPHRASE: "p" };

    const wrong = run("scripts/state-restore", [archive], dst, {
      ...pass,
      STATE_BACKUP_KEY_FILE: path.join(work, "wrong.key"),
    });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /cannot decrypt .*wrong backup key or a damaged archive\n$/);

    const damaged = path.join(work, "damaged.tar.gz.enc");
    const bytes = fs.readFileSync(archive);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(damaged, bytes);
    const dmg = run("scripts/state-restore", [damaged], dst, pass);
    assert.equal(dmg.code, 2);
    assert.match(dmg.stderr, /damaged/);

    const nopass = run("scripts/state-restore", [archive], dst);
    assert.equal(nopass.code, 2);
    assert.match(nopass.stderr, /passphrase provider: set PULUMI_CONFIG_PASSPHRASE_FILE/);

    const exists = newBackend("dst3", ["prod"]);
    const ex = run("scripts/state-restore", [archive], exists, pass);
    assert.equal(ex.code, 2);
    assert.match(ex.stderr, /stack prod already exists/);
    for (const r of [wrong, dmg, nopass, ex])
      assert.ok(!r.calls.some((c) => / stack (init|import) /.test(c)), r.calls.join("\n"));
    assert.equal(fs.readFileSync(path.join(exists.store, "prod.json"), "utf8"), deployment("prod"));
  });

  it("keeps the newest --keep archives; needs a key of 20+ characters and never takes it as an argument", () => {
    const src = newBackend("src3", ["dev"]);
    const out = path.join(work, "backups-keep");
    fs.mkdirSync(out);
    for (const old of [
      "state-20250101T000000Z",
      "state-20250201T000000Z",
      "state-20250301T000000Z",
    ])
      fs.writeFileSync(path.join(out, `${old}.tar.gz.enc`), "old");
    fs.writeFileSync(path.join(out, "unrelated.txt"), "kept");
    const b = run("scripts/state-backup", ["--out", out, "--keep", "2", "--stack", "dev"], src);
    assert.equal(b.code, 0, b.stderr);
    const kept = archives(out);
    assert.equal(kept.length, 2);
    assert.equal(kept[0], "state-20250301T000000Z.tar.gz.enc");
    assert.ok(fs.existsSync(path.join(out, "unrelated.txt")));
    assert.match(b.stdout, /pruned state-20250201T000000Z\.tar\.gz\.enc/);
    assert.ok(!b.calls.some((c) => c.includes("stack ls")), "--stack given: no listing");

    const nokey = run("scripts/state-backup", ["--out", out], src, { STATE_BACKUP_KEY_FILE: "" });
    assert.equal(nokey.code, 2);
    assert.equal(
      nokey.stderr,
      "state-backup: no backup key: set STATE_BACKUP_KEY_FILE (or STATE_BACKUP_KEY)\n",
    );
    const short = run("scripts/state-backup", ["--out", out], src, {
      STATE_BACKUP_KEY_FILE: "",
      STATE_BACKUP_KEY: "too short",
    });
    assert.equal(short.code, 2);
    assert.match(short.stderr, /shorter than 20 characters/);
    assert.equal(archives(out).length, 2);
  });
});
