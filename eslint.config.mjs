// Lint rules, including the layering of DESIGN.md section 1: the core (main/) never imports
// electron, react or the renderer; the renderer and the Electron shell share only the contract.
// Inside main/ the path says who runs the code: common/ (both sides), service/ (the privileged
// core), client/ (CLI, serve, witness, D-Bus client: unprivileged), devhost/ (the development
// host), sdk/ (what plugins import). main/op-dbus.ts alone composes them into one program.
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
    regex: '(^|/)main/(?!common/contract/)',
    message: 'the renderer and the Electron shell import only the contract (main/common/contract)',
  },
  {
    regex: '(^|/)(plugins|native)/',
    message: 'the renderer and the Electron shell import only the contract (main/common/contract)',
  },
];
// The Electron main process is a Node process and a D-Bus client of the core like the CLI and
// `serve` (polkit checks it as the user who runs it): it may use the client, nothing else of main/.
const contractOrClient = [
  {
    regex: '(^|/)main/(?!common/contract/|client/dbus/|client/witness/)',
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
// Inside main/: which side may import which (a client never imports the service, and so on).
const side = (forbidden, message) => [{ regex: `(^|/)(${forbidden.join('|')})/`, message }];
const notPlugins = [
  { regex: '(^|/)plugins/', message: 'plugins are found through their manifests, never imported' },
];
const commonOnly = side(
  ['service', 'client', 'devhost', 'sdk'],
  'main/common is shared by every side and imports only main/common',
);
const clientRules = side(
  ['service', 'devhost'],
  'a client never imports the service or the development host',
);
const serviceRules = side(
  ['client', 'devhost'],
  'the service never imports a client or the development host',
);
const devhostRules = side(
  ['service', 'client'],
  'the development host starts the core as a process; it imports only main/common',
);
const sdkRules = side(['service', 'client', 'devhost'], 'the plugin SDK imports only main/common');
const pluginRules = [
  { regex: '(^|/)main/(?!sdk/)', message: 'a plugin imports only the SDK (main/sdk), never the engine' },
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
  { files: ['main/common/**'], rules: { 'no-restricted-imports': restrict(noUi, commonOnly, notPlugins) } },
  {
    files: ['main/common/contract/**'],
    // its tests may use the test support (fuzzing helpers): they are not part of what every side imports
    ignores: ['main/common/contract/**/*.test.ts'],
    rules: {
      'no-restricted-imports': restrict(noUi, [
        { regex: '^\\.\\./', message: 'the contract imports nothing of the project' },
      ]),
    },
  },
  { files: ['main/client/**'], rules: { 'no-restricted-imports': restrict(noUi, clientRules, notPlugins) } },
  { files: ['main/service/**'], rules: { 'no-restricted-imports': restrict(noUi, serviceRules) } },
  {
    files: ['main/devhost/**'],
    rules: { 'no-restricted-imports': restrict(noUi, devhostRules, notPlugins) },
  },
  { files: ['main/sdk/**'], rules: { 'no-restricted-imports': restrict(noUi, sdkRules, notPlugins) } },
  {
    files: ['plugins/**', 'examples/plugins/**'],
    rules: { 'no-restricted-imports': restrict(noUi, pluginRules) },
  },

  { files: ['electron/**'], rules: { 'no-restricted-imports': restrict(onlyContract) } },
  { files: ['electron/main.ts'], rules: { 'no-restricted-imports': restrict(contractOrClient) } },
  { files: ['renderer/**'], rules: { 'no-restricted-imports': restrict(onlyContract, noNode) } },
);
