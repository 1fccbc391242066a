/**
 * Certificate rotation without a restart. etcd reads its certificate and key files again for
 * every new TLS connection, so replacing them on disk takes effect at once; we check the files
 * every TLS_RELOAD_LIMITS.checkIntervalMs and, when they changed, load and check them exactly as
 * at startup (tls.ts). Material that passes goes to the listeners and dialers for their next
 * connections; established connections keep theirs. Material that fails (a certificate written
 * before its key, a key that does not match) is logged and the previous one stays in use until
 * the files change again.
 */
import { stat } from 'node:fs/promises';
import { ConfigError } from './config.ts';
import type { TlsLog, TlsMaterial } from './tls.ts';

export const TLS_RELOAD_LIMITS = {
  /** How often the certificate, key and CA files are checked for a change. */
  checkIntervalMs: 5_000,
} as const;

export interface TlsFiles {
  /** What the files are for, in log lines ("client", "peer"). */
  readonly role: string;
  readonly paths: readonly string[];
}

/** Size, modification time and inode of each file ("" for one that cannot be read): a change in any means new contents. */
async function signature(paths: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map((p) =>
      stat(p).then(
        (s) => `${s.ino}:${s.size}:${s.mtimeMs}`,
        () => '',
      ),
    ),
  );
  return parts.join('|');
}

/**
 * Watches `files`; after a change, `load` reads them again and `apply` gets what it returns.
 * Returns the function that stops watching.
 */
export async function watchTlsFiles(files: TlsFiles, load: () => Promise<TlsMaterial | null>, apply: (material: TlsMaterial) => void, log: TlsLog): Promise<() => void> {
  let seen = await signature(files.paths);
  let checking = false;
  const check = async (): Promise<void> => {
    const now = await signature(files.paths);
    if (now === seen) return;
    seen = now;
    try {
      const material = await load();
      if (material === null) throw new ConfigError('no certificate configured');
      apply(material);
      log.info(`reloaded the ${files.role} TLS certificate from ${files.paths.join(', ')}`);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      log.warn(`the ${files.role} TLS files changed but cannot be used (${e.message}); still using the previous certificate`);
    }
  };
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    void check().finally(() => (checking = false));
  }, TLS_RELOAD_LIMITS.checkIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
