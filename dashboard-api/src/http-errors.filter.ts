import { Catch, HttpException, HttpStatus, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { StorageUnavailable } from './cassandra.service';
import { QueryError } from './query';

/**
 * Every HTTP error answers `{"error": "..."}` (shared/design.md, "Dashboard API"): 400 with the reason for bad
 * parameters, 404 for unknown devices and routes, 503 while Cassandra is unreachable, 500 otherwise (logged).
 */
@Catch()
export class HttpErrorsFilter implements ExceptionFilter {
  private readonly log = new Logger('HTTP');

  catch(e: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw e;
    const res = host.switchToHttp().getResponse<Response>();
    let status: number = HttpStatus.INTERNAL_SERVER_ERROR;
    let error = 'internal error';
    if (e instanceof QueryError) {
      status = HttpStatus.BAD_REQUEST;
      error = e.message;
    } else if (e instanceof StorageUnavailable) {
      status = HttpStatus.SERVICE_UNAVAILABLE;
      error = e.message;
      res.setHeader('Retry-After', '5');
    } else if (e instanceof HttpException) {
      status = e.getStatus();
      const body = e.getResponse();
      error =
        typeof body === 'string'
          ? body
          : typeof (body as { message?: unknown }).message === 'string'
            ? (body as { message: string }).message
            : e.message;
    } else {
      this.log.error(`unhandled: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    if (res.headersSent) return;
    res.status(status).json({ error });
  }
}
