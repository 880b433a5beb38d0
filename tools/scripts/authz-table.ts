// `npm run authz:table`: writes the README's who-may-call-what table from the policy's answers
// (`-- --check` only reports whether the README is current).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { computeAccessTable, TABLE_BEGIN, TABLE_END } from '@finance/authz';
import { policyAllows } from '@finance/testing';
import { ROOT } from './local-system';

async function main(): Promise<number> {
  const readmeFile = join(ROOT, 'README.md');
  const readme = await readFile(readmeFile, 'utf8');
  const begin = readme.indexOf(TABLE_BEGIN);
  const end = readme.indexOf(TABLE_END);
  if (begin < 0 || end < begin) {
    process.stderr.write(`README.md lacks the markers ${TABLE_BEGIN} ... ${TABLE_END}\n`);
    return 1;
  }
  const { markdown } = await computeAccessTable(policyAllows);
  const next = await format(
    `${readme.slice(0, begin + TABLE_BEGIN.length)}\n\n${markdown}\n\n${readme.slice(end)}`,
    { ...(await resolveConfig(readmeFile)), filepath: readmeFile },
  );
  if (next === readme) {
    process.stdout.write('README.md: the who-may-call-what table matches the policy\n');
    return 0;
  }
  if (process.argv.includes('--check')) {
    process.stderr.write(
      'README.md: the who-may-call-what table differs from the policy; run npm run authz:table\n',
    );
    return 1;
  }
  await writeFile(readmeFile, next);
  process.stdout.write('README.md: who-may-call-what table updated from the policy\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `authz-table: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  },
);
