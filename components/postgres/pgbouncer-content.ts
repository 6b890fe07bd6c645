/**
 * PgBouncer content (pure): pgbouncer.ini, its auth file, the SQL that prepares the database for
 * `auth_query`, and the app's DATABASE_URL through the pooler. The component only mounts these;
 * the real-process test (test/postgres/pgbouncer.test.ts) runs pgbouncer on exactly this ini.
 *
 * Auth: `auth_query`. PgBouncer holds only its own lookup role's password; it asks PostgreSQL
 * for an app user's SCRAM verifier through {@link AUTH_FUNCTION} and, with SCRAM on both sides,
 * logs in to the server with the keys the client proved (no plaintext app password anywhere in
 * the pooler). A password changed in the database is used at the next login, without touching
 * the pooler. The lookup refuses superusers and replication roles, so the pooler cannot be used
 * to log in as `postgres` or the replicator.
 */
import type { PostgresPoolerConfig } from "../config/postgres";

/** Port PgBouncer listens on (the conventional one). */
export const POOLER_PORT = 6432;
/** Port of the pgbouncer exporter's /metrics. */
export const POOLER_EXPORTER_PORT = 9127;
/** Role PgBouncer logs in as to run `auth_query` (the only role in its auth file besides stats). */
export const POOLER_AUTH_USER = "pgbouncer";
/** Virtual user of the admin console allowed SHOW commands only (the exporter's login). */
export const POOLER_STATS_USER = "pgbouncer_stats";
/** Schema holding the lookup function (owned by the superuser, not in the app's search_path). */
export const AUTH_SCHEMA = "pgbouncer";
/** SECURITY DEFINER lookup of one login role's verifier. */
export const AUTH_FUNCTION = `${AUTH_SCHEMA}.get_auth`;

/** Options for {@link pgbouncerIni}: the config plus where things are. */
export interface PgBouncerIniOptions {
  pool: Pick<
    PostgresPoolerConfig,
    | "poolMode"
    | "defaultPoolSize"
    | "minPoolSize"
    | "reservePoolSize"
    | "maxClientConn"
    | "serverLifetimeSeconds"
    | "serverIdleTimeoutSeconds"
    | "queryWaitTimeoutSeconds"
  >;
  /** Host of the read-write Service (the current primary). */
  serverHost: string;
  /** Its port. Default 5432. */
  serverPort?: number;
  /** The one database served (clients asking for another are refused). */
  database: string;
  /** Path of the auth file (userlist.txt, mounted from the Secret). */
  authFile: string;
  /** `listen_addr`. Default `0.0.0.0` (all pod interfaces). */
  listenAddr?: string;
  /** `listen_port`. Default {@link POOLER_PORT}. */
  listenPort?: number;
  /** `unix_socket_dir`; empty (default) disables the socket (read-only root filesystem). */
  unixSocketDir?: string;
}

/** `key = value` lines; pgbouncer.ini takes values verbatim up to the end of the line. */
function section(name: string, rows: [string, string | number][]): string {
  for (const [k, v] of rows)
    if (/[\n\r]/.test(String(v))) throw new Error(`pgbouncer.ini: ${k} must be one line`);
  const line = ([k, v]: [string, string | number]) => (v === "" ? `${k} =` : `${k} = ${v}`);
  return [`[${name}]`, ...rows.map(line)].join("\n") + "\n";
}

/** pgbouncer.ini for every pooler pod. */
export function pgbouncerIni(o: PgBouncerIniOptions): string {
  const p = o.pool;
  if (p.minPoolSize > p.defaultPoolSize)
    throw new Error(`pgbouncer.ini: min_pool_size ${p.minPoolSize} > default_pool_size`);
  if (!/^[A-Za-z0-9_.-]+$/.test(o.serverHost) || !/^[A-Za-z0-9_]+$/.test(o.database))
    throw new Error(`pgbouncer.ini: unexpected characters in ${o.serverHost}/${o.database}`);
  const databases = section("databases", [
    [o.database, `host=${o.serverHost} port=${o.serverPort ?? 5432} dbname=${o.database}`],
  ]);
  const pgbouncer = section("pgbouncer", [
    ["listen_addr", o.listenAddr ?? "0.0.0.0"],
    ["listen_port", o.listenPort ?? POOLER_PORT],
    ["unix_socket_dir", o.unixSocketDir ?? ""],
    // Logs go to stderr (the container log); no pid file or log file on a read-only root.
    ["logfile", ""],
    ["pidfile", ""],
    ["auth_type", "scram-sha-256"],
    ["auth_file", o.authFile],
    ["auth_user", POOLER_AUTH_USER],
    ["auth_query", `SELECT usename, passwd FROM ${AUTH_FUNCTION}($1)`],
    ["admin_users", POOLER_AUTH_USER],
    ["stats_users", POOLER_STATS_USER],
    ["pool_mode", p.poolMode],
    ["default_pool_size", p.defaultPoolSize],
    ["min_pool_size", p.minPoolSize],
    ["reserve_pool_size", p.reservePoolSize],
    ["reserve_pool_timeout", 3],
    // Hard cap per pod, whatever users connect: pool + reserve + the auth_query connection.
    // This is the per-pod figure the config's connection budget counts.
    ["max_db_connections", p.defaultPoolSize + p.reservePoolSize + 1],
    ["max_client_conn", p.maxClientConn],
    // Transaction pooling returns a server connection after each transaction; DISCARD ALL
    // also runs after every transaction so no session state (SET, temp tables, prepared
    // statements) leaks from one client to the next.
    ["server_reset_query", "DISCARD ALL"],
    ["server_reset_query_always", 1],
    ["server_check_query", "SELECT 1"],
    ["server_check_delay", 10],
    ["server_lifetime", p.serverLifetimeSeconds],
    ["server_idle_timeout", p.serverIdleTimeoutSeconds],
    ["server_connect_timeout", 5],
    // After a failover the Service points at the new primary within seconds: retry logins
    // every second, not every 15 s (the default), so the pool refills as soon as it can.
    ["server_login_retry", 1],
    ["query_wait_timeout", p.queryWaitTimeoutSeconds],
    ["client_login_timeout", 30],
    // Server connections to a node that vanished are detected by keepalives in ~25 s.
    ["tcp_keepalive", 1],
    ["tcp_keepidle", 10],
    ["tcp_keepintvl", 5],
    ["tcp_keepcnt", 3],
    // asyncpg and JDBC send it at startup; PgBouncer would refuse the login otherwise.
    ["ignore_startup_parameters", "extra_float_digits"],
    // Plain TCP inside the cluster (see docs): NetworkPolicies confine both hops and SCRAM
    // never sends a password; TLS would need a certificate issuer the platform does not require.
    ["client_tls_sslmode", "disable"],
    ["server_tls_sslmode", "disable"],
    ["log_connections", 0],
    ["log_disconnections", 0],
    ["log_pooler_errors", 1],
    ["stats_period", 60],
  ]);
  return `${databases}\n${pgbouncer}`;
}

