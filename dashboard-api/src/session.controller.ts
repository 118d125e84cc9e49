import {
  BadRequestException,
  Controller,
  Delete,
  Get,
  HttpCode,
  Post,
  Req,
  Res,
  ServiceUnavailableException,
  UnauthorizedException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { SessionsFull } from './access';
import { Access, SessionCookie, cookieValue, sessionInfo, type Principal } from './access.service';
import { Caller, Public, throttleFailedLogins } from './auth.guard';
import type { SessionInfo } from './wire';

/**
 * Sign-in for browsers: `POST /api/login` (the contract's name; `POST /api/session` is the same) exchanges a token
 * for the session cookie; `GET /api/session` says who is signed in; `DELETE /api/session` signs out.
 */
@Controller('api')
export class SessionController {
  constructor(private readonly access: Access) {}

  /**
   * Body `{"token": "..."}`, JSON only (415 otherwise: a cross-site form cannot send JSON without a CORS preflight,
   * which only configured origins pass). A wrong token is 401; a session cookie already there is replaced (its
   * session ends). 503 with `Retry-After` when every session slot is live.
   */
  @Public()
  @Post(['login', 'session'])
  @HttpCode(200)
  login(@Req() req: Request, @Res({ passthrough: true }) res: Response): SessionInfo {
    if (!req.is('application/json'))
      throw new UnsupportedMediaTypeException('send {"token": "..."} as application/json');
    const token = (req.body as { token?: unknown } | undefined)?.token;
    if (typeof token !== 'string') throw new BadRequestException('expected {"token": "..."}');
    throttleFailedLogins(this.access, req, res);
    const grant = this.access.grantOf(token);
    if (!grant) {
      this.access.refused('http', 'unknown token');
      this.access.loginFailed(req.socket.remoteAddress);
      throw new UnauthorizedException('unknown token');
    }
    this.endCookieSession(req);
    try {
      const { info, cookie } = this.access.login(grant);
      res.setHeader('Set-Cookie', cookie);
      res.setHeader('Cache-Control', 'no-store');
      return info;
    } catch (e) {
      if (!(e instanceof SessionsFull)) throw e;
      res.setHeader('Retry-After', '60');
      throw new ServiceUnavailableException(e.message);
    }
  }

  @Get('session')
  session(@Caller() p: Principal, @Res({ passthrough: true }) res: Response): SessionInfo {
    res.setHeader('Cache-Control', 'no-store');
    return sessionInfo(p.grant, p.via, p.session?.expiresAt ?? null);
  }

  /** Ends the cookie's session (its live sockets are closed) and clears the cookie; 204 whether or not one was live. */
  @Public()
  @Delete('session')
  @HttpCode(204)
  logout(@Req() req: Request, @Res({ passthrough: true }) res: Response): void {
    this.endCookieSession(req);
    res.setHeader('Set-Cookie', this.access.clearCookie);
  }

  private endCookieSession(req: Request): void {
    const id = cookieValue(req.headers.cookie, SessionCookie);
    const found = id === undefined ? undefined : this.access.sessions.find(id);
    if (found) this.access.sessions.end(found.key);
  }
}
