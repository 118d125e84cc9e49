import { Controller, Get, Inject } from '@nestjs/common';
import type { DashboardConfig } from './config';
import { DashboardConfigToken } from './tokens';

export interface ModelsAnswer {
  /** The scoring service's model status as it sends it: name, file, active (version, features, ...), lastError. */
  models: unknown[];
  /** Present when the scoring service could not be asked; `models` is then empty. */
  error?: string;
}

/**
 * GET /api/models: the scoring service's model status, proxied. Always 200 so the dashboard can show the reason
 * in place: an unreachable or failing scoring service answers `{"models": [], "error": "..."}`.
 */
@Controller('api')
export class ModelsController {
  constructor(@Inject(DashboardConfigToken) private readonly config: DashboardConfig) {}

  @Get('models')
  async models(): Promise<ModelsAnswer> {
    const url = `${this.config.scoringUrl}${this.config.scoringModelsPath}`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(this.config.healthTimeoutMs) });
    } catch (e) {
      const reason = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
      return { models: [], error: `scoring service unreachable: ${url}: ${reason}` };
    }
    if (!res.ok) return { models: [], error: `scoring service answered ${res.status} at ${url}` };
    try {
      const body = (await res.json()) as unknown;
      const models = Array.isArray(body) ? body : (body as { models?: unknown }).models;
      if (!Array.isArray(models)) return { models: [], error: `scoring service sent no model list at ${url}` };
      return { models };
    } catch (e) {
      return { models: [], error: `scoring service sent invalid JSON at ${url}: ${String(e)}` };
    }
  }
}
