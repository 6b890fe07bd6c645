import * as pulumi from "@pulumi/pulumi";
import { PREFLIGHT_ENV, clusterPreflight } from "./components/cluster/preflight";
import { loadConfig, requireNotifiedAlerts } from "./components/config/load";
import { buildPlatform } from "./components/platform";

// isConfigSecret is internal to the SDK's runtime but is how it tracks `--secret` keys.
const runtime = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
const raw = pulumi.runtime.allConfig();
const secretKeys = Object.keys(raw).filter((k) => runtime.isConfigSecret?.(k) ?? false);

// Validation runs before any resource is registered: bad config fails with one message, and so
// does a stack whose alerts would reach no one.
const config = requireNotifiedAlerts(loadConfig(raw, secretKeys));

// An async entrypoint: what an existing cluster lacks is reported before anything is registered.
export = async () => {
  if (config.cluster.mode === "existing" && process.env[PREFLIGHT_ENV] !== "skip")
    await clusterPreflight(config, {
      dryRun: pulumi.runtime.isDryRun(),
      warn: (msg) => pulumi.log.warn(msg),
    });
  return buildPlatform(config, pulumi.getStack());
};
