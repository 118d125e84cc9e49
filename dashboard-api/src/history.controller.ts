import { Controller, Get, Inject, NotFoundException, Param, Query, Res } from '@nestjs/common';
import type { AnomalyScore } from '@fleetpulse/contracts';
import type { Response } from 'express';
import type { DashboardConfig } from './config';
import type { Principal } from './access.service';
import { Caller } from './auth.guard';
import { HistoryService } from './history.service';
import { parseAnomalyQuery, parseDeviceId, parseDevicesQuery, parseSeriesQuery, parseWindowsQuery } from './query';
import { DashboardConfigToken } from './tokens';
import type { DeviceSummary, SeriesPage, WindowsPage } from './wire';

/**
 * REST of the contract (docs/contract.md, "Dashboard API"), with bounded answers:
 * - device list: `limit` (default 1000, max 10000) devices per page in storage order; header `X-Next` is the `next`
 *   of the following page (the device it starts with), absent on the last one;
 * - history (per-metric points and window records, from the `windows` table, stored resolutions only): `limit`
 *   (points: default 1000, max 10000; windows: default 1000, max 5000) per page, and `next`: the windowStart to pass
 *   as `from` for the next page, null on the last one;
 * - anomalies: newest first, at most `limit` (default 500, max 5000); when cut, header `X-Next-To` gives the `to`
 *   of the next page (rows of that exact window start may repeat: de-duplicate by device, window, resolution, model).
 * A device-limited token sees only its devices: in the list and the anomalies (whose pages may then hold fewer than
 * `limit`, even none, with the header set: a page reads a bounded number of rows), and any other device is 404.
 */
@Controller('api')
export class HistoryController {
  private readonly stored: readonly string[];

  constructor(
    private readonly history: HistoryService,
    @Inject(DashboardConfigToken) config: DashboardConfig,
  ) {
    this.stored = config.storedResolutions;
  }

  @Get('devices')
  async devices(
    @Caller() caller: Principal,
    @Query() query: Record<string, unknown>,
    @Res({ passthrough: true }) res: Response,
  ): Promise<DeviceSummary[]> {
    const page = await this.history.devices(parseDevicesQuery(query), caller.grant.scope);
    if (page.next !== null) res.setHeader('X-Next', page.next);
    return page.devices;
  }

  @Get('devices/:id/metrics/:metric')
  async series(
    @Caller() caller: Principal,
    @Param('id') id: string,
    @Param('metric') metric: string,
    @Query() query: Record<string, unknown>,
  ): Promise<SeriesPage> {
    const q = parseSeriesQuery(id, metric, query, this.stored);
    await this.requireDevice(q.deviceId, caller);
    return this.history.series(q);
  }

  @Get('devices/:id/windows')
  async windows(
    @Caller() caller: Principal,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
  ): Promise<WindowsPage> {
    const q = parseWindowsQuery(id, query, this.stored);
    await this.requireDevice(q.deviceId, caller);
    return this.history.windows(q);
  }

  @Get('anomalies')
  async anomalies(
    @Caller() caller: Principal,
    @Query() query: Record<string, unknown>,
    @Res({ passthrough: true }) res: Response,
  ): Promise<AnomalyScore[]> {
    const q = parseAnomalyQuery(query);
    if (q.deviceId !== undefined) await this.requireDevice(q.deviceId, caller);
    const page = await this.history.anomalies(q, caller.grant.scope);
    if (page.next !== null) res.setHeader('X-Next-To', String(page.next + 1));
    return page.scores;
  }

  /** A device the caller may not see is as unknown as one that does not exist (404), and is never looked up. */
  private async requireDevice(id: string, caller: Principal): Promise<void> {
    parseDeviceId(id);
    if (!caller.grant.scope.allows(id) || !(await this.history.deviceExists(id)))
      throw new NotFoundException(`unknown device "${id}"`);
  }
}
