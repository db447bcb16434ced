#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build makes dist/).
import { main } from '../dist/src/cli/main.js';

main(process.argv).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
