import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { Public } from './auth.guard';
import type { DashboardConfig } from './config';
import { DashboardConfigToken } from './tokens';

/** Reached only when the built UI is missing (static files are served before routes): says how to build it. */
@Controller()
export class UiController {
  constructor(@Inject(DashboardConfigToken) private readonly config: DashboardConfig) {}

  @Public()
  @Get()
  root(@Res() res: Response): void {
    res
      .status(503)
      .type('text/plain')
      .send(
        `fleetpulse dashboard: the UI is not built (no ${this.config.uiDir}/index.html); run: npm run build -w dashboard-ui\n`,
      );
  }
}