/** One auth-file line: `"user" "secret"` with `"` doubled as the file format requires. */
function authLine(user: string, secret: string): string {
  if (/[\n\r]/.test(user + secret)) throw new Error("userlist.txt: no newlines in entries");
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  return `${q(user)} ${q(secret)}`;
}

/**
 * userlist.txt: only the lookup role (plaintext: PgBouncer must log in to the server as it) and
 * the stats user of the admin console. App users are never listed: auth_query finds them.
 */
export function poolerUserlist(p: { authPassword: string; statsPassword: string }): string {
  return (
    [authLine(POOLER_AUTH_USER, p.authPassword), authLine(POOLER_STATS_USER, p.statsPassword)].join(
      "\n",
    ) + "\n"
  );
}

/** DATABASE_URL of the API and Celery through the pooler. */
export function poolerDatabaseUrl(p: {
  user: string;
  password: string;
  host: string;
  port?: number;
  database: string;
}): string {
  const e = encodeURIComponent;
  return `postgresql://${e(p.user)}:${e(p.password)}@${p.host}:${p.port ?? POOLER_PORT}/${e(p.database)}`;
}

/** The exporter's connection to the admin console (same pod, loopback). */
export function poolerExporterUrl(statsPassword: string, port = POOLER_PORT): string {
  return `postgres://${POOLER_STATS_USER}:${encodeURIComponent(statsPassword)}@127.0.0.1:${port}/pgbouncer?sslmode=disable`;
}

/**
 * The command that applies {@link poolerBootstrapSql} (the bootstrap Job's, and the test's): psql
 * with connection from PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD in the environment.
 */
export function poolerBootstrapCommand(sqlFile: string, passwordFile: string): string[] {
  return [
    "psql",
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
    "-v",
    `pooler_password_file=${passwordFile}`,
    "-f",
    sqlFile,
  ];
}

/**
 * psql script preparing a database for the pooler; idempotent (safe on every bootstrap and every
 * re-run). Run it as a superuser connected to the app database (auth_query runs in the database
 * the client asked for), with psql variable `pooler_password_file` naming the file that holds
 * the lookup role's password, e.g. from Patroni's post_bootstrap:
 *   psql "$1" -d stock_analysis -v ON_ERROR_STOP=1 -v pooler_password_file=/secrets/pooler-auth-password -f pooler.sql
 * The password is read by psql from the file (never on a command line) and kept out of the
 * server log and pg_stat_statements. The function is owned by the superuser that runs this
 * script: reading pg_shadow needs superuser rights, so a SECURITY DEFINER function owned by the
 * `pgbouncer` role itself could not; that role only gets EXECUTE on it.
 */
export function poolerBootstrapSql(): string {
  return `-- PgBouncer auth_query support (generated by components/postgres/pgbouncer-content.ts).
\\set ON_ERROR_STOP 1
\\set pooler_password \`cat :pooler_password_file\`
BEGIN;
-- The password below must reach neither the server log nor pg_stat_statements.
SET LOCAL log_statement = 'none';
SET LOCAL log_min_duration_statement = -1;
SET LOCAL pg_stat_statements.track_utility = off;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${POOLER_AUTH_USER}') THEN
    CREATE ROLE ${POOLER_AUTH_USER} LOGIN;
  END IF;
END
$$;
ALTER ROLE ${POOLER_AUTH_USER} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20 PASSWORD :'pooler_password';
COMMIT;
CREATE SCHEMA IF NOT EXISTS ${AUTH_SCHEMA};
REVOKE ALL ON SCHEMA ${AUTH_SCHEMA} FROM PUBLIC;
GRANT USAGE ON SCHEMA ${AUTH_SCHEMA} TO ${POOLER_AUTH_USER};
CREATE OR REPLACE FUNCTION ${AUTH_FUNCTION}(p_usename text)
  RETURNS TABLE (usename name, passwd text)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.usename, s.passwd
    FROM pg_catalog.pg_shadow s
   WHERE s.usename = p_usename
     AND NOT s.usesuper
     AND NOT s.userepl
     AND (s.valuntil IS NULL OR s.valuntil > now())
$$;
REVOKE ALL ON FUNCTION ${AUTH_FUNCTION}(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${AUTH_FUNCTION}(text) TO ${POOLER_AUTH_USER};
`;
}
