import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests open real sockets on 127.0.0.x; forks keep each file's sockets and
    // process-wide state (signal handlers, fds) in a process of its own.
    pool: 'forks',
  },
});
