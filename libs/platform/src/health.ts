// Liveness and readiness: ready only while the service's database and Kafka both answer.
import { Controller, Get, HttpCode, Inject, Injectable, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { KafkaProbe, withTimeout } from './kafka-probe';

export const KAFKA_PROBE = Symbol('KAFKA_PROBE');
const CHECK_TIMEOUT_MS = 2_000;

type CheckResult = { status: 'up' } | { status: 'down'; error: string };

export interface Readiness {
  status: 'ready' | 'not_ready';
  checks: { database: CheckResult; kafka: CheckResult } & Record<string, CheckResult>;
}

@Injectable()
export class ReadinessService {
  private shuttingDown = false;
  private readonly extra = new Map<string, () => string | null>();

  constructor(
    private readonly dataSource: DataSource,
    @Inject(KAFKA_PROBE) private readonly kafka: KafkaProbe,
  ) {}

  /** Called first on SIGTERM so load balancers stop sending work while requests drain. */
  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  /** Adds a check that reports why the service cannot take work yet (null when it can). */
  addCheck(name: string, problem: () => string | null): void {
    this.extra.set(name, problem);
  }

  async check(): Promise<Readiness> {
    const [database, kafka] = await Promise.all([
      run(() =>
        withTimeout(
          this.dataSource.query('SELECT 1'),
          CHECK_TIMEOUT_MS,
          'database did not answer in time',
        ),
      ),
      run(() => this.kafka.check(CHECK_TIMEOUT_MS)),
    ]);
    const checks: Readiness['checks'] = { database, kafka };
    for (const [name, problem] of this.extra) {
      const error = problem();
      checks[name] = error === null ? { status: 'up' } : { status: 'down', error };
    }
    const up = Object.values(checks).every((c) => c.status === 'up') && !this.shuttingDown;
    return { status: up ? 'ready' : 'not_ready', checks };
  }
}

async function run(check: () => Promise<unknown>): Promise<CheckResult> {
  try {
    await check();
    return { status: 'up' };
  } catch (error) {
    return { status: 'down', error: error instanceof Error ? error.message : String(error) };
  }
}

@Controller('health')
export class HealthController {
  constructor(private readonly readiness: ReadinessService) {}

  @Get('live')
  @HttpCode(200)
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<Readiness> {
    const result = await this.readiness.check();
    reply.status(result.status === 'ready' ? 200 : 503);
    return result;
  }
}
