/**
 * Security: the restricted Pod Security Standard plus pinned images, secrets only through Secret
 * references, no API token unless needed, and a closed network with explicit allows.
 */
import {
  CONFIG_MAP,
  ContainerRef,
  NAMESPACE,
  NETWORK_POLICY,
  SERVICE_ACCOUNT,
  WORKLOAD_TYPES,
  Workload,
  containersOf,
  labelsOf,
  metadataOf,
  selectorMatches,
  selectsAll,
  workloadOf,
} from "./lib/k8s";
import { StackObject, resourcePolicy, stackPolicy } from "./lib/policy";
import { Obj, absent, arr, at, isUnknown, obj, str } from "./lib/values";

/** A container's setting, falling back to the pod's securityContext like the kubelet does. */
function effective(w: Workload, c: ContainerRef, field: string): unknown {
  const own = at(c.container, "securityContext", field);
  if (c.container.securityContext !== undefined && isUnknown(c.container.securityContext))
    return own;
  return absent(own) ? at(w.podSpec, "securityContext", field) : own;
}

function eachContainer(type: string, props: Obj, fn: (c: ContainerRef, w: Workload) => void): void {
  const w = workloadOf(type, props)!;
  for (const c of containersOf(w)) fn(c, w);
}

export const runAsNonRoot = resourcePolicy({
  name: "run-as-non-root",
  description: "Every container runs as a non-root user (runAsNonRoot: true, runAsUser not 0).",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    eachContainer(type, props, (c, w) => {
      const nonRoot = effective(w, c, "runAsNonRoot");
      const user = effective(w, c, "runAsUser");
      if (user === 0)
        report(
          `${c.label} runs as UID 0`,
          `set ${c.path}.securityContext.runAsUser to a non-zero UID (the image's app user)`,
        );
      else if (!isUnknown(nonRoot) && nonRoot !== true)
        report(
          `${c.label} may run as root (runAsNonRoot is not true)`,
          `set securityContext.runAsNonRoot: true and a non-zero runAsUser on the pod (restrictedPodSecurity) or the container`,
        );
    });
  },
});

export const noPrivilegeEscalation = resourcePolicy({
  name: "no-privilege-escalation",
  description: "Every container sets allowPrivilegeEscalation: false.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    eachContainer(type, props, (c) => {
      const v = at(c.container, "securityContext", "allowPrivilegeEscalation");
      if (!isUnknown(v) && v !== false)
        report(
          `${c.label} allows privilege escalation`,
          `set ${c.path}.securityContext.allowPrivilegeEscalation: false (restrictedContainerSecurity)`,
        );
    });
  },
});

export const noPrivilegedContainers = resourcePolicy({
  name: "no-privileged-containers",
  description: "No container runs privileged.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    eachContainer(type, props, (c) => {
      if (at(c.container, "securityContext", "privileged") === true)
        report(
          `${c.label} is privileged (full access to the node)`,
          `remove privileged: true from ${c.path}.securityContext; grant a specific capability or move the workload out of the application namespace`,
        );
    });
  },
});

/** The only capability the restricted Pod Security Standard lets a container add. */
const ALLOWED_ADDED_CAPABILITIES = new Set(["NET_BIND_SERVICE"]);

export const dropAllCapabilities = resourcePolicy({
  name: "drop-all-capabilities",
  description: "Every container drops ALL capabilities and adds none beyond NET_BIND_SERVICE.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    eachContainer(type, props, (c) => {
      const caps = at(c.container, "securityContext", "capabilities");
      if (isUnknown(caps)) return;
      const drop = at(caps, "drop");
      if (!isUnknown(drop) && !arr(drop).includes("ALL"))
        report(
          `${c.label} does not drop ALL capabilities`,
          `set ${c.path}.securityContext.capabilities.drop: ["ALL"]`,
        );
      const added = arr(at(caps, "add")).filter((a) => !ALLOWED_ADDED_CAPABILITIES.has(String(a)));
      if (added.length > 0)
        report(
          `${c.label} adds capabilities ${added.join(", ")}`,
          `remove them from ${c.path}.securityContext.capabilities.add (only NET_BIND_SERVICE is allowed)`,
        );
    });
  },
});

export const seccompRuntimeDefault = resourcePolicy({
  name: "seccomp-runtime-default",
  description: "Every container runs with the RuntimeDefault (or a Localhost) seccomp profile.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    eachContainer(type, props, (c, w) => {
      const profile = effective(w, c, "seccompProfile");
      const kind = at(profile, "type");
      if (isUnknown(profile) || isUnknown(kind)) return;
      if (kind !== "RuntimeDefault" && kind !== "Localhost")
        report(
          `${c.label} runs ${absent(kind) ? "without a seccomp profile" : `with seccomp profile ${String(kind)}`}`,
          `set securityContext.seccompProfile.type: RuntimeDefault on the pod (restrictedPodSecurity) or the container`,
        );
    });
  },
});

