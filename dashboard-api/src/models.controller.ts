import { Controller, Get, Inject } from '@nestjs/common';
import type { DashboardConfig } from './config';
import { DashboardConfigToken } from './tokens';
import type { ModelStatus, ModelsAnswer } from './wire';

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
      // Passed on as the scoring service sent them: it owns their shape.
      return { models: models as ModelStatus[] };
    } catch (e) {
      return { models: [], error: `scoring service sent invalid JSON at ${url}: ${String(e)}` };
    }
  }
}
