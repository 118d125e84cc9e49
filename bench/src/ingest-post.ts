/**
 * One POST of a telemetry body to ingestion over a keep-alive agent, shared by the load processes (load-worker.ts,
 * fleet-load.ts) and the mqtt suite's HTTP door, so that every HTTP load reads ingestion's answer the same way.
 */
import { request, type Agent } from 'node:http';

export interface IngestAnswer {
  /** HTTP status; -1 when no answer came (refused, reset). */
  code: number;
  /** From a 202's body: events accepted and refused (per-event errors); 0 otherwise. */
  accepted: number;
  rejected: number;
}

/** Posts `body` to `target` (ingestion's /v1/telemetry); never rejects, so a load loop counts failures and goes on. */
export function postTelemetry(
  agent: Agent,
  target: URL,
  token: string,
  contentType: string,
  body: string | Buffer,
): Promise<IngestAnswer> {
  return new Promise((resolve) => {
    const failed = () => resolve({ code: -1, accepted: 0, rejected: 0 });
    const req = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: {
          'content-type': contentType,
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (x: Buffer) => chunks.push(x));
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          if (code !== 202) return resolve({ code, accepted: 0, rejected: 0 });
          const r = JSON.parse(Buffer.concat(chunks).toString()) as { accepted: number; rejected: number };
          resolve({ code, accepted: r.accepted, rejected: r.rejected });
        });
        res.on('error', failed);
      },
    );
    req.on('error', failed);
    req.end(body);
  });
}
