import { stringify } from "yaml";
import { TEAMS, type Team } from "./alert-rules";

/** Outgoing mail server. The password is secret stack config. */
export interface SmtpSettings {
  /** `host:port`. */
  readonly smarthost: string;
  readonly from: string;
  readonly authUsername?: string;
  readonly authPassword?: string;
  /** Default true. */
  readonly requireTls?: boolean;
}

/** Where one team is notified. */
export interface TeamReceiverSettings {
  readonly email: string;
  /** Slack channel, e.g. `#backend-alerts`. */
  readonly slackChannel: string;
}

/**
 * Every endpoint and credential Alertmanager notifies through. URLs and passwords come from
 * secret stack config and the rendered file is stored in a Kubernetes Secret, never a ConfigMap.
 * An endpoint left unset drops that channel (the receiver stays, so routing is unchanged).
 */
export interface AlertReceiverSettings {
  readonly smtp: SmtpSettings;
  /** Slack incoming-webhook URL (it embeds the token). */
  readonly slackApiUrl?: string;
  /** Paging service webhook (PagerDuty/Opsgenie events endpoint or an on-call bridge). */
  readonly pagerWebhookUrl?: string;
  /** Extra webhook receiving every team's critical alerts (chat-ops bot, ticketing). */
  readonly webhookUrl?: string;
  /** Catch-all mailbox for alerts without a known team. */
  readonly defaultEmail: string;
  readonly teams: Readonly<Record<Team, TeamReceiverSettings>>;
}

/** Alerts that mean a whole service is unreachable; their symptoms are inhibited. */
const DOWN_ALERTS = ["ServiceDown", "PostgreSQLDown", "RedisDown"] as const;

/**
 * Grouping: one notification per alert and service, not per pod. group_interval/repeat_interval
 * keep a flapping or long incident from flooding channels.
 */
const ROUTE_TIMING = {
  groupWait: "30s",
  groupInterval: "5m",
  repeatInterval: "4h",
  criticalGroupWait: "10s",
  criticalRepeatInterval: "1h",
} as const;

export const PAGER_RECEIVER = "pager";
export const DEFAULT_RECEIVER = "default";
export const teamReceiver = (team: Team, severity: "critical" | "warning"): string =>
  `${team}-${severity}`;

const slackConfig = (channel: string) => ({
  channel,
  send_resolved: true,
  title:
    '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})',
  text: "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\n{{ end }}",
});

/** alertmanager.yml: route tree by severity and team, receivers, inhibition. */
export function renderAlertmanagerConfig(settings: AlertReceiverSettings): string {
  const slack = (channel: string) =>
    settings.slackApiUrl ? { slack_configs: [slackConfig(channel)] } : {};
  const webhook = (url: string | undefined, extra: object = {}) =>
    url ? { webhook_configs: [{ url, send_resolved: true, ...extra }] } : {};
  const receivers: object[] = [
    { name: DEFAULT_RECEIVER, email_configs: [{ to: settings.defaultEmail, send_resolved: true }] },
    { name: PAGER_RECEIVER, ...webhook(settings.pagerWebhookUrl, { max_alerts: 20 }) },
  ];
  for (const team of TEAMS) {
    const t = settings.teams[team];
    receivers.push({ name: teamReceiver(team, "warning"), ...slack(t.slackChannel) });
    receivers.push({
      name: teamReceiver(team, "critical"),
      ...slack(t.slackChannel),
      email_configs: [{ to: t.email, send_resolved: true }],
      ...webhook(settings.webhookUrl),
    });
  }

  const config = {
    global: {
      resolve_timeout: "5m",
      smtp_smarthost: settings.smtp.smarthost,
      smtp_from: settings.smtp.from,
      ...(settings.smtp.authUsername ? { smtp_auth_username: settings.smtp.authUsername } : {}),
      ...(settings.smtp.authPassword ? { smtp_auth_password: settings.smtp.authPassword } : {}),
      smtp_require_tls: settings.smtp.requireTls ?? true,
      ...(settings.slackApiUrl ? { slack_api_url: settings.slackApiUrl } : {}),
    },
    route: {
      receiver: DEFAULT_RECEIVER,
      group_by: ["alertname", "namespace", "app"],
      group_wait: ROUTE_TIMING.groupWait,
      group_interval: ROUTE_TIMING.groupInterval,
      repeat_interval: ROUTE_TIMING.repeatInterval,
      routes: [
        {
          // Critical pages whoever is on call, then continues to the owning team's route.
          receiver: PAGER_RECEIVER,
          matchers: ['severity="critical"'],
          group_wait: ROUTE_TIMING.criticalGroupWait,
          repeat_interval: ROUTE_TIMING.criticalRepeatInterval,
          continue: true,
        },
        ...TEAMS.map((team) => ({
          receiver: teamReceiver(team, "warning"),
          matchers: [`team="${team}"`],
          routes: [
            {
              receiver: teamReceiver(team, "critical"),
              matchers: ['severity="critical"'],
              group_wait: ROUTE_TIMING.criticalGroupWait,
              repeat_interval: ROUTE_TIMING.criticalRepeatInterval,
            },
          ],
        })),
        // Unowned alerts still reach a human, critical ones as well as the pager.
        { receiver: DEFAULT_RECEIVER },
      ],
    },
    inhibit_rules: [
      {
        // A critical alert silences the warning of the same condition on the same object.
        source_matchers: ['severity="critical"'],
        target_matchers: ['severity="warning"'],
        equal: ["alertname", "namespace", "app", "instance", "persistentvolumeclaim", "host"],
      },
      {
        // A down service silences its symptoms (errors, latency, memory, replication...).
        source_matchers: [`alertname=~"${DOWN_ALERTS.join("|")}"`],
        target_matchers: [`alertname!~"${DOWN_ALERTS.join("|")}"`],
        equal: ["namespace", "app"],
      },
    ],
    receivers,
  };
  return stringify(config, { lineWidth: 0 });
}
