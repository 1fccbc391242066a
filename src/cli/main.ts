/** Entry point of the `conclave` command. */
import { Command } from 'commander';
import { startClientApi } from '../api/etcd/server.ts';
import { serveCommand } from './serve.ts';
import { snapshotCommand } from './snapshot.ts';

export const VERSION = '0.1.0';

const program = new Command('conclave')
  .description("Conclave: a distributed coordination service speaking etcd's v3 API")
  .version(VERSION, '--version', 'print the version')
  .showHelpAfterError();
program.addCommand(serveCommand(startClientApi));
program.addCommand(snapshotCommand());
program
  .command('version')
  .description('print the version')
  .action(() => console.log(`conclave ${VERSION}`));

await program.parseAsync(process.argv);
