/**
 * The command-line contract of the repo's scripts: `--help` prints the usage and exits 0; an
 * unknown flag, a missing value or a malformed what-if prints one line naming the problem and
 * exits 2; invalid stack config exits 2 with the config loader's message. Never a stack trace
 * unless DEBUG is set.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { PreflightError } from "../../components/cluster/preflight";
import { ConfigError } from "../../components/config/load";
import { UsageError } from "./usage-error";
import { ProgramError } from "./render-stack";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The what-if flags render, policy and diff share (see scripts/lib/config-set.ts). */
export const WHAT_IF_OPTIONS = {
  set: { type: "string", multiple: true, default: [] as string[] },
  replace: { type: "string", multiple: true, default: [] as string[] },
} as const;

export const WHAT_IF_USAGE = `  --set KEY.PATH=VALUE   what-if: a value at a config path, merged into the stack's own
                         (VALUE is a YAML scalar or JSON; e.g. api.autoscaling.minReplicas=5)
  --replace KEY=JSON     what-if: replace a whole top-level config key`;

/** Parses argv against `options` plus `--help`; exits 0 on --help, throws UsageError otherwise. */
export function parseCommandLine<O extends Options>(
  usage: string,
  options: O,
  argv: string[] = process.argv.slice(2),
) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h", default: false } },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    // Node's messages carry a hint paragraph; the first sentence names the problem.
    throw new UsageError((e as Error).message.split(/\. |\n/)[0].replace(/\.$/, ""));
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed.values;
}

/** Runs a script's main and maps what it throws to one line and an exit code. */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      const cause = e instanceof ProgramError ? e.cause : e;
      if (e instanceof UsageError) {
        process.stderr.write(`${name}: ${e.message} (see --help)\n`);
        process.exit(2);
      }
      if (cause instanceof ConfigError || cause instanceof PreflightError) {
        const registered =
          e instanceof ProgramError ? `\n(${e.resourcesRegistered} resources were registered)` : "";
        process.stderr.write(`${cause.message}${registered}\n`);
        process.exit(2);
      }
      const detail = process.env.DEBUG && e instanceof Error ? (e.stack ?? e.message) : String(e);
      process.stderr.write(
        `${name} failed: ${e instanceof Error && !process.env.DEBUG ? e.message : detail}\n`,
      );
      process.exit(2);
    },
  );
}
