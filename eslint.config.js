// Lint: typescript-eslint's recommended rules, plus the one architectural rule DESIGN.md
// cares most about: the data path (proxy/, dns/, rescue-protocol/) never imports the
// control plane (controller, sessions, registry, dashboard, admin, monitor, cli, daemon).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const controlPlane = [
  '**/src/controller/**',
  '**/src/sessions/**',
  '**/src/registry/**',
  '**/src/dashboard/**',
  '**/src/admin/**',
  '**/src/monitor/**',
  '**/src/cli/**',
  '**/src/daemon*',
  '**/src/storage/**',
  '**/src/demo/**',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/**/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        performance: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['proxy/**', 'dns/**', 'rescue-protocol/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: controlPlane,
              message: 'The data path must not import the control plane (DESIGN.md, STYLE.md 1).',
            },
          ],
        },
      ],
    },
  },
);
