import { Module, type DynamicModule } from '@nestjs/common';
import { Tracing } from '@fleetpulse/runtime/tracing';
import { APP_GUARD } from '@nestjs/core';
import { Access } from './access.service';
import { AlertsController } from './alerts.controller';
import { AuthGuard } from './auth.guard';
import { CassandraService } from './cassandra.service';
import type { DashboardConfig } from './config';
import { HealthController } from './health.controller';
import { HistoryController } from './history.controller';
import { HistoryService } from './history.service';
import { KafkaHealth } from './kafka-health.service';
import { LiveConsumer } from './live.consumer';
import { LiveGateway } from './live.gateway';
import { LiveTracing } from './live.tracing';
import { DashboardMetrics } from './metrics.service';
import { ModelsController } from './models.controller';
import { SessionController } from './session.controller';
import { UiController } from './ui.controller';
import { DashboardConfigToken } from './tokens';

@Module({})
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module is a decorated class with a static factory
export class AppModule {
  /** `tracing`: tests' (an in-memory exporter); by default what config.tracing says. */
  static forRoot(config: DashboardConfig, tracing?: Tracing): DynamicModule {
    return {
      module: AppModule,
      controllers: [
        HistoryController,
        AlertsController,
        ModelsController,
        SessionController,
        HealthController,
        LiveConsumer,
        UiController,
      ],
      providers: [
        { provide: DashboardConfigToken, useValue: config },
        Access,
        // Every HTTP route needs a token unless marked @Public() (auth.guard.ts).
        { provide: APP_GUARD, useClass: AuthGuard },
        CassandraService,
        HistoryService,
        KafkaHealth,
        DashboardMetrics,
        LiveGateway,
        {
          provide: LiveTracing,
          useFactory: async (metrics: DashboardMetrics) =>
            new LiveTracing(tracing ?? (await Tracing.start('fleetpulse-dashboard-api', config.tracing)), metrics),
          inject: [DashboardMetrics],
        },
      ],
    };
  }
}
