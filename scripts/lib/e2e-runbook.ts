/**
 * docs/RUNBOOK.md's kubectl commands that need no running container (get, describe, rollout
 * status, scale; `get endpoints` among them) run against the simulated prod cluster, so a
 * renamed object or label in the stack breaks the e2e instead of an operator's night.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./render-stack";
import { SimCluster, kubectl } from "./sim-cluster";

export interface RunbookCommand {
  line: number;
  args: string[];
}

const VERBS = new Set(["get", "describe", "rollout", "scale"]);

/** Splits a shell command line into words as the shell would, quotes honoured, no expansion. */
export function words(cmd: string): string[] | undefined {
  const out: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  for (const ch of cmd) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur = (cur ?? "") + ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      cur = cur ?? "";
    } else if (/\s/.test(ch)) {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else cur = (cur ?? "") + ch;
  }
  if (quote) return undefined;
  if (cur !== undefined) out.push(cur);
  return out;
}

/**
 * The runbook's runnable kubectl commands: in code blocks, the first command of a line (before
 * a pipe, `&&`, `;` or a comment), read-only verbs plus scale, with no placeholder (`<pod>`),
 * variable or command substitution (those need a human's value).
 */
export function runbookCommands(markdown: string): RunbookCommand[] {
  const found: RunbookCommand[] = [];
  let inCode = false;
  markdown.split("\n").forEach((raw, i) => {
    if (/^\s*```/.test(raw)) {
      inCode = !inCode;
      return;
    }
    if (!inCode) return;
    const first = raw
      .replace(/\s+#.*$/, "")
      .split(/\s\|\s|&&|;/)[0]
      .trim();
    if (!first.startsWith("kubectl ") || /[<>$`\\]/.test(first)) return;
    const w = words(first);
    if (!w) return;
    const args = w.slice(1);
    const verb = args.find((a) => !a.startsWith("-") && args[args.indexOf(a) - 1] !== "-n");
    if (!verb || !VERBS.has(verb)) return;
    if (verb === "rollout" && !args.includes("status")) return;
    found.push({ line: i + 1, args });
  });
  return found;
}

/** Runs every runbook command; `get`/`describe` must also find something. */
export function runbookChecks(sim: SimCluster, log: (m: string) => void): string[] {
  const md = fs.readFileSync(path.join(REPO_ROOT, "docs/RUNBOOK.md"), "utf8");
  const cmds = runbookCommands(md);
  const problems: string[] = [];
  // scale changes state: run it last, after every read.
  const ordered = [
    ...cmds.filter((c) => !c.args.includes("scale")),
    ...cmds.filter((c) => c.args.includes("scale")),
  ];
  for (const c of ordered) {
    const r = kubectl(sim, c.args);
    const empty =
      /No resources found/.test(r.stderr) || (r.stdout.trim() === "" && !c.args.includes("scale"));
    const mayBeEmpty = c.args.includes("events");
    if (r.code !== 0 || (empty && !mayBeEmpty))
      problems.push(
        `RUNBOOK.md:${c.line}: kubectl ${c.args.join(" ")} ${r.code !== 0 ? `failed: ${r.stderr.trim()}` : "found nothing"}`,
      );
  }
  log(
    `runbook: ${cmds.length - problems.length}/${cmds.length} kubectl commands ran against the cluster`,
  );
  return problems;
}
