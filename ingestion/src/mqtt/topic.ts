import { globMatch } from '@fleetpulse/contracts';
import type { TokenGrant } from '../config';
import type { TokenTable } from '../auth';
import type { PayloadFormat } from '../pipeline';

/** The contract's device id (docs/contract.md, "Telemetry in"): 1-128 chars of [A-Za-z0-9._:-]. */
const deviceIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** `telemetry/<deviceId>` -> the device id; undefined for any other topic (no levels beyond it, no wildcards). */
export function telemetryTopicDevice(topic: string): string | undefined {
  if (!topic.startsWith('telemetry/')) return undefined;
  const device = topic.slice('telemetry/'.length);
  return deviceIdPattern.test(device) ? device : undefined;
}

/** May this grant write for this device? (A grant without a glob writes for any device, as over HTTP.) */
export function grantAllows(grant: TokenGrant, deviceId: string): boolean {
  return grant.allowedDevices === undefined || globMatch(grant.allowedDevices, deviceId);
}

/**
 * May a connection of `username` (a device id) with this grant publish to `device`'s topic? Its own device only,
 * unless the token is a gateway's: then any device its glob allows.
 */
export function mayPublishFor(grant: TokenGrant, username: string, device: string): boolean {
  return grant.gateway === true ? grantAllows(grant, device) : device === username;
}

/** CONNACK return codes of MQTT 3.1.1 that a refused CONNECT is answered with. */
export const ConnackCode = {
  identifierRejected: 2,
  serverUnavailable: 3,
  badUsernameOrPassword: 4,
  notAuthorized: 5,
} as const;

/** Longest client id taken (a device id is at most 128 chars; the rest is the device's own suffix). */
export const maxClientIdLength = 256;

export type ConnectVerdict =
  { ok: true; grant: TokenGrant } | { ok: false; code: (typeof ConnackCode)[keyof typeof ConnackCode]; reason: string };

/**
 * MQTT CONNECT: the username is a device id (one its token's glob allows), the password that device's token, the
 * same tokens as `Authorization: Bearer` over HTTP; the client id is the username or starts with it (CONNACK 2
 * otherwise), so a token cannot name another device's session.
 */
export function authenticateConnect(
  tokens: TokenTable,
  username: string | undefined,
  password: Buffer | undefined,
  clientId: string,
): ConnectVerdict {
  if (username === undefined || password === undefined || password.length === 0)
    return { ok: false, code: ConnackCode.badUsernameOrPassword, reason: 'no username or password' };
  const grant = tokens.lookup(password);
  if (grant === undefined) return { ok: false, code: ConnackCode.badUsernameOrPassword, reason: 'unknown token' };
  if (!deviceIdPattern.test(username))
    return {
      ok: false,
      code: ConnackCode.notAuthorized,
      reason: `username ${JSON.stringify(username.slice(0, 200))} is not a device id`,
    };
  if (!grantAllows(grant, username))
    return { ok: false, code: ConnackCode.notAuthorized, reason: `the token may not write for "${username}"` };
  if (!clientId.startsWith(username) || clientId.length > maxClientIdLength)
    return {
      ok: false,
      code: ConnackCode.identifierRejected,
      reason: `client id ${JSON.stringify(clientId.slice(0, maxClientIdLength))} is not the username "${username}" or a longer id that starts with it`,
    };
  return { ok: true, grant };
}

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;

/**
 * JSON (one object or an array) or NDJSON, told apart by the bytes: MQTT 3.1.1 has no content type. A payload that
 * starts with `[` is JSON. Otherwise it is NDJSON when some `}` is followed, across a line break and blanks only,
 * by `{`: that never occurs in one JSON value (raw line breaks cannot be inside strings, and objects need a comma
 * between them), and it is how every NDJSON body of two or more events looks. A one-line NDJSON body parses the
 * same either way.
 */
export function payloadFormat(payload: Buffer): PayloadFormat {
  let i = 0;
  while (isSpace(payload[i])) i++;
  if (payload[i] === 0x5b /* [ */) return 'json';
  for (let p = payload.indexOf(0x7d /* } */, i); p >= 0; p = payload.indexOf(0x7d, p + 1)) {
    let q = p + 1;
    let newline = false;
    for (; isSpace(payload[q]); q++) if (payload[q] === 0x0a) newline = true;
    if (newline && payload[q] === 0x7b /* { */) return 'ndjson';
  }
  return 'json';
}
