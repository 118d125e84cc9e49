import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { Public } from './auth.guard';
import { CassandraService } from './cassandra.service';
import type { DashboardConfig } from './config';
import { KafkaHealth } from './kafka-health.service';
import { DashboardMetrics } from './metrics.service';
import { DashboardConfigToken } from './tokens';

interface Readiness {
  status: 'ready' | 'not ready';
  kafka: { up: boolean; consumer: string; detail?: string };
  cassandra: { up: boolean; detail?: string };
}

/**
 * Liveness, readiness (Kafka + Cassandra, each check time-boxed; they report, they don't throw) and metrics. Open
 * (no token): launchers, load balancers and Prometheus ask them, and they name no device.
 */
@Public()
@Controller()
export class HealthController {
  constructor(
    @Inject(DashboardConfigToken) private readonly config: DashboardConfig,
    private readonly cassandra: CassandraService,
    private readonly kafka: KafkaHealth,
    private readonly metrics: DashboardMetrics,
  ) {}

  @Get('healthz')
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async readyz(@Res({ passthrough: true }) res: Response): Promise<Readiness> {
    const t = this.config.healthTimeoutMs;
    const [k, c] = await Promise.all([this.kafka.ping(t), this.cassandra.ping(t)]);
    const consumer = this.kafka.consumerState;
    const ready = k.up && c.up && (consumer === 'joined' || consumer === 'rebalancing');
    res.status(ready ? 200 : 503);
    return {
      status: ready ? 'ready' : 'not ready',
      kafka: { up: k.up, consumer, ...(k.detail ? { detail: k.detail } : {}) },
      cassandra: { up: c.up, ...(c.detail ? { detail: c.detail } : {}) },
    };
  }

  @Get('metrics')
  async prometheus(@Res() res: Response): Promise<void> {
    res.setHeader('Content-Type', this.metrics.registry.contentType);
    res.send(await this.metrics.registry.metrics());
  }
}