export const readOnlyRootFilesystem = resourcePolicy({
  name: "read-only-root-filesystem",
  description:
    "Every container mounts its root filesystem read-only (writable paths as emptyDir volumes); a workload that cannot is exempted in the stack's policy config with the reason.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    eachContainer(type, props, (c) => {
      const v = at(c.container, "securityContext", "readOnlyRootFilesystem");
      if (!isUnknown(v) && v !== true)
        report(
          `${c.label} has a writable root filesystem`,
          `set ${c.path}.securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes on the paths it writes (writableVolumes)`,
        );
    });
  },
});

export const noHostAccess = resourcePolicy({
  name: "no-host-access",
  description:
    "Pods share no host namespace (network, PID, IPC), bind no host ports and mount no hostPath volumes.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    const w = workloadOf(type, props)!;
    if (!w.podSpec) return;
    for (const field of ["hostNetwork", "hostPID", "hostIPC"]) {
      if (w.podSpec[field] === true)
        report(
          `the pod sets ${field}: true`,
          `remove ${w.podSpecPath}.${field}; expose the workload through a Service instead`,
        );
    }
    for (const v of arr(w.podSpec.volumes)) {
      const vol = obj(v);
      if (vol && !absent(vol.hostPath))
        report(
          `volume "${String(vol.name)}" mounts a hostPath`,
          `replace the hostPath volume with a PersistentVolumeClaim, ConfigMap or emptyDir`,
        );
    }
    for (const c of containersOf(w)) {
      for (const p of arr(c.container.ports)) {
        const port = obj(p);
        const hostPort = port?.hostPort;
        if (typeof hostPort === "number" && hostPort !== 0)
          report(
            `${c.label} binds host port ${hostPort}`,
            `remove hostPort from ${c.path}.ports; use a Service`,
          );
      }
    }
  },
});

/** `repo:tag` or `repo@sha256:…`; a registry port (`host:5000/repo`) is not a tag. */
export function imagePinProblem(image: string): string | undefined {
  if (image.includes("@sha256:")) return undefined;
  const lastSlash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  if (colon <= lastSlash) return `image "${image}" has no tag (pulls :latest)`;
  const tag = image.slice(colon + 1);
  if (tag === "" || tag === "latest") return `image "${image}" uses the mutable :latest tag`;
  return undefined;
}

export const pinnedImages = resourcePolicy({
  name: "pinned-images",
  description:
    "Every container image is pinned to a version tag or digest (never :latest or untagged).",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    eachContainer(type, props, (c) => {
      const image = c.container.image;
      if (isUnknown(image)) return;
      const problem = typeof image === "string" ? imagePinProblem(image) : "no image set";
      if (problem)
        report(
          `${c.label}: ${problem}`,
          `pin ${c.path}.image to a released version tag (e.g. name:1.2.3) or a digest`,
        );
    });
  },
});

/** Env var names that hold credentials; `*_FILE`/`*_PATH` style names point at mounted secret files. */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_?KEY|API_?KEY|ACCESS_?KEY)/i;
const REFERENCE_SUFFIX = /_(FILE|PATH|DIR|FILENAME|NAME|REF)$/i;
/** `scheme://user:password@` with a literal password (not `$(VAR)`/`${VAR}`/`$VAR` expansion). */
const URL_CREDENTIALS = /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:([^@\s/]+)@/gi;

function literalUrlPassword(value: string): boolean {
  for (const m of value.matchAll(URL_CREDENTIALS)) if (!m[1].startsWith("$")) return true;
  return false;
}

function secretLikeName(name: string): boolean {
  return SECRET_NAME.test(name) && !REFERENCE_SUFFIX.test(name);
}

