import {
  createParamDecorator,
  ForbiddenException,
  HttpException,
  HttpStatus,
  Injectable,
  SetMetadata,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { Access, type Principal } from './access.service';

const PublicKey = 'fleetpulse:public';
const AdminKey = 'fleetpulse:admin';

/** A route anyone may call (liveness, readiness, metrics, the UI, login and sign-out). */
export const Public = () => SetMetadata(PublicKey, true);
/** A route that changes state: `admin` tokens only (a viewer gets 403). */
export const AdminOnly = () => SetMetadata(AdminKey, true);

/** Methods that may change state: a browser page of another origin may not send them (CSRF). */
const Unsafe = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type Authenticated = Request & { principal?: Principal };

/**
 * The caller of an authenticated route (the guard put it there). A route without the guard in front (a test module)
 * is refused rather than served to nobody in particular.
 */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const p = ctx.switchToHttp().getRequest<Authenticated>().principal;
  if (!p) throw new UnauthorizedException('no token');
  return p;
});

/** 429 with Retry-After while the caller's address is past its failed logins (FLEETPULSE_LOGIN_FAILURES_*). */
export function throttleFailedLogins(access: Access, req: Request, res: Response): void {
  const wait = access.throttled(req.socket.remoteAddress);
  if (wait === 0) return;
  access.refused('http', 'failed logins');
  res.setHeader('Retry-After', String(wait));
  throw new HttpException('too many failed logins from this address; retry later', HttpStatus.TOO_MANY_REQUESTS);
}

/**
 * Every HTTP route needs a token or a session unless marked `@Public()` (fail closed: a new route is protected
 * without anyone remembering to). No credential, or a wrong one: 401 with `WWW-Authenticate: Bearer`; a viewer on an
 * `@AdminOnly()` route: 403. A state-changing method from a browser page of an origin that is neither the
 * dashboard's own nor configured is 403 whatever its credential (with SameSite=Strict cookies and JSON bodies this
 * is the second lock, for sibling sub-domains, which count as the same site). socket.io and Kafka handlers are not
 * HTTP: `/live` authenticates its connections itself (live.gateway.ts).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly access: Access,
  ) {}

  canActivate(ctx: ExecutionContext): boolean {
    if (ctx.getType() !== 'http') return true;
    const req = ctx.switchToHttp().getRequest<Authenticated>();
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (Unsafe.has(req.method) && !this.access.originAllowed(req.headers.origin, req.headers.host)) {
      this.access.refused('http', 'origin');
      throw new ForbiddenException(`origin ${req.headers.origin} may not call this API`);
    }
    if (this.reflector.getAllAndOverride<boolean>(PublicKey, targets)) return true;
    throttleFailedLogins(this.access, req, ctx.switchToHttp().getResponse<Response>());
    const p = this.access.authenticate({ authorization: req.headers.authorization, cookie: req.headers.cookie });
    if (typeof p === 'string') {
      this.access.refused('http', p);
      if (p !== 'no token') this.access.loginFailed(req.socket.remoteAddress);
      ctx.switchToHttp().getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="fleetpulse"');
      throw new UnauthorizedException(p);
    }
    if (p.grant.role !== 'admin' && this.reflector.getAllAndOverride<boolean>(AdminKey, targets)) {
      this.access.refused('http', 'not admin');
      throw new ForbiddenException('this route needs an admin token');
    }
    req.principal = p;
    return true;
  }
}
