import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { IngressConfig } from "../config/platform";
import { ClusterPlacement, INGRESS_NO_ADDRESS_AWAIT, PART_OF } from "../lib/k8s";

export interface BackendRef {
  serviceName: pulumi.Input<string>;
  port: number;
}

export interface PlatformIngressArgs extends ClusterPlacement {
  config: IngressConfig;
  /** Served at `/` on `config.hosts`. */
  frontend: BackendRef;
  /** Served at `/api` on `config.hosts` and at `/` on `config.apiHosts`. */
  api: BackendRef;
  /** Ingress object name. Default `stock-analysis`. */
  name?: string;
}

/** The public entry: one ingress-nginx Ingress with TLS from cert-manager or an existing secret. */
export class PlatformIngress extends pulumi.ComponentResource {
  /** Hostnames the platform answers on. */
  public readonly hosts: string[];
  /** Base URL users open. */
  public readonly url: string;

  constructor(name: string, args: PlatformIngressArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:ingress:PlatformIngress", name, {}, opts);
    const c = args.config;
    const tls = c.tls.mode !== "none";
    const backend = (b: BackendRef) => ({
      service: { name: b.serviceName, port: { number: b.port } },
    });

    const annotations: Record<string, string> = {
      ...INGRESS_NO_ADDRESS_AWAIT,
      "nginx.ingress.kubernetes.io/proxy-body-size": c.maxBodySize,
      "nginx.ingress.kubernetes.io/ssl-redirect": String(tls),
      "nginx.ingress.kubernetes.io/force-ssl-redirect": String(tls),
    };
    if (c.tls.mode === "cert-manager") {
      const key =
        c.tls.issuerKind === "ClusterIssuer"
          ? "cert-manager.io/cluster-issuer"
          : "cert-manager.io/issuer";
      annotations[key] = c.tls.issuer!;
    }

    const rules = [
      ...c.hosts.map((host) => ({
        host,
        http: {
          paths: [
            { path: "/api", pathType: "Prefix", backend: backend(args.api) },
            { path: "/", pathType: "Prefix", backend: backend(args.frontend) },
          ],
        },
      })),
      ...c.apiHosts.map((host) => ({
        host,
        http: { paths: [{ path: "/", pathType: "Prefix", backend: backend(args.api) }] },
      })),
    ];

    new k8s.networking.v1.Ingress(
      name,
      {
        metadata: {
          name: args.name ?? "stock-analysis",
          namespace: args.namespace,
          labels: {
            app: "stock-analysis",
            "app.kubernetes.io/name": "stock-analysis",
            "app.kubernetes.io/component": "ingress",
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pulumi",
          },
          annotations,
        },
        spec: {
          ingressClassName: c.className,
          tls: tls
            ? [{ hosts: [...c.hosts, ...c.apiHosts], secretName: c.tls.secretName }]
            : undefined,
          rules,
        },
      },
      { parent: this, provider: args.provider },
    );
    this.hosts = [...c.hosts, ...c.apiHosts];
    this.url = `${tls ? "https" : "http"}://${c.hosts[0]}`;
    this.registerOutputs({ hosts: this.hosts, url: this.url });
  }
}
