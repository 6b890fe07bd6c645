import { after, before, describe, it } from "node:test";
import type { PolicyPackServer } from "../../scripts/lib/policy-pack";
import { expectClean, expectViolation, prodConfig, startPack } from "../helpers/policy";
import { Loose, MONITORING_EXEMPTIONS, compliantStack, withEdit, without } from "./fixtures";

const web = (fn: (o: Loose) => unknown) => withEdit("Deployment", "web", fn);
const webContainer = (o: Loose) => o.spec.template.spec.containers[0];
const webSc = (o: Loose) => webContainer(o).securityContext;
const pod = (o: Loose) => o.spec.template.spec;

describe("security policies", () => {
  let pack: PolicyPackServer;
  before(async () => {
    pack = await startPack(prodConfig(MONITORING_EXEMPTIONS));
  });
  after(() => pack?.close());

  describe("run-as-non-root", () => {
    it("reports a container running as UID 0", async () => {
      await expectViolation(
        pack,
        web((o) => (webSc(o).runAsUser = 0)),
        "run-as-non-root",
        "Deployment/web",
        /runs as UID 0/,
      );
    });
    it("reports a pod without runAsNonRoot anywhere", async () => {
      await expectViolation(
        pack,
        web((o) => {
          delete pod(o).securityContext.runAsNonRoot;
          delete webSc(o).runAsNonRoot;
          delete pod(o).initContainers[0].securityContext.runAsNonRoot;
        }),
        "run-as-non-root",
        "Deployment/web",
        /container "web" may run as root/,
      );
    });
    it("inherits runAsNonRoot from the pod", async () => {
      await expectClean(
        pack,
        web((o) => delete webSc(o).runAsNonRoot),
      );
    });
  });

  it("no-privilege-escalation: reports allowPrivilegeEscalation not false", async () => {
    await expectViolation(
      pack,
      web((o) => delete webSc(o).allowPrivilegeEscalation),
      "no-privilege-escalation",
      "Deployment/web",
      /container "web" allows privilege escalation/,
    );
  });

  it("no-privileged-containers: reports a privileged container", async () => {
    await expectViolation(
      pack,
      web((o) => (webSc(o).privileged = true)),
      "no-privileged-containers",
      "Deployment/web",
      /is privileged/,
    );
  });

  describe("drop-all-capabilities", () => {
    it("reports capabilities not dropped", async () => {
      await expectViolation(
        pack,
        web((o) => (webSc(o).capabilities.drop = ["NET_RAW"])),
        "drop-all-capabilities",
        "Deployment/web",
        /does not drop ALL/,
      );
    });
    it("reports added capabilities other than NET_BIND_SERVICE", async () => {
      await expectViolation(
        pack,
        web((o) => (webSc(o).capabilities.add = ["NET_BIND_SERVICE", "SYS_ADMIN"])),
        "drop-all-capabilities",
        "Deployment/web",
        /adds capabilities SYS_ADMIN/,
      );
      await expectClean(
        pack,
        web((o) => (webSc(o).capabilities.add = ["NET_BIND_SERVICE"])),
      );
    });
  });

  describe("seccomp-runtime-default", () => {
    it("reports an Unconfined container profile overriding the pod's", async () => {
      await expectViolation(
        pack,
        web((o) => (webSc(o).seccompProfile = { type: "Unconfined" })),
        "seccomp-runtime-default",
        "Deployment/web",
        /container "web" runs with seccomp profile Unconfined/,
      );
    });
    it("reports no profile at pod or container level", async () => {
      await expectViolation(
        pack,
        web((o) => {
          delete pod(o).securityContext.seccompProfile;
          delete webSc(o).seccompProfile;
        }),
        "seccomp-runtime-default",
        "Deployment/web",
        /container "web" runs without a seccomp profile/,
      );
    });
  });

  describe("read-only-root-filesystem", () => {
    it("reports a writable root filesystem", async () => {
      await expectViolation(
        pack,
        web((o) => (webSc(o).readOnlyRootFilesystem = false)),
        "read-only-root-filesystem",
        "Deployment/web",
        /writable root filesystem/,
      );
    });
    it("skips a workload exempted in the stack config, with the reason", async () => {
      await pack.configure(
        prodConfig({
          ...MONITORING_EXEMPTIONS,
          "read-only-root-filesystem": {
            exemptions: { "Deployment/web": "image writes to /app at start" },
          },
        }),
      );
      try {
        await expectClean(
          pack,
          web((o) => (webSc(o).readOnlyRootFilesystem = false)),
        );
      } finally {
        await pack.configure(prodConfig(MONITORING_EXEMPTIONS));
      }
    });
  });

  describe("no-host-access", () => {
    it("reports hostNetwork", async () => {
      await expectViolation(
        pack,
        web((o) => (pod(o).hostNetwork = true)),
        "no-host-access",
        "Deployment/web",
        /hostNetwork: true/,
      );
    });
    it("reports hostPath volumes and host ports", async () => {
      await expectViolation(
        pack,
        web(
          (o) =>
            (pod(o).volumes = [{ name: "docker", hostPath: { path: "/var/run/docker.sock" } }]),
        ),
        "no-host-access",
        "Deployment/web",
        /volume "docker" mounts a hostPath/,
      );
      await expectViolation(
        pack,
        web((o) => (webContainer(o).ports[0].hostPort = 8000)),
        "no-host-access",
        "Deployment/web",
        /binds host port 8000/,
      );
    });
  });

  describe("pinned-images", () => {
    it("reports :latest and untagged images", async () => {
      await expectViolation(
        pack,
        web((o) => (webContainer(o).image = "stock-analysis:latest")),
        "pinned-images",
        "Deployment/web",
        /mutable :latest/,
      );
      await expectViolation(
        pack,
        web((o) => (webContainer(o).image = "registry.local:5000/stock-analysis")),
        "pinned-images",
        "Deployment/web",
        /"registry\.local:5000\/stock-analysis" has no tag/,
      );
    });
    it("accepts tags behind a registry port and digests", async () => {
      await expectClean(
        pack,
        web((o) => (webContainer(o).image = "registry.local:5000/stock-analysis:1.0.0")),
      );
      await expectClean(
        pack,
        web((o) => (webContainer(o).image = `stock-analysis@sha256:${"a".repeat(64)}`)),
      );
    });
  });

  describe("secrets-via-secret-refs", () => {
    it("reports a password as a plain env value", async () => {
      await expectViolation(
        pack,
        web((o) => webContainer(o).env.push({ name: "POSTGRES_PASSWORD", value: "hunter2" })),
        "secrets-via-secret-refs",
        "Deployment/web",
        /credential POSTGRES_PASSWORD as a plain env value/,
      );
    });
    it("reports a credential read from a ConfigMap and a URL with a literal password", async () => {
      await expectViolation(
        pack,
        web((o) =>
          webContainer(o).env.push({
            name: "API_TOKEN",
            valueFrom: { configMapKeyRef: { name: "cfg", key: "token" } },
          }),
        ),
        "secrets-via-secret-refs",
        "Deployment/web",
        /reads credential API_TOKEN from a ConfigMap/,
      );
      await expectViolation(
        pack,
        web((o) => (webContainer(o).env[2].value = "redis://:s3cret@redis:6379/0")),
        "secrets-via-secret-refs",
        "Deployment/web",
        /env DATABASE_URL embeds a password in a URL/,
      );
    });
    it("reports credentials in ConfigMap data", async () => {
      const cm = {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: "app-config",
          namespace: "stock-analysis",
          labels: {
            "app.kubernetes.io/part-of": "stock-analysis",
            "app.kubernetes.io/managed-by": "pulumi",
          },
        },
        data: {
          "redis-password": "x",
          "settings.env": "BROKER=redis://:${REDIS_PASSWORD}@redis:6379/0",
        },
      };
      await expectViolation(
        pack,
        [...compliantStack(), cm],
        "secrets-via-secret-refs",
        "ConfigMap/app-config",
        /key "redis-password" looks like a credential/,
      );
      await expectClean(pack, [
        ...compliantStack(),
        { ...cm, data: { "settings.env": cm.data["settings.env"] } },
      ]);
    });
  });

  describe("service-account-token", () => {
    it("reports pods that mount an API token", async () => {
      await expectViolation(
        pack,
        web((o) => delete pod(o).automountServiceAccountToken),
        "service-account-token",
        "Deployment/web",
        /pods get a Kubernetes API token mounted/,
      );
    });
    it("reports a ServiceAccount that automounts", async () => {
      await expectViolation(
        pack,
        withEdit("ServiceAccount", "web", (o: Loose) => (o.automountServiceAccountToken = true)),
        "service-account-token",
        "ServiceAccount/web",
      );
    });
  });

  describe("egress allow-list (api/celery.egress)", () => {
    it("accepts a workload policy with ipBlock egress rules (CIDR, except, port ranges)", async () => {
      await expectClean(
        pack,
        withEdit("NetworkPolicy", "web-allow", (o) => {
          o.spec.egress = [
            {
              to: [{ podSelector: { matchLabels: { app: "postgresql" } } }],
              ports: [{ protocol: "TCP", port: 5432 }],
            },
            {
              to: [{ ipBlock: { cidr: "203.0.113.0/24" } }],
              ports: [{ protocol: "TCP", port: 443 }],
            },
            {
              to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }],
              ports: [{ protocol: "UDP", port: 5000, endPort: 5010 }],
            },
          ];
        }),
      );
    });
  });

  describe("default-deny-network-policy", () => {
    it("reports the namespace when default-deny is missing", async () => {
      await expectViolation(
        pack,
        without("NetworkPolicy", "default-deny-all"),
        "default-deny-network-policy",
        "Namespace/stock-analysis",
        /namespace "stock-analysis" has no default-deny NetworkPolicy/,
      );
    });
    it("does not count a deny policy that lets traffic through", async () => {
      await expectViolation(
        pack,
        withEdit("NetworkPolicy", "default-deny-all", (o: Loose) => (o.spec.egress = [{}])),
        "default-deny-network-policy",
        "Namespace/stock-analysis",
      );
    });
  });

  it("workload-network-policy: reports a workload no allow policy selects", async () => {
    await expectViolation(
      pack,
      without("NetworkPolicy", "web-allow"),
      "workload-network-policy",
      "Deployment/web",
      /no NetworkPolicy selects its pods/,
    );
  });
});

