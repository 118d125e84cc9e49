import { ServiceRegistry, startOpsServer } from './metrics';

describe('the ops endpoint', () => {
  it('answers /healthz, /readyz by the service, /metrics from its registry, its extra routes and a 404', async () => {
    const metrics = new ServiceRegistry();
    metrics.counter('test_things_total', 'Things', ['kind']).inc({ kind: 'a' }, 3);
    let ready = false;
    let detailed = false;
    const { server, port } = await startOpsServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      ready: () => (detailed ? { ready, kafka: 'down' } : ready),
      route: (path, _req, res) => path === '/extra' && (res.writeHead(200).end('extra'), true),
    });
    try {
      const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
      expect((await get('/healthz')).status).toBe(200);
      expect((await get('/readyz')).status).toBe(503);
      ready = true;
      expect(await (await get('/readyz')).json()).toEqual({ status: 'ready' });
      ready = false;
      detailed = true;
      const down = await get('/readyz');
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ status: 'not ready', kafka: 'down' });
      ready = true;
      detailed = false;
      expect(await (await get('/metrics')).text()).toContain('test_things_total{kind="a"} 3');
      expect(await (await get('/extra')).text()).toBe('extra');
      const missing = await get('/nope?x=1');
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: 'no route /nope' });
    } finally {
      server.close();
    }
  });
});
