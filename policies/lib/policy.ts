/**
 * Builders for the pack's policies: type filtering, per-stack exemptions from the policy config,
 * unknown-safe property access and one message shape (`<Kind>/<name>: <problem>. Fix: <fix>`).
 */
import type {
  PolicyConfigSchema,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";
import { kindOf, metadataOf, objectRef } from "./k8s";
import { Obj, obj, plain, str } from "./values";

/**
 * Every policy accepts `exemptions`: `{"<Kind>/<name>": "<reason>"}` (or `<Kind>/<namespace>/<name>`).
 * Exemptions live in `policies/<stack>.json`, next to the enforcement levels, so each one is a
 * reviewed change with its reason on record instead of an annotation a component can set itself.
 */
export interface CommonConfig {
  exemptions?: Record<string, string>;
}

const exemptionsSchema = {
  type: "object",
  description:
    'Objects this policy skips, "<Kind>/<name>" (or "<Kind>/<namespace>/<name>") → reason.',
  additionalProperties: { type: "string", minLength: 1 },
  default: {},
} as const;

type JsonSchemaProperties = PolicyConfigSchema["properties"];

function schemaWith(
  properties: JsonSchemaProperties = {},
  required?: string[],
): PolicyConfigSchema {
  return { properties: { ...properties, exemptions: exemptionsSchema }, required };
}

function exemptionFor(config: CommonConfig, kind: string, props: Obj): string | undefined {
  const exemptions = obj(config.exemptions) ?? {};
  const meta = metadataOf(props);
  const name = str(meta.name);
  if (!name) return undefined;
  const ns = str(meta.namespace);
  const reason =
    exemptions[`${kind}/${name}`] ?? (ns ? exemptions[`${kind}/${ns}/${name}`] : undefined);
  return typeof reason === "string" ? reason : undefined;
}

/** Reports one violation: what is wrong and how to fix it. */
export type Report = (problem: string, fix: string) => void;

export interface ResourceContext<C> {
  type: string;
  kind: string;
  /** Resource inputs, unwrapped from the policy proxy (unknowns are sentinel strings). */
  props: Obj;
  /** `Deployment/stock-analysis-api`. */
  ref: string;
  config: C;
}

export interface ResourcePolicySpec<C> {
  name: string;
  description: string;
  /** Pulumi type tokens the policy checks; every Kubernetes object when omitted. */
  types?: string[];
  config?: { properties: JsonSchemaProperties; required?: string[] };
  check(ctx: ResourceContext<C>, report: Report): void;
}

export function resourcePolicy<C extends object = object>(
  spec: ResourcePolicySpec<C>,
): ResourceValidationPolicy {
  return {
    name: spec.name,
    description: spec.description,
    configSchema: schemaWith(spec.config?.properties, spec.config?.required),
    validateResource: (args, reportViolation) => {
      if (spec.types && !spec.types.includes(args.type)) {
        args.notApplicable(`applies to ${spec.types.map((t) => t.split(":")[2]).join(", ")}`);
      }
      const kind = kindOf(args.type);
      if (!kind) return args.notApplicable("not a Kubernetes object");
      const props = plain(args.props);
      const config = args.getConfig<C & CommonConfig>();
      const ref = objectRef(kind, props);
      const exempt = exemptionFor(config, kind, props);
      if (exempt !== undefined) return args.notApplicable(`${ref} exempt: ${exempt}`);
      spec.check({ type: args.type, kind, props, ref, config }, (problem, fix) =>
        reportViolation(`${ref}: ${problem}. Fix: ${fix}`),
      );
    },
  };
}

/** A Kubernetes object of the stack as stack policies see it. */
export interface StackObject {
  type: string;
  kind: string;
  urn: string;
  props: Obj;
  ref: string;
  /** The exemption reason when the policy config exempts this object. */
  exempt?: string;
}

export type StackReport = (subject: StackObject | undefined, problem: string, fix: string) => void;

export interface StackPolicySpec<C> {
  name: string;
  description: string;
  config?: { properties: JsonSchemaProperties; required?: string[] };
  check(objects: StackObject[], config: C, report: StackReport): void;
}

export function stackPolicy<C extends object = object>(
  spec: StackPolicySpec<C>,
): StackValidationPolicy {
  return {
    name: spec.name,
    description: spec.description,
    configSchema: schemaWith(spec.config?.properties, spec.config?.required),
    validateStack: (args, reportViolation) => {
      const config = args.getConfig<C & CommonConfig>();
      const objects: StackObject[] = [];
      for (const r of args.resources) {
        const kind = kindOf(r.type);
        if (!kind) continue;
        const props = plain(r.props);
        objects.push({
          type: r.type,
          kind,
          urn: r.urn,
          props,
          ref: objectRef(kind, props),
          exempt: exemptionFor(config, kind, props),
        });
      }
      spec.check(objects, config, (subject, problem, fix) =>
        reportViolation(
          subject ? `${subject.ref}: ${problem}. Fix: ${fix}` : `${problem}. Fix: ${fix}`,
          subject?.urn,
        ),
      );
    },
  };
}
