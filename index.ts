import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "./components/config/load";
import { buildPlatform } from "./components/platform";

// isConfigSecret is internal to the SDK's runtime but is how it tracks `--secret` keys.
const runtime = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
const raw = pulumi.runtime.allConfig();
const secretKeys = Object.keys(raw).filter((k) => runtime.isConfigSecret?.(k) ?? false);

// Validation runs before any resource is registered: bad config fails with one message.
const config = loadConfig(raw, secretKeys);

export = buildPlatform(config, pulumi.getStack());
