// scripts/pg-failover (the operator's wrapper over patronictl) against a fake kubectl whose
// `exec ... patronictl` keeps a leader in a state file and prints patronictl 3.0's `list` table.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "../..");
let work: string;

const FAKE_KUBECTL = `#!/usr/bin/env bash
# Fake kubectl: one line per call in $FAKE_LOG; the leader's ordinal in $FAKE_STATE/leader.
set -euo pipefail
echo "$*" >>"$FAKE_LOG"
[ "$1" = --context ] && shift 2
# kube-target.sh asks for the context's API server first.
[ "$1 $2" = "config view" ] && { echo "https://127.0.0.1:6443"; exit 0; }
[ "$1" = -n ] && shift 2
case "$1 $2" in
  "get statefulset") printf '%s' "$FAKE_MEMBERS" ;;
  exec*)
    pod="$2"
    [[ " \${FAKE_DOWN_PODS:-} " == *" $pod "* ]] && { echo "error: unable to upgrade connection" >&2; exit 1; }
    shift 4 # exec <pod> -c <container>
    [ "$1" = -- ] && shift
    [ "$1 $2" = "patronictl -c" ] || { echo "fake: not patronictl: $*" >&2; exit 3; }
    shift 3
    case "$1" in
      list)
        leader=$(cat "$FAKE_STATE/leader")
        echo "+ Cluster: pg -+-----------------+---------+---------+----+-----------+"
        echo "| Member       | Host            | Role    | State   | TL | Lag in MB |"
        echo "+--------------+-----------------+---------+---------+----+-----------+"
        for ((i = 0; i < FAKE_MEMBERS; i++)); do
          if [ "$i" = "$leader" ]; then role="Leader "; lag="  "; else role="Replica"; lag=" 0"; fi
          echo "| postgresql-$i | 10.0.0.$i:5432   | $role | running |  2 |        $lag |"
        done
        echo "+--------------+-----------------+---------+---------+----+-----------+" ;;
      switchover | failover)
        [ "$2 $4" = "--candidate --force" ] || { echo "fake: bad args $*" >&2; exit 3; }
        [ -z "\${FAKE_REFUSE:-}" ] || { echo "Error: candidate name does not match with sync_standby" >&2; exit 1; }
        [ -n "\${FAKE_STUCK:-}" ] || echo "\${3##*-}" >"$FAKE_STATE/leader"
        echo "Successfully \${1}ed over to \\"$3\\"" ;;
      *) echo "fake: unexpected patronictl $*" >&2; exit 3 ;;
    esac ;;
  *) echo "fake kubectl: unexpected $*" >&2; exit 3 ;;
esac
`;

function run(
  args: string[],
  env: Record<string, string>,
  leader = 0,
): Promise<{ code: number; stdout: string; stderr: string; calls: string[]; leader: string }> {
  const log = path.join(work, "calls.log");
  fs.writeFileSync(log, "");
  fs.writeFileSync(path.join(work, "leader"), `${leader}\n`);
  return new Promise((resolve) => {
    const p = spawn("bash", [path.join(ROOT, "scripts/pg-failover"), ...args], {
      env: {
        PATH: process.env.PATH,
        KUBECTL: path.join(work, "kubectl"),
        FAKE_LOG: log,
        FAKE_STATE: work,
        FAKE_MEMBERS: "3",
        PG_FAILOVER_WAIT: "2",
        ...env,
      },
      timeout: 30_000,
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (code) =>
      resolve({
        code: code ?? -1,
        stdout,
        stderr,
        // The target's context prefixes every call (scripts/lib/kube-target.sh); drop it and the
        // API-server lookup, which test/unit/kube-target.test.ts covers.
        calls: fs
          .readFileSync(log, "utf8")
          .trim()
          .split("\n")
          .filter((c) => c && !c.includes("config view"))
          .map((c) => c.replace(/^--context \S+ /, "")),
        leader: fs.readFileSync(path.join(work, "leader"), "utf8").trim(),
      }),
    );
  });
}

const ctl = (pod: number, args: string) =>
  `-n stock-analysis exec postgresql-${pod} -c postgresql -- patronictl -c /etc/patroni/patroni.yml ${args}`;
const CONFIG_LINE = /^ {2}pulumi config set --path postgres\.primary (\d+)( --stack \w+)?$/m;

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "pg-failover-"));
  fs.writeFileSync(path.join(work, "kubectl"), FAKE_KUBECTL, { mode: 0o755 });
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

