import { Catch, HttpException, HttpStatus, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { RuleInvalid } from './alerts.controller';
import { StorageUnavailable } from './cassandra.service';
import { QueryError } from './query';

/** An http-errors error meant for the client (`expose`), such as body-parser raises: a 4xx with its status. */
function isClientError(e: unknown): e is Error & { status: number; type?: string } {
  const x = e as { status?: unknown; expose?: unknown };
  return e instanceof Error && typeof x.status === 'number' && x.status >= 400 && x.status < 500 && x.expose === true;
}

/**
 * Every HTTP error answers `{"error": "..."}` (docs/contract.md, "Dashboard API"): 400 with the reason for bad
 * parameters, 404 for unknown devices and routes, 413 for a body over the parser's limit, 503 while Cassandra is
 * unreachable, 500 otherwise (logged).
 */
@Catch()
export class HttpErrorsFilter implements ExceptionFilter {
  private readonly log = new Logger('HTTP');

  catch(e: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw e;
    const res = host.switchToHttp().getResponse<Response>();
    let status: number = HttpStatus.INTERNAL_SERVER_ERROR;
    let error = 'internal error';
    if (e instanceof RuleInvalid) {
      // Every problem of the rule, each naming its field (parseRule), and all of them in `error`.
      if (!res.headersSent) res.status(HttpStatus.BAD_REQUEST).json({ error: e.message, errors: e.errors });
      return;
    }
    if (e instanceof QueryError) {
      status = HttpStatus.BAD_REQUEST;
      error = e.message;
    } else if (e instanceof StorageUnavailable) {
      status = HttpStatus.SERVICE_UNAVAILABLE;
      error = e.message;
      res.setHeader('Retry-After', '5');
    } else if (isClientError(e)) {
      // body-parser's (http-errors): e.g. 413 for a body over its limit (100 KB), before any route runs.
      status = e.status;
      error = e.type === 'entity.too.large' ? 'request body too large' : e.message;
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