describe("namespace-pod-security", () => {
  let pack: PolicyPackServer;
  before(async () => {
    // Host access is exempted from no-host-access here: admission still rejects it.
    pack = await startPack(
      prodConfig({
        ...MONITORING_EXEMPTIONS,
        "no-host-access": { exemptions: { "Deployment/web": "node agent" } },
        "no-privileged-containers": { exemptions: { "Deployment/web": "node agent" } },
      }),
    );
  });
  after(() => pack?.close());

  const restricted = (objects: ReturnType<typeof compliantStack>) =>
    objects.map((o) =>
      o.kind === "Namespace"
        ? {
            ...o,
            metadata: {
              ...o.metadata,
              labels: {
                ...(o.metadata.labels as object),
                "pod-security.kubernetes.io/enforce": "restricted",
              },
            },
          }
        : o,
    );

  it("reports pods the namespace's Pod Security admission would reject", async () => {
    await expectViolation(
      pack,
      restricted(web((o) => (pod(o).hostNetwork = true))),
      "namespace-pod-security",
      "Deployment/web",
      /enforces the restricted Pod Security Standard, which rejects these pods \(hostNetwork: true\)/,
    );
    await expectViolation(
      pack,
      restricted(web((o) => (webSc(o).privileged = true))),
      "namespace-pod-security",
      "Deployment/web",
      /container "web" privileged/,
    );
  });
  it("accepts host access in a namespace that does not enforce a standard", async () => {
    await expectClean(
      pack,
      web((o) => (pod(o).hostNetwork = true)),
    );
  });
});
