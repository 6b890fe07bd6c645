/**
 * CrossGuard policy pack of the stock-analysis platform.
 *   pulumi preview --policy-pack policies --policy-pack-config policies/<stack>.json
 * Enforcement comes from the per-stack config: mandatory in prod, advisory in dev.
 */
import { PolicyPack } from "@pulumi/policy";
import { availabilityPolicies } from "./availability";
import { hygienePolicies } from "./hygiene";
import { limitsPolicies } from "./limits";
import { retentionPolicies } from "./retention";
import { securityPolicies } from "./security";

new PolicyPack("stock-analysis", {
  description:
    "Resource limits, retention, security, availability and hygiene rules for the stock-analysis Kubernetes stacks.",
  enforcementLevel: "advisory",
  policies: [
    ...limitsPolicies,
    ...retentionPolicies,
    ...securityPolicies,
    ...availabilityPolicies,
    ...hygienePolicies,
  ],
});
