/** `conclave serve`: runs a member until SIGTERM or SIGINT, then shuts it down cleanly. */
import { Command, Option } from 'commander';
import pino from 'pino';
import { ConfigError, FLAG_HELP, FLAG_NAMES, SERVER_DEFAULTS, isBooleanSetting, resolveConfig, type ServerConfig } from '../server/config.ts';
import { Member, type Logger } from '../server/member.ts';
import { loadServerTls, readRoleTls, roleTlsFiles, type ServerTls, type TlsMaterial, type TlsRole } from '../server/tls.ts';
import { watchTlsFiles } from '../server/tls-reload.ts';

interface RunningClientApi {
  reloadTls(material: TlsMaterial): void;
  close(): Promise<void>;
}

export type ClientApiStarter = (member: Member, config: ServerConfig, log: Logger, clientTls: TlsMaterial | null) => Promise<RunningClientApi>;

export function serveCommand(startClientApi: ClientApiStarter): Command {
  const cmd = new Command('serve').description('run a Conclave member (etcd-compatible flags)');
  const attribute = new Map<string, string>();
  for (const key of Object.keys(FLAG_NAMES) as (keyof typeof FLAG_NAMES)[]) {
    const flag = FLAG_NAMES[key];
    const def = SERVER_DEFAULTS[key];
    // A switch may stand alone (`--client-cert-auth`) or take a value (`--client-cert-auth=false`).
    const option = new Option(`--${flag} ${isBooleanSetting(key) ? '[value]' : '<value>'}`, `${FLAG_HELP[key]}${def === '' ? '' : ` (default "${def}")`}`);
    attribute.set(flag, option.attributeName());
    cmd.addOption(option);
  }
  cmd.addOption(new Option('--config-file <path>', 'path to a config file of "flag-name: value" lines (etcd\'s YAML, with its client-transport-security and peer-transport-security sections)'));
  attribute.set('config-file', 'configFile');
  cmd.action(async (opts: Record<string, string | true | undefined>) => {
    const flags: Record<string, string | undefined> = {};
    for (const [flag, attr] of attribute) {
      const value = opts[attr];
      flags[flag] = value === true ? 'true' : value;
    }
    try {
      await runUntilSignalled(resolveConfig(flags, process.env), startClientApi);
    } catch (e) {
      // A configuration the member cannot start with: say why in one line, as etcd does.
      if (!(e instanceof ConfigError)) throw e;
      console.error(`conclave serve: ${e.message}`);
      process.exit(1);
    }
  });
  return cmd;
}

async function runUntilSignalled(config: ServerConfig, startClientApi: ClientApiStarter): Promise<void> {
  const logger = pino({ level: config.logLevel, base: { name: config.name } });
  const log: Logger = {
    debug: (m) => logger.debug(m),
    info: (m) => logger.info(m),
    warn: (m) => logger.warn(m),
    error: (m) => logger.error(m),
  };
  let shuttingDown = false;
  const fatal = (e: unknown): void => {
    logger.fatal({ err: e }, 'member failed; stopping');
    process.exit(1);
  };
  // Certificates are checked (or made, with --auto-tls) before anything starts, as etcd does.
  const tls = await loadServerTls(config, log);
  const member = await Member.start(config, log, fatal, tls.peer);
  // As etcd, serve clients only once this member is published (its client URLs known to all).
  await member.whenPublished();
  if (config.initialCorruptCheck) {
    try {
      await member.checkInitialConsistency();
    } catch (e) {
      await member.stop();
      throw e;
    }
  }
  const api = await startClientApi(member, config, log, tls.client);
  log.info(`serving client requests on ${config.listenClientUrls.join(', ')} (data in ${config.dataDir})`);
  const stopWatching = await watchCertificates(config, tls, { client: (m) => api.reloadTls(m), peer: (m) => member.reloadPeerTls(m) }, log);
  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info(`shutting down on ${signal}`);
    for (const stop of stopWatching) stop();
    void (async () => {
      await api.close();
      await member.stop();
      process.exit(0);
    })().catch(fatal);
  };
  void member.whenRemoved().then(() => shutdown('its removal from the cluster'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/**
 * Watches the certificate, key and CA files of each side that has them (not --auto-tls ones,
 * which this member made itself) and hands rotated material to `apply`. Returns the stoppers.
 */
async function watchCertificates(config: ServerConfig, tls: ServerTls, apply: Record<TlsRole, (m: TlsMaterial) => void>, log: Logger): Promise<Array<() => void>> {
  const stoppers: Array<() => void> = [];
  for (const role of ['client', 'peer'] as const) {
    const material = tls[role];
    if (material === null || material.selfSigned) continue;
    stoppers.push(await watchTlsFiles({ role, paths: roleTlsFiles(role, config) }, () => readRoleTls(role, config, log), apply[role], log));
  }
  return stoppers;
}
