/** `conclave serve`: runs a member until SIGTERM or SIGINT, then shuts it down cleanly. */
import { Command, Option } from 'commander';
import pino from 'pino';
import { FLAG_HELP, FLAG_NAMES, SERVER_DEFAULTS, resolveConfig, type ServerConfig } from '../server/config.ts';
import { Member, type Logger } from '../server/member.ts';

export type ClientApiStarter = (member: Member, config: ServerConfig, log: Logger) => Promise<{ close(): Promise<void> }>;

export function serveCommand(startClientApi: ClientApiStarter): Command {
  const cmd = new Command('serve').description('run a Conclave member (etcd-compatible flags)');
  const attribute = new Map<string, string>();
  for (const key of Object.keys(FLAG_NAMES) as (keyof typeof FLAG_NAMES)[]) {
    const flag = FLAG_NAMES[key];
    const def = SERVER_DEFAULTS[key];
    const option = new Option(`--${flag} <value>`, `${FLAG_HELP[key]}${def === '' ? '' : ` (default "${def}")`}`);
    attribute.set(flag, option.attributeName());
    cmd.addOption(option);
  }
  cmd.addOption(new Option('--config-file <path>', 'path to a config file of flat "flag-name: value" lines'));
  attribute.set('config-file', 'configFile');
  cmd.action(async (opts: Record<string, string | undefined>) => {
    const flags: Record<string, string | undefined> = {};
    for (const [flag, attr] of attribute) flags[flag] = opts[attr];
    const config = resolveConfig(flags, process.env);
    await runUntilSignalled(config, startClientApi);
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
  const member = await Member.start(config, log, fatal);
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
  const api = await startClientApi(member, config, log);
  log.info(`serving client requests on ${config.listenClientUrls.join(', ')} (data in ${config.dataDir})`);
  const shutdown = (signal: string): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info(`received ${signal}, shutting down`);
    void (async () => {
      await api.close();
      await member.stop();
      process.exit(0);
    })().catch(fatal);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
