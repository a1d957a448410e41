import { serveStandIn } from './standin.js';

// The stand-in's process: `node standin-main.js ADDRESS UNIT_DIR [SEARCH_DIR...]`, started by the
// development host's systemd1 component; it serves until SIGTERM.

const [address, unitDir, ...searchPath] = process.argv.slice(2);
if (address === undefined || unitDir === undefined) {
  process.stderr.write('usage: standin-main ADDRESS UNIT_DIR [SEARCH_DIR...]\n');
  process.exit(2);
}
const served = await serveStandIn({ address, unitDir, searchPath });
process.stdout.write(
  `systemd1 stand-in serving on ${address}, units in ${unitDir} ${searchPath.join(' ')}\n`,
);
process.on('SIGTERM', () => {
  served.stop();
  process.exit(0);
});
