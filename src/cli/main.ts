/** Entry point of the `conclave` command. Commands arrive with their issues (serve: the cluster issue). */
const USAGE = `Usage: conclave <command>

Conclave is a distributed coordination service speaking etcd's v3 API.

Commands:
  version   print the version
`;

const [command] = process.argv.slice(2);
if (command === 'version' || command === '--version') {
  console.log('conclave 0.1.0');
} else if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
  process.stdout.write(USAGE);
} else {
  process.stderr.write(`conclave: unknown command "${command}"\n\n${USAGE}`);
  process.exitCode = 2;
}
