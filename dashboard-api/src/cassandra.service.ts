import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { cassandraClientOptions } from '@fleetpulse/runtime/cassandra';
import { Client, types } from 'cassandra-driver';
import { DashboardConfigToken } from './tokens';
import type { DashboardConfig } from './config';

/** Cassandra being down is an answer (503), not a crash: the API comes up anyway and keeps reconnecting. */
export class StorageUnavailable extends Error {
  override name = 'StorageUnavailable';
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

@Injectable()
export class CassandraService implements OnModuleInit, OnApplicationShutdown {
  private readonly log = new Logger('Cassandra');
  readonly client: Client;
  private connected = false;
  private lastError = 'not connected yet';
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(@Inject(DashboardConfigToken) private readonly config: DashboardConfig) {
    // The shared options (LOCAL_QUORUM, the contact points' port for discovered nodes), with the API's timeouts.
    this.client = new Client(
      cassandraClientOptions('dashboard-api', config, {
        keyspace: config.keyspace,
        socketOptions: { connectTimeout: 5000, readTimeout: 10_000 },
      }),
    );
  }

  async onModuleInit(): Promise<void> {
    await this.connect();
  }

  /** First attempt at start-up; while it fails, again every 5 s in the background. */
  private async connect(): Promise<void> {
    try {
      await this.client.connect();
      this.connected = true;
      this.log.log(`connected to ${this.config.cassandraContactPoints.join(',')} (keyspace ${this.config.keyspace})`);
    } catch (e) {
      this.lastError = errorText(e);
      this.log.warn(
        `cannot reach Cassandra at ${this.config.cassandraContactPoints.join(',')}: ${this.lastError}; retrying in 5 s`,
      );
      if (!this.closed) this.retry = setTimeout(() => void this.connect(), 5000);
    }
  }

  /** `fetchSize`: rows per page (rs.rows is the first); `pageState`: a previous result's, to read its next page. */
  async execute(
    query: string,
    params: unknown[],
    options: { fetchSize?: number; pageState?: string } = {},
  ): Promise<types.ResultSet> {
    if (!this.connected) throw new StorageUnavailable(`Cassandra unavailable: ${this.lastError}`);
    try {
      return await this.client.execute(query, params, { prepare: true, ...options });
    } catch (e) {
      if (e instanceof Error && (e.name === 'NoHostAvailableError' || e.name === 'OperationTimedOutError'))
        throw new StorageUnavailable(`Cassandra unavailable: ${e.message}`);
      throw e;
    }
  }

  /**
   * Runs `f` on the client (code that takes a cassandra-driver Client, such as @fleetpulse/alerting's RuleStore) with
   * the same answers as `execute`: StorageUnavailable (503) while Cassandra cannot be reached.
   */
  async use<T>(f: (client: Client) => Promise<T>): Promise<T> {
    if (!this.connected) throw new StorageUnavailable(`Cassandra unavailable: ${this.lastError}`);
    try {
      return await f(this.client);
    } catch (e) {
      if (e instanceof Error && (e.name === 'NoHostAvailableError' || e.name === 'OperationTimedOutError'))
        throw new StorageUnavailable(`Cassandra unavailable: ${e.message}`);
      throw e;
    }
  }

  /** Readiness: a trivial query answered within `timeoutMs`. Never throws. */
  async ping(timeoutMs: number): Promise<{ up: boolean; detail?: string }> {
    if (!this.connected) return { up: false, detail: this.lastError };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout of ${timeoutMs} ms exceeded`)), timeoutMs);
    });
    try {
      await Promise.race([this.client.execute('SELECT release_version FROM system.local'), timeout]);
      return { up: true };
    } catch (e) {
      return { up: false, detail: errorText(e) };
    } finally {
      clearTimeout(timer);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.client.shutdown();
  }
}
