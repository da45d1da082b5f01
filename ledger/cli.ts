/**
 * `tollgate-ledger`: the remote ledger service that Tollgate devices sync with, and the operator's
 * commands for accounts and devices. Every command uses the same database: embedded SQLite in
 * --data-dir by default, PostgreSQL when DATABASE_URL is set.
 *
 * Exit codes: 0 ok · 1 runtime error · 2 bad input.
 */
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { openDb, type Db } from './db.ts';
import { ENROL_CODE_TTL_MS, LedgerError, MAX_BATCH_CALLS, MAX_BODY_BYTES, PROTOCOL } from './protocol.ts';
import { isLoopback, serve } from './server.ts';
import { createEnrolCode, listDevices, revokeDevice } from './store.ts';

export const DEFAULT_LEDGER_PORT = 7412;

class CliError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
  }
}

export function defaultLedgerDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TOLLGATE_LEDGER_DATA_DIR) return path.resolve(env.TOLLGATE_LEDGER_DATA_DIR);
  return path.join(env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share'), 'tollgate-ledger');
}

const print = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const time = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace('.000', ''));

interface DbOpts { dataDir?: string }

async function withDb<T>(o: DbOpts, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await open(o);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

async function open(o: DbOpts): Promise<Db> {
  try {
    return await openDb({ dataDir: path.resolve(o.dataDir ?? defaultLedgerDir()), databaseUrl: process.env.DATABASE_URL || undefined });
  } catch (e) {
    throw new CliError(`cannot open the ledger database: ${(e as Error).message}`, 1);
  }
}

const dataDirOption = () => new Option('--data-dir <dir>', 'where the embedded SQLite database lives; ignored when DATABASE_URL is set (default: $TOLLGATE_LEDGER_DATA_DIR, else $XDG_DATA_HOME/tollgate-ledger or ~/.local/share/tollgate-ledger)');

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new CliError(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
    return n;
  };
}

export function buildProgram(): Command {
  const program = new Command('tollgate-ledger')
    .description('The remote ledger that Tollgate devices sync with: every call exactly once on every device, one spend picture.')
    .addHelpText('after', `
Storage: embedded SQLite in --data-dir by default (zero set-up). Set DATABASE_URL
(postgresql://user:pass@host:5432/db) to use PostgreSQL instead; any number of
\`serve\` processes may share one PostgreSQL. Migrations run at start, forward only.

Joining a device: run \`tollgate-ledger enroll\` here, then on the device
\`tollgate sync join URL CODE\`. The code works once and expires in 15 minutes.

Protocol ${PROTOCOL}: JSON over HTTP; batches of at most ${MAX_BATCH_CALLS} calls and
${MAX_BODY_BYTES / 1024 / 1024} MiB per request (see ledger/README.md).`)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program.command('serve')
    .description('run the ledger service')
    .addOption(new Option('--port <port>', 'port to listen on').default(DEFAULT_LEDGER_PORT).argParser(intArg('--port', 0, 65535)))
    .option('--host <host>', 'address to bind; anything but loopback needs --tls-cert/--tls-key or --behind-proxy', '127.0.0.1')
    .addOption(dataDirOption())
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'the private key for --tls-cert (PEM)')
    .option('--behind-proxy', 'serve plain HTTP on a non-loopback address because a TLS-terminating proxy sits in front')
    .option('--quiet', 'log only warnings and errors')
    .action(async (o: { port: number; host: string; dataDir?: string; tlsCert?: string; tlsKey?: string; behindProxy?: boolean; quiet?: boolean }) => {
      if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new CliError('--tls-cert and --tls-key go together');
      if (!isLoopback(o.host) && !o.tlsCert && !o.behindProxy) {
        throw new CliError(`refusing to serve plain HTTP on ${o.host}: device tokens would cross the network in clear. Give --tls-cert and --tls-key, or --behind-proxy when a TLS proxy sits in front.`);
      }
      const db = await open(o);
      let server;
      try {
        server = await serve(db, { port: o.port, host: o.host, tlsCert: o.tlsCert, tlsKey: o.tlsKey, quiet: o.quiet });
      } catch (e) {
        await db.close();
        throw new CliError(`cannot listen on ${o.host}:${o.port}: ${(e as Error).message}`, 1);
      }
      print(`tollgate-ledger listening on ${server.url} (${db.kind}: ${db.where}, protocol ${PROTOCOL})`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      await db.close();
    });

  program.command('enroll')
    .description('print a one-time enrolment code for a new device (single use, expires in 15 minutes)')
    .option('--account <name>', 'the account the device joins (created if new)', 'default')
    .addOption(new Option('--expires-in <seconds>', 'expire the code sooner').default(ENROL_CODE_TTL_MS / 1000).argParser(intArg('--expires-in', 1, ENROL_CODE_TTL_MS / 1000)))
    .addOption(dataDirOption())
    .option('--json', 'print {"code", "account", "expires_at"}')
    .action(async (o: { account: string; expiresIn: number; dataDir?: string; json?: boolean }) => {
      if (!o.account.trim() || o.account.length > 200) throw new CliError('--account must be a short, non-empty name');
      const out = await withDb(o, (db) => createEnrolCode(db, o.account.trim(), o.expiresIn * 1000));
      if (o.json) return print(JSON.stringify(out));
      print(`Enrolment code for account "${out.account}": ${out.code}\nIt works once and expires at ${time(out.expires_at)}.\nOn the device: tollgate sync join <this service's URL> ${out.code}`);
    });

  program.command('devices')
    .description('list the devices of every account')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(async (o: { dataDir?: string; json?: boolean }) => {
      const devices = await withDb(o, (db) => listDevices(db));
      if (o.json) return print(JSON.stringify({ devices }, null, 2));
      if (!devices.length) return print('No devices yet. Enrol one with: tollgate-ledger enroll');
      for (const d of devices) {
        print(`${d.id}  ${d.account.padEnd(12)} ${d.name.padEnd(16)} last seen ${time(d.last_seen_at)}${d.revoked_at ? `  REVOKED ${time(d.revoked_at)}` : ''}`);
      }
    });

  program.command('revoke')
    .description('revoke a device (by id, or by name when unique): its next request gets 401')
    .argument('<device>', 'device id or name')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(async (device: string, o: { dataDir?: string; json?: boolean }) => {
      const d = await withDb(o, (db) => revokeDevice(db, device));
      if (o.json) return print(JSON.stringify({ device: d }));
      print(`Revoked ${d.name} (${d.id}) of account "${d.account}".`);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof CliError) {
      process.stderr.write(`tollgate-ledger: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof LedgerError) {
      process.stderr.write(`tollgate-ledger: ${e.message}\n`);
      return e.status < 500 ? 2 : 1;
    }
    process.stderr.write(`tollgate-ledger: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