export const secretsViaSecretRefs = resourcePolicy({
  name: "secrets-via-secret-refs",
  description:
    "Credentials reach pods only through Secret references (env valueFrom.secretKeyRef or mounted Secret files), never as plain env values or ConfigMap data.",
  types: [...WORKLOAD_TYPES, CONFIG_MAP],
  check({ type, props }, report) {
    if (type === CONFIG_MAP) {
      for (const field of ["data", "binaryData"]) {
        for (const [key, value] of Object.entries(obj(props[field]) ?? {})) {
          if (secretLikeName(key))
            report(
              `ConfigMap key "${key}" looks like a credential`,
              `move "${key}" into a Kubernetes Secret and mount or reference that instead`,
            );
          else if (typeof value === "string" && literalUrlPassword(value))
            report(
              `ConfigMap key "${key}" embeds a password in a URL`,
              `build the URL in the pod from a secret (e.g. $(PASSWORD) expansion or a *_FILE secret mount)`,
            );
        }
      }
      return;
    }
    eachContainer(type, props, (c) => {
      arr(c.container.env).forEach((e, i) => {
        const env = obj(e);
        const name = str(env?.name);
        if (!env || !name) return;
        const value = str(env.value);
        const fix = `take ${name} from a Secret: env valueFrom.secretKeyRef (secretEnv) at ${c.path}.env[${i}]`;
        if (secretLikeName(name)) {
          if (value) report(`${c.label} gets credential ${name} as a plain env value`, fix);
          else if (!absent(at(env, "valueFrom", "configMapKeyRef")))
            report(`${c.label} reads credential ${name} from a ConfigMap`, fix);
        } else if (value && literalUrlPassword(value)) {
          report(
            `${c.label} env ${name} embeds a password in a URL`,
            `${fix}, or compose the URL with $(PASSWORD) from a secretKeyRef env var`,
          );
        }
      });
    });
  },
});

export const serviceAccountToken = resourcePolicy({
  name: "service-account-token",
  description:
    "Pods and ServiceAccounts set automountServiceAccountToken: false; a workload that calls the Kubernetes API is exempted in the stack's policy config.",
  types: [...WORKLOAD_TYPES, SERVICE_ACCOUNT],
  check({ type, props }, report) {
    if (type === SERVICE_ACCOUNT) {
      const v = props.automountServiceAccountToken;
      if (!isUnknown(v) && v !== false)
        report(
          `the ServiceAccount mounts an API token into every pod using it`,
          `set automountServiceAccountToken: false on the ServiceAccount`,
        );
      return;
    }
    const w = workloadOf(type, props)!;
    if (!w.podSpec) return;
    const v = w.podSpec.automountServiceAccountToken;
    if (!isUnknown(v) && v !== false)
      report(
        `pods get a Kubernetes API token mounted`,
        `set ${w.podSpecPath}.automountServiceAccountToken: false (or exempt the workload in policies/<stack>.json if it calls the API)`,
      );
  },
});

function namespaceOf(o: StackObject): string | undefined {
  const ns = metadataOf(o.props).namespace;
  return typeof ns === "string" && !isUnknown(ns) ? ns : undefined;
}

function isDenyAll(np: StackObject): boolean {
  const spec = obj(np.props.spec) ?? {};
  const types = arr(spec.policyTypes);
  return (
    selectsAll(obj(spec.podSelector)) &&
    types.includes("Ingress") &&
    types.includes("Egress") &&
    arr(spec.ingress).length === 0 &&
    arr(spec.egress).length === 0
  );
}

export const defaultDenyNetworkPolicy = stackPolicy({
  name: "default-deny-network-policy",
  description:
    "Every namespace the stack runs pods in (or creates) has a default-deny NetworkPolicy for ingress and egress.",
  check(objects, _config, report) {
    const namespaces = new Map<string, StackObject | undefined>();
    for (const o of objects) {
      if (o.type === NAMESPACE) {
        const name = str(metadataOf(o.props).name);
        if (name && o.exempt === undefined) namespaces.set(name, o);
      }
    }
    for (const o of objects) {
      if (!WORKLOAD_TYPES.includes(o.type)) continue;
      const ns = namespaceOf(o);
      if (ns && !namespaces.has(ns)) namespaces.set(ns, undefined);
    }
    const denied = new Set(
      objects.filter((o) => o.type === NETWORK_POLICY && isDenyAll(o)).map(namespaceOf),
    );
    for (const [ns, nsObject] of namespaces) {
      if (denied.has(ns)) continue;
      report(
        nsObject,
        `namespace "${ns}" has no default-deny NetworkPolicy, so every pod accepts and opens any connection`,
        `add a NetworkPolicy in "${ns}" with podSelector: {}, policyTypes: [Ingress, Egress] and no rules, then explicit allows per workload`,
      );
    }
  },
});

