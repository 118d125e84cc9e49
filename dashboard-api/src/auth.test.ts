import { Controller, Get, Post, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';
import { Access, type Principal } from './access.service';
import { AdminOnly, AuthGuard, Caller } from './auth.guard';
import type { DashboardConfig } from './config';
import { HttpErrorsFilter } from './http-errors.filter';
import { DashboardMetrics } from './metrics.service';
import { SessionController } from './session.controller';
import { bearer, testConfig, TestTokens } from './testing';
import { DashboardConfigToken } from './tokens';

// The guard and the session routes in a TestingModule: roles (an admin-only route of the test, since the API has
// none yet: alert rules are issue 15), the origin check of state-changing requests, the login's content type, the
// cookie's attributes, and the session bound. The whole API with real services: access.int.test.ts.

@Controller('api/test')
class TestRoutes {
  @Get('read')
  read(@Caller() p: Principal): { role: string } {
    return { role: p.grant.role };
  }

  @AdminOnly()
  @Post('change')
  change(): { changed: true } {
    return { changed: true };
  }
}

async function start(config: DashboardConfig): Promise<{ app: INestApplication; base: string }> {
  const moduleRef = await Test.createTestingModule({
    controllers: [SessionController, TestRoutes],
    providers: [
      { provide: DashboardConfigToken, useValue: config },
      DashboardMetrics,
      Access,
      { provide: APP_GUARD, useClass: AuthGuard },
    ],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  app.useGlobalFilters(new HttpErrorsFilter());
  await app.listen(0, '127.0.0.1');
  return { app, base: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

let app: INestApplication;
let base: string;

beforeAll(async () => {
  ({ app, base } = await start(testConfig()));
});

afterAll(async () => {
  await app.close();
});

const login = (token: unknown, headers: Record<string, string> = {}, at = base) =>
  fetch(`${at}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ token }),
  });

describe('roles', () => {
  it('lets a viewer read and refuses it a state change (403); an admin may', async () => {
    expect(await (await fetch(`${base}/api/test/read`, { headers: bearer(TestTokens.viewer) })).json()).toEqual({
      role: 'viewer',
    });
    const viewer = await fetch(`${base}/api/test/change`, { method: 'POST', headers: bearer(TestTokens.viewer) });
    expect([viewer.status, await viewer.json()]).toEqual([403, { error: 'this route needs an admin token' }]);
    const admin = await fetch(`${base}/api/test/change`, { method: 'POST', headers: bearer(TestTokens.admin) });
    expect(admin.status).toBe(201);
    const none = await fetch(`${base}/api/test/change`, { method: 'POST' });
    expect(none.status).toBe(401);
  });
});

describe('login', () => {
  it('sets an HttpOnly, SameSite=Strict session cookie that expires with the session, and says who', async () => {
    const res = await login(TestTokens.tenant);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { expiresAt: number };
    expect(body).toEqual({ role: 'viewer', devices: ['tenant-*'], via: 'session', expiresAt: expect.any(Number) });
    expect(body.expiresAt - Date.now()).toBeGreaterThan(12 * 3_600_000 - 10_000);
    expect(res.headers.get('set-cookie')).toMatch(
      /^fleetpulse_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/,
    );
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it("takes JSON only (415), a token field (400), a body within the parser's limit (413), and a known token (401)", async () => {
    const form = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${TestTokens.admin}`,
    });
    expect([form.status, await form.json()]).toEqual([415, { error: 'send {"token": "..."} as application/json' }]);
    const text = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ token: TestTokens.admin }),
    });
    expect(text.status).toBe(415);
    expect((await login(42)).status).toBe(400);
    const huge = await login('x'.repeat(200_000));
    expect([huge.status, await huge.json()]).toEqual([413, { error: 'request body too large' }]);
    const wrong = await login('test-admin-token-9');
    expect([wrong.status, await wrong.json(), wrong.headers.get('set-cookie')]).toEqual([
      401,
      { error: 'unknown token' },
      null,
    ]);
  });

  it("refuses a state change from another origin's page (CSRF), whatever the credential", async () => {
    const evil = await login(TestTokens.admin, { origin: 'https://evil.example' });
    expect([evil.status, await evil.json()]).toEqual([
      403,
      { error: 'origin https://evil.example may not call this API' },
    ]);
    expect((await login(TestTokens.admin, { origin: base })).status).toBe(200);
    const out = await fetch(`${base}/api/session`, { method: 'DELETE', headers: { origin: 'https://evil.example' } });
    expect(out.status).toBe(403);
    const change = await fetch(`${base}/api/test/change`, {
      method: 'POST',
      headers: { ...bearer(TestTokens.admin), origin: 'http://dashboard.example' },
    });
    expect(change.status).toBe(403);
  });

  it("ends a token's oldest session past its bound, and answers 503 with Retry-After when every slot is live", async () => {
    const small = await start(testConfig({ maxSessions: 3, maxSessionsPerToken: 2 }));
    try {
      const cookieOf = (r: Response) => r.headers.get('set-cookie')!.split(';')[0]!;
      const whoami = async (cookie: string) =>
        (await fetch(`${small.base}/api/session`, { headers: { cookie } })).status;
      const a1 = cookieOf(await login(TestTokens.admin, {}, small.base));
      const a2 = cookieOf(await login(TestTokens.admin, {}, small.base));
      const a3 = cookieOf(await login(TestTokens.admin, {}, small.base));
      expect([await whoami(a1), await whoami(a2), await whoami(a3)]).toEqual([401, 200, 200]);
      expect((await login(TestTokens.viewer, {}, small.base)).status).toBe(200);
      const full = await login(TestTokens.tenant, {}, small.base);
      expect([full.status, full.headers.get('retry-after'), await full.json()]).toEqual([
        503,
        '60',
        { error: 'every one of the 3 sessions is in use; try again later' },
      ]);
      expect(small.app.get(Access).sessions.size).toBe(3);
    } finally {
      await small.app.close();
    }
  });

  it('marks the cookie Secure when configured', async () => {
    const secure = await start(testConfig({ cookieSecure: true }));
    try {
      const res = await login(TestTokens.viewer, {}, secure.base);
      expect(res.headers.get('set-cookie')).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    } finally {
      await secure.app.close();
    }
  });
});
