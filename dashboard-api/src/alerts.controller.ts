import {
  ConflictException,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  Res,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { parseRule, RuleStore, TooManyRules, type Rule } from '@fleetpulse/alerting';
import type { AlertTransition } from '@fleetpulse/contracts';
import type { Request, Response } from 'express';
import type { Principal } from './access.service';
import { AdminOnly, Caller } from './auth.guard';
import { CassandraService } from './cassandra.service';
import type { DashboardConfig } from './config';
import { HistoryService } from './history.service';
import { parseAlertQuery, parseDeviceId, RuleIdPattern } from './query';
import { DashboardConfigToken } from './tokens';
import type { AlertRuleView } from './wire';

/** A rule `parseRule` refused: `400 {"error": <the problems joined>, "errors": [...]}` (http-errors.filter.ts). */
export class RuleInvalid extends Error {
  override readonly name = 'RuleInvalid';
  constructor(readonly errors: string[]) {
    super(errors.join('; '));
  }
}

/**
 * Alert rules and the alert history (docs/contract.md, "Alerts (v2)"), on the alerting service's tables through
 * `@fleetpulse/alerting` (its `RuleStore`, `parseRule` and `transitionFromRow`: one definition of a rule and a row):
 * - `POST /api/alerts/rules` (admin; JSON only): `201` with the stored rule, `400` naming every bad field, `409` at
 *   the store's bound;
 * - `GET /api/alerts/rules` (any token): the rules in force, oldest first; `webhook` for admins only;
 * - `DELETE /api/alerts/rules/:id` (admin): `204`, `404` when no such rule is in force;
 * - `GET /api/alerts?state=&deviceId=&from=&to=&limit=`: transitions, newest window first, with the anomalies'
 *   bounds and paging (header `X-Next-To`).
 * A device-limited token sees the transitions of its devices only, and only the rules whose device glob stays within
 * its patterns (`DeviceScope.covers`); it may create and delete only such rules (a rule of another one is `404`, one
 * to create `400`): a rule's webhook receives every device its glob matches.
 */
@Controller('api/alerts')
export class AlertsController {
  private readonly rules: RuleStore;

  constructor(
    private readonly db: CassandraService,
    private readonly history: HistoryService,
    @Inject(DashboardConfigToken) config: DashboardConfig,
  ) {
    this.rules = new RuleStore(db.client, config.keyspace);
  }

  @AdminOnly()
  @Post('rules')
  @HttpCode(201)
  async create(@Caller() caller: Principal, @Req() req: Request): Promise<AlertRuleView> {
    // JSON only: a cross-site form cannot send it without a CORS preflight (as login's body).
    if (!req.is('application/json')) throw new UnsupportedMediaTypeException('send the rule as application/json');
    const parsed = parseRule(req.body as unknown);
    if (!parsed.ok) throw new RuleInvalid(parsed.errors);
    if (!caller.grant.scope.covers(parsed.rule.devices))
      throw new RuleInvalid([
        `devices: "${parsed.rule.devices}" may match devices this token does not see; use one of its patterns (${caller.grant.scope.patterns?.join(', ')}) or a narrower glob within one`,
      ]);
    try {
      return view(await this.db.use(() => this.rules.create(parsed.rule)), caller);
    } catch (e) {
      if (e instanceof TooManyRules) throw new ConflictException(e.message);
      throw e;
    }
  }

  @Get('rules')
  async list(@Caller() caller: Principal, @Res({ passthrough: true }) res: Response): Promise<AlertRuleView[]> {
    res.setHeader('Cache-Control', 'no-store');
    const rules = await this.db.use(() => this.rules.list());
    return rules.filter((r) => caller.grant.scope.covers(r.devices)).map((r) => view(r, caller));
  }

  @AdminOnly()
  @Delete('rules/:id')
  @HttpCode(204)
  async remove(@Caller() caller: Principal, @Param('id') id: string): Promise<void> {
    const unknown = new NotFoundException(`unknown alert rule "${id.slice(0, 64)}"`);
    if (!RuleIdPattern.test(id)) throw unknown;
    const rule = await this.db.use(() => this.rules.get(id));
    if (!rule || !caller.grant.scope.covers(rule.devices)) throw unknown;
    // Deleted meanwhile by another request: as unknown.
    if (!(await this.db.use(() => this.rules.delete(id)))) throw unknown;
  }

  @Get()
  async alerts(
    @Caller() caller: Principal,
    @Query() query: Record<string, unknown>,
    @Res({ passthrough: true }) res: Response,
  ): Promise<AlertTransition[]> {
    const q = parseAlertQuery(query);
    if (q.deviceId !== undefined) {
      parseDeviceId(q.deviceId);
      if (!caller.grant.scope.allows(q.deviceId) || !(await this.history.deviceExists(q.deviceId)))
        throw new NotFoundException(`unknown device "${q.deviceId}"`);
    }
    const page = await this.history.alerts(q, caller.grant.scope);
    if (page.next !== null) res.setHeader('X-Next-To', String(page.next + 1));
    return page.alerts;
  }
}

/** A rule as the caller may see it: the webhook for admins only. */
function view(rule: Rule, caller: Principal): AlertRuleView {
  if (caller.grant.role === 'admin') return rule;
  const { webhook: _, ...rest } = rule;
  return rest;
}