export const workloadNetworkPolicy = stackPolicy({
  name: "workload-network-policy",
  description:
    "Every workload's pods are selected by a NetworkPolicy of their own (explicit allows on top of default-deny).",
  check(objects, _config, report) {
    const policies = objects.filter((o) => o.type === NETWORK_POLICY);
    for (const o of objects) {
      if (!WORKLOAD_TYPES.includes(o.type) || o.exempt !== undefined) continue;
      const podLabels = workloadOf(o.type, o.props)?.podLabels;
      if (!podLabels) continue;
      const ns = namespaceOf(o);
      const allowed = policies.some((np) => {
        const npNs = namespaceOf(np);
        const selector = obj(at(np.props, "spec", "podSelector"));
        return (
          (npNs === undefined || ns === undefined || npNs === ns) &&
          !selectsAll(selector) &&
          selectorMatches(selector, podLabels)
        );
      });
      if (!allowed)
        report(
          o,
          `no NetworkPolicy selects its pods (labels ${JSON.stringify(podLabels)}), so they only get the namespace-wide rules`,
          `add a "<name>-allow" NetworkPolicy whose podSelector matches the pod labels, listing its peers (allowPolicySpec in components/lib/network.ts)`,
        );
    }
  },
});

/** What a Pod Security Standard level forbids, as `<problem>` strings for one workload. */
function podSecurityProblems(w: Workload, level: "baseline" | "restricted"): string[] {
  const problems: string[] = [];
  const spec = w.podSpec;
  if (!spec) return problems;
  for (const field of ["hostNetwork", "hostPID", "hostIPC"])
    if (spec[field] === true) problems.push(`${field}: true`);
  for (const v of arr(spec.volumes))
    if (!absent(obj(v)?.hostPath)) problems.push(`hostPath volume "${String(obj(v)?.name)}"`);
  for (const c of containersOf(w)) {
    const sc = obj(c.container.securityContext) ?? {};
    if (sc.privileged === true) problems.push(`${c.label} privileged`);
    for (const p of arr(c.container.ports)) {
      const hostPort = obj(p)?.hostPort;
      if (typeof hostPort === "number" && hostPort !== 0)
        problems.push(`${c.label} hostPort ${hostPort}`);
    }
    if (level !== "restricted") continue;
    if (sc.allowPrivilegeEscalation !== false && !isUnknown(sc.allowPrivilegeEscalation))
      problems.push(`${c.label} without allowPrivilegeEscalation: false`);
    const caps = at(sc, "capabilities");
    if (!isUnknown(caps) && !isUnknown(at(caps, "drop")) && !arr(at(caps, "drop")).includes("ALL"))
      problems.push(`${c.label} not dropping ALL capabilities`);
    const nonRoot = effective(w, c, "runAsNonRoot");
    if (nonRoot !== true && !isUnknown(nonRoot))
      problems.push(`${c.label} without runAsNonRoot: true`);
    const seccomp = at(effective(w, c, "seccompProfile"), "type");
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost" && !isUnknown(seccomp))
      problems.push(`${c.label} without a RuntimeDefault seccomp profile`);
  }
  return problems;
}

const PSA_ENFORCE = "pod-security.kubernetes.io/enforce";

export const namespacePodSecurity = stackPolicy({
  name: "namespace-pod-security",
  description:
    "Pods satisfy the Pod Security Standard their namespace enforces; otherwise admission rejects them at apply time (preview cannot see that).",
  check(objects, _config, report) {
    const levels = new Map<string, string>();
    for (const o of objects) {
      if (o.type !== NAMESPACE) continue;
      const name = str(metadataOf(o.props).name);
      const level = str(labelsOf(metadataOf(o.props))[PSA_ENFORCE]);
      if (name && level) levels.set(name, level);
    }
    for (const o of objects) {
      if (!WORKLOAD_TYPES.includes(o.type) || o.exempt !== undefined) continue;
      const ns = namespaceOf(o);
      const level = ns ? levels.get(ns) : undefined;
      if (level !== "restricted" && level !== "baseline") continue;
      const problems = podSecurityProblems(workloadOf(o.type, o.props)!, level);
      if (problems.length > 0)
        report(
          o,
          `namespace "${ns}" enforces the ${level} Pod Security Standard, which rejects these pods (${problems.join("; ")})`,
          `make the pods comply, or run the workload in its own namespace labelled ${PSA_ENFORCE}: privileged (with its own default-deny NetworkPolicy)`,
        );
    }
  },
});

export const securityPolicies = [
  runAsNonRoot,
  noPrivilegeEscalation,
  noPrivilegedContainers,
  dropAllCapabilities,
  seccompRuntimeDefault,
  readOnlyRootFilesystem,
  noHostAccess,
  pinnedImages,
  secretsViaSecretRefs,
  serviceAccountToken,
  defaultDenyNetworkPolicy,
  workloadNetworkPolicy,
  namespacePodSecurity,
];
