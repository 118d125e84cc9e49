import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import type { DashboardConfig } from './config';
import { DashboardConfigToken } from './tokens';

/**
 * Kafka's side of /readyz: the live consumer's state (set by main.ts from the transport's status stream) and a
 * time-boxed metadata request on a client of its own, which fails fast (no retries) instead of hanging the probe.
 */
@Injectable()
export class KafkaHealth implements OnApplicationShutdown {
  /** The live consumer: `starting`, `joined` (its group), `rebalancing`, `crashed`, `disconnected` or `stopped`. */
  consumerState = 'starting';
  private admin: Admin | undefined;
  private connecting: Promise<void> | undefined;

  constructor(@Inject(DashboardConfigToken) private readonly config: DashboardConfig) {}

  async ping(timeoutMs: number): Promise<{ up: boolean; detail?: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout of ${timeoutMs} ms exceeded`)), timeoutMs);
    });
    try {
      await Promise.race([this.describe(), timeout]);
      return { up: true };
    } catch (e) {
      // A fresh connection next time: a broken one may not notice by itself.
      const admin = this.admin;
      this.admin = undefined;
      this.connecting = undefined;
      void admin?.disconnect().catch(() => undefined);
      return { up: false, detail: e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(timer);
    }
  }

  private async describe(): Promise<void> {
    if (!this.admin) {
      this.admin = new Kafka({
        clientId: `${this.config.groupId}-health`,
        brokers: this.config.kafkaBrokers,
        logLevel: logLevel.NOTHING,
        retry: { retries: 0 },
        connectionTimeout: 1000,
      }).admin();
      this.connecting = this.admin.connect();
    }
    await this.connecting;
    await this.admin.describeCluster();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.admin?.disconnect().catch(() => undefined);
  }
}
