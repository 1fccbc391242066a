/** Entry point of the `conclave` command. */
import { Command } from 'commander';
import { startClientApi } from '../api/etcd/server.ts';
import { authCommand, roleCommand, userCommand } from './auth.ts';
import { benchCommand } from './bench.ts';
import { endpointCommand, memberCommand } from './cluster.ts';
import { electCommand, lockCommand } from './concurrency.ts';
import { kvCommands } from './kv.ts';
import { leaseCommand } from './lease.ts';
import { serveCommand } from './serve.ts';
import { snapshotCommand } from './snapshot.ts';

export const VERSION = '0.1.0';

const program = new Command('conclave')
  .description("Conclave: a distributed coordination service speaking etcd's v3 API")
  .version(VERSION, '--version', 'print the version')
  .showHelpAfterError();
program.addCommand(serveCommand(startClientApi));
program.addCommand(snapshotCommand());
for (const cmd of [...kvCommands(), leaseCommand(), lockCommand(), electCommand(), memberCommand(), endpointCommand(), userCommand(), roleCommand(), authCommand(), benchCommand()]) {
  program.addCommand(cmd);
}
program
  .command('version')
  .description('print the version')
  .action(() => console.log(`conclave ${VERSION}`));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // A catalogued condition (it has a code: bad flags, a bad snapshot file…) in etcdctl's form; a bug with its stack.
  const known = e instanceof Error && typeof (e as Error & { code?: unknown }).code === 'string';
  console.error(known ? `Error: ${(e as Error).message}` : e);
  process.exit(1);
}
