import { createConnection } from 'node:net';

/**
 * Whether something accepts TCP connections on host:port. A refused connection is "closed"; a connection that
 * neither succeeds nor fails within `timeoutMs` counts as "open", since something holds the port.
 */
export function isPortOpen(port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(true));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
