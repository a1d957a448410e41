// Lint rules, including the layering of DESIGN.md section 1: the core (main/) never imports
// electron, react or the renderer; the renderer and the Electron shell share only the contract.
// Import strings are matched by regex, so the rules hold without resolving any file.
import tseslint from 'typescript-eslint';

const noUi = [
  {
    regex: '^(electron|react|react-dom)(/.*)?$',
    message: 'the core never imports electron or react (DESIGN.md section 1)',
  },
  {
    regex: '(^|/)(renderer|electron)/',
    message: 'the core never imports the renderer or the Electron shell',
  },
];
const onlyContract = [
  {
    regex: '(^|/)main/(?!contract/)',
    message: 'the renderer and the Electron shell import only the contract (main/contract)',
  },
  {
    regex: '(^|/)(plugins|native)/',
    message: 'the renderer and the Electron shell import only the contract (main/contract)',
  },
];
// The Electron main process is a Node process and a D-Bus client of the core like the CLI and
// `serve` (polkit checks it as the user who runs it): it may use the client, nothing else of main/.
const contractOrClient = [
  {
    regex: '(^|/)main/(?!contract/|client/)',
    message: 'the Electron main process imports only the contract and the D-Bus client',
  },
  {
    regex: '(^|/)(plugins|native)/',
    message: 'the Electron main process imports only the contract and the D-Bus client',
  },
];
const noNode = [
  {
    regex: '^(node:.*|fs|path|child_process|os|net|dbus-next|better-sqlite3|electron)(/.*)?$',
    message: 'the renderer runs sandboxed in a browser: no Node modules',
  },
  { regex: '(^|/)electron/', message: 'the renderer reaches the shell only through the preload bridge' },
];
const restrict = (...groups) => ['error', { patterns: groups.flat() }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'test-artifacts/**', 'coverage/**'] },
  ...tseslint.configs.strict,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['main/**', 'plugins/**', 'native/**', 'bench/**'],
    rules: { 'no-restricted-imports': restrict(noUi) },
  },
  {
    files: ['main/contract/**'],
    rules: {
      'no-restricted-imports': restrict(noUi, [
        { regex: '^\\.\\./', message: 'the contract imports nothing of the project' },
      ]),
    },
  },
  { files: ['electron/**'], rules: { 'no-restricted-imports': restrict(onlyContract) } },
  { files: ['electron/main.ts'], rules: { 'no-restricted-imports': restrict(contractOrClient) } },
  { files: ['renderer/**'], rules: { 'no-restricted-imports': restrict(onlyContract, noNode) } },
);
