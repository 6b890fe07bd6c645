import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  alertGroups,
  renderAlertRules,
  type AlertRuleOptions,
} from "../../components/monitoring/alert-rules";
import type { AlertReceiverSettings } from "../../components/monitoring/alertmanager-config";

export const RULE_OPTIONS: AlertRuleOptions = {
  namespace: "stock-analysis",
  runbookUrl: "https://git.example.com/stock-analysis/infra/blob/main/docs/RUNBOOK.md",
  postgresReplicas: 2,
  // prod's archive_timeout (Pulumi.prod.yaml postgres.backup.archiveTimeout) and verify CronJob.
  postgresBackup: { archiveTimeoutSeconds: 60, verifyCronJob: "postgresql-backup-verify" },
};

/** Writes the rule file exactly as the component ships it; returns its path. */
export function writeRules(dir: string, opts: AlertRuleOptions = RULE_OPTIONS): string {
  const file = join(dir, "alert_rules.yml");
  writeFileSync(file, renderAlertRules(alertGroups(opts), opts.runbookUrl));
  return file;
}

/** Receiver endpoints pointing at loopback sinks (notifications may fail; routing is what we test). */
export function loopbackReceivers(port = 9): AlertReceiverSettings {
  const base = `http://127.0.0.1:${port}`;
  return {
    smtp: { smarthost: `127.0.0.1:${port}`, from: "alertmanager@example.com", requireTls: false },
    slackApiUrl: `${base}/slack`,
    pagerWebhookUrl: `${base}/pager`,
    webhookUrl: `${base}/webhook`,
    defaultEmail: "ops@example.com",
    teams: {
      backend: { email: "dev@example.com", slackChannel: "#backend-alerts" },
      dba: { email: "dba@example.com", slackChannel: "#dba-alerts" },
      devops: { email: "admin@example.com", slackChannel: "#devops-alerts" },
    },
  };
}