describe("scripts/pg-failover (patronictl wrapper)", () => {
  it("switchover: patronictl in the target pod, waits until it leads, prints the config line", async () => {
    const r = await run(["switchover", "1", "--stack", "prod", "--yes"], {});
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.calls[0],
      "-n stock-analysis get statefulset postgresql -o jsonpath={.spec.replicas}",
    );
    assert.equal(r.calls[1], ctl(1, "switchover --candidate postgresql-1 --force"));
    assert.ok(
      r.calls.slice(2).every((c) => c === ctl(1, "list")),
      r.calls.join("\n"),
    );
    assert.equal(r.leader, "1");
    assert.match(r.stdout, /\| postgresql-1 \| .* \| Leader /);
    const line = CONFIG_LINE.exec(r.stdout);
    assert.deepEqual([line?.[1], line?.[2]], ["1", " --stack prod"]);
  });

  it("a bare ordinal is a switchover; an unreachable target pod: patronictl runs in the next member", async () => {
    const r = await run(["2", "--stack", "dev"], { FAKE_DOWN_PODS: "postgresql-2" });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.calls[1],
      "-n stock-analysis exec postgresql-2 -c postgresql -- patronictl -c /etc/patroni/patroni.yml switchover --candidate postgresql-2 --force",
    );
    assert.equal(r.calls[2], ctl(0, "switchover --candidate postgresql-2 --force"));
    assert.match(r.stderr, /patronictl in postgresql-2 failed; trying the next member/);
    assert.equal(CONFIG_LINE.exec(r.stdout)?.[1], "2");
    assert.equal(CONFIG_LINE.exec(r.stdout)?.[2], " --stack dev");
  });

  it("failover passes through to patronictl failover", async () => {
    const r = await run(["failover", "2", "--stack", "dev"], {});
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.calls[1], ctl(2, "failover --candidate postgresql-2 --force"));
    assert.equal(CONFIG_LINE.exec(r.stdout)?.[1], "2");
  });

  it("patronictl refusing: its error, no config line, non-zero exit", async () => {
    const r = await run(["switchover", "1", "--stack", "dev"], { FAKE_REFUSE: "1" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /does not match with sync_standby/);
    assert.doesNotMatch(r.stdout, CONFIG_LINE);
    assert.equal(r.leader, "0");
  });

  it("accepted but the target never leads: says who does, no config line", async () => {
    const r = await run(["switchover", "1", "--stack", "dev"], { FAKE_STUCK: "1" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /postgresql-1 does not lead \(postgresql-0 does\)/);
    assert.doesNotMatch(r.stdout, CONFIG_LINE);
  });

  it("list: the members and the config line matching the current leader (after an automatic failover)", async () => {
    const r = await run(["list", "--stack", "prod"], {}, 2);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls.slice(1), [ctl(0, "list"), ctl(0, "list")]);
    assert.equal(CONFIG_LINE.exec(r.stdout)?.[1], "2");
    assert.ok(!r.calls.some((c) => /switchover|failover/.test(c)));
  });

  it("rejects an ordinal outside the StatefulSet and bad usage, touching nothing", async () => {
    for (const args of [["3"], ["switchover", "5"]]) {
      const r = await run([...args, "--stack", "dev"], {});
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /has 3 members; no ordinal/);
      assert.ok(!r.calls.some((c) => c.includes("exec")));
    }
    for (const args of [
      [],
      ["promote", "1"],
      ["switchover"],
      ["switchover", "x"],
      ["list", "extra"],
    ]) {
      const r = await run(args, {});
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /^usage: /);
      assert.deepEqual(r.calls, []);
    }
  });
});
