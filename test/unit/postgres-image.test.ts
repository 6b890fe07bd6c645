// The member image's Dockerfile pins the same base and package versions the real-process tests
// run here: what the HA and backup tests prove is what the image ships.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";

const dockerfile = fs.readFileSync(
  path.resolve(__dirname, "../../components/postgres/image/Dockerfile"),
  "utf8",
);
const arg = (name: string) => new RegExp(`^ARG ${name}=(\\S+)$`, "m").exec(dockerfile)?.[1];
const installed = (pkg: string) =>
  execFileSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" }).trim();

describe("components/postgres/image/Dockerfile", () => {
  it("builds on the official postgres 15 image, pinned by tag", () => {
    assert.match(arg("POSTGRES_IMAGE") ?? "", /^postgres:15\.\d+-bookworm$/);
    assert.match(dockerfile, /^FROM \$\{POSTGRES_IMAGE\}$/m);
  });

  it("pins Patroni, pgBackRest and curl to the versions the tests run", () => {
    assert.equal(arg("PATRONI_VERSION"), installed("patroni"));
    assert.equal(arg("PGBACKREST_VERSION"), installed("pgbackrest"));
    assert.equal(arg("CURL_VERSION"), installed("curl"));
    assert.equal(arg("JQ_VERSION"), installed("jq"));
    assert.match(dockerfile, /"patroni=\$\{PATRONI_VERSION\}"/);
    assert.match(dockerfile, /"pgbackrest=\$\{PGBACKREST_VERSION\}"/);
  });

  it("runs as postgres with Patroni as the main process", () => {
    assert.match(dockerfile, /^USER postgres$/m);
    assert.match(dockerfile, /^ENTRYPOINT \["patroni"\]$/m);
  });
});
