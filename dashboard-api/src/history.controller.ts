import { Controller, Get, NotFoundException, Param, Query, Res } from '@nestjs/common';
import type { AnomalyScore } from '@fleetpulse/contracts';
import type { Response } from 'express';
import { HistoryService, type DeviceSummary, type SeriesPage } from './history.service';
import { parseAnomalyQuery, parseDeviceId, parseSeriesQuery } from './query';

/**
 * REST of the contract (shared/design.md, "Dashboard API"), with bounded answers:
 * - series pages: `limit` (default 1000, max 10000) points, and `next`: the windowStart to pass as `from` for the
 *   next page, null on the last one;
 * - anomalies: newest first, at most `limit` (default 500, max 5000); when cut, header `X-Next-To` gives the `to`
 *   of the next page (rows of that exact window start may repeat: de-duplicate by device, window, resolution, model).
 */
@Controller('api')
export class HistoryController {
  constructor(private readonly history: HistoryService) {}

  @Get('devices')
  async devices(@Res({ passthrough: true }) res: Response): Promise<DeviceSummary[]> {
    const { devices, truncated } = await this.history.devices();
    if (truncated) res.setHeader('X-Truncated', 'true');
    return devices;
  }

  @Get('devices/:id/metrics/:metric')
  async series(
    @Param('id') id: string,
    @Param('metric') metric: string,
    @Query() query: Record<string, unknown>,
  ): Promise<SeriesPage> {
    const q = parseSeriesQuery(id, metric, query);
    await this.requireDevice(q.deviceId);
    return this.history.series(q);
  }

  @Get('anomalies')
  async anomalies(
    @Query() query: Record<string, unknown>,
    @Res({ passthrough: true }) res: Response,
  ): Promise<AnomalyScore[]> {
    const q = parseAnomalyQuery(query);
    if (q.deviceId !== undefined) await this.requireDevice(q.deviceId);
    const page = await this.history.anomalies(q);
    if (page.next !== null) res.setHeader('X-Next-To', String(page.next + 1));
    return page.scores;
  }

  private async requireDevice(id: string): Promise<void> {
    parseDeviceId(id);
    if (!(await this.history.deviceExists(id))) throw new NotFoundException(`unknown device "${id}"`);
  }
}
