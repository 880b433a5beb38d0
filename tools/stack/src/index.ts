// Public API of @finance/local-stack: provisions and runs the real Postgres, Kafka and OPA for local work and tests.
export {
  startStack,
  stopStack,
  readStackState,
  type StackOptions,
  type RunningStack,
} from './stack';
export type { StackState, StackAddresses, PostgresState, KafkaState, OpaState } from './state';
export type { ProcessRecord } from './processes';
export { StackPrerequisiteError, StackAlreadyRunningError, type StackTool } from './errors';
export {
  ensureDatabases,
  dropDatabases,
  dropDatabasesWithPrefix,
  databaseUrl,
  maskUrl,
} from './postgres';
export {
  ensureTopics,
  deleteTopicsWithPrefix,
  ensureKafkaLibs,
  KAFKA_VERSION,
  type TopicSpec,
} from './kafka';
export { ensureOpaBinary, OPA_VERSION, opaServerArgs, syncPolicies } from './opa';
export { toolsCacheDir } from './prerequisites';
export { isPidAlive, pathExists } from './files';
