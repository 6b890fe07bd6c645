import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { it } from "node:test";
import { readmeWithTable } from "../../scripts/config-reference";

it("README's configuration reference matches the schema and stack files", () => {
  const readme = fs.readFileSync(path.join(__dirname, "../../README.md"), "utf8");
  assert.equal(
    readme,
    readmeWithTable(readme),
    "run `npm run config-reference` and commit README.md",
  );
});
