// Lint rules for the whole workspace; module boundaries are enforced from project tags.
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Tests and their support code (fixtures, fake transports) may use the shared test harness.
const TEST_FILES = [
  '**/*.spec.ts',
  '**/*.int-spec.ts',
  '**/*.e2e-spec.ts',
  '{apps,libs}/*/test/**/*.ts',
  'libs/*/src/test-fixtures/**/*.ts',
];

// Tag rules; test files may additionally use the shared test harness.
function depConstraints({ tests }) {
  const testing = tests ? ['type:testing'] : [];
  const appDeps = ['type:domain', 'type:infra', 'type:contracts', ...testing];
  return [
    // Apps are leaves: nothing imports an app, and an app never imports another app.
    { sourceTag: 'type:app', onlyDependOnLibsWithTags: appDeps },
    // Pure business logic: no I/O libraries, no infrastructure.
    {
      sourceTag: 'type:domain',
      onlyDependOnLibsWithTags: ['type:domain', 'type:contracts', ...testing],
    },
    {
      sourceTag: 'type:infra',
      onlyDependOnLibsWithTags: ['type:infra', 'type:domain', 'type:contracts', ...testing],
    },
    // Contracts are the shared language and depend on nothing of ours.
    { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: [] },
    {
      sourceTag: 'type:testing',
      onlyDependOnLibsWithTags: ['type:testing', 'type:infra', 'type:domain', 'type:contracts'],
    },
    // A bounded context uses only its own code and shared libraries.
    { sourceTag: 'scope:trading', onlyDependOnLibsWithTags: ['scope:trading', 'scope:shared'] },
    {
      sourceTag: 'scope:settlement',
      onlyDependOnLibsWithTags: ['scope:settlement', 'scope:shared'],
    },
    { sourceTag: 'scope:risk', onlyDependOnLibsWithTags: ['scope:risk', 'scope:shared'] },
    {
      sourceTag: 'scope:compliance',
      onlyDependOnLibsWithTags: ['scope:compliance', 'scope:shared'],
    },
    { sourceTag: 'scope:shared', onlyDependOnLibsWithTags: ['scope:shared'] },
    // Benchmarks measure the code of every context; nothing depends on them.
    {
      sourceTag: 'scope:bench',
      onlyDependOnLibsWithTags: [
        'scope:shared',
        'scope:trading',
        'scope:settlement',
        'scope:risk',
        'scope:compliance',
      ],
    },
  ];
}

const boundaries = (tests) => [
  'error',
  { enforceBuildableLibDependency: false, allow: [], depConstraints: depConstraints({ tests }) },
];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.local/**', '.nx/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': boundaries(false),
      // Deep imports bypass a library's public API.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@finance/*/*'], message: 'Import a library through its entry point only.' },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  { files: TEST_FILES, rules: { '@nx/enforce-module-boundaries': boundaries(true) } },
  {
    files: ['**/*.cjs', '*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
