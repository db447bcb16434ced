// Test entry: runs the CLI from source (node --import tsx), so tests never depend on a stale dist/.
import { main } from '../../src/cli/main.js';

await main(process.argv);
