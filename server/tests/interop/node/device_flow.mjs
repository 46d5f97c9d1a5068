// openid-client (panva, npm) runs a device flow against deviceflow-server: discovers
// the RFC 8414 metadata and registers its app there (RFC 7591, with the initial access
// token), asks for codes (RFC 8628 §3.1), prints the user code for the test to
// approve, polls with its own loop (§3.4, §3.5), then refreshes its token (RFC 6749 §6).
// Every request goes through openid-client; a recording fetch keeps the exchange.
//
// Usage: node device_flow.mjs ISSUER INITIAL_ACCESS_TOKEN. Prints JSON lines: the user
// code first, then the outcome (with every exchange on failure); exits 1 on failure.

import * as client from 'openid-client';
import { readFileSync } from 'node:fs';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const SCOPE = 'openid tv';
const [issuer, initialAccessToken] = process.argv.slice(2);
const say = (fields) => console.log(JSON.stringify(fields));
const version = JSON.parse(
  readFileSync(new URL('./node_modules/openid-client/package.json', import.meta.url)),
).version;

const exchange = [];
async function recordingFetch(url, options) {
  const response = await fetch(url, options);
  exchange.push({
    request: `${options?.method ?? 'GET'} ${url}`,
    body: typeof options?.body === 'string' ? options.body : options?.body?.toString(),
    status: response.status,
    answer: (await response.clone().text()).slice(0, 600),
  });
  return response;
}

try {
  // The issuer is plain http on loopback in the test: openid-client refuses that
  // unless told (allowInsecureRequests). `oauth2`: RFC 8414 discovery, not OIDC's.
  const config = await client.dynamicClientRegistration(
    new URL(issuer),
    {
      client_name: 'openid-client TV',
      grant_types: [DEVICE_GRANT, 'refresh_token'],
      token_endpoint_auth_method: 'none',
      scope: SCOPE,
    },
    client.None(),
    {
      algorithm: 'oauth2',
      initialAccessToken,
      execute: [client.allowInsecureRequests],
      [client.customFetch]: recordingFetch,
    },
  );
  const clientId = config.clientMetadata().client_id;
  const codes = await client.initiateDeviceAuthorization(config, { scope: SCOPE });
  say({ event: 'user_code', user_code: codes.user_code, client_id: clientId });

  const tokens = await client.pollDeviceAuthorizationGrant(config, codes);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const polls = exchange.filter((e) => e.body?.includes('device_code=')).length;
  say({
    ok: true,
    client: 'openid-client',
    versions: { 'openid-client': version },
    client_id: clientId,
    polls,
    scope: tokens.scope,
    refreshed_scope: refreshed.scope,
    refresh_rotated: refreshed.refresh_token !== tokens.refresh_token,
    access_token: refreshed.access_token,
    requests: exchange.length,
  });
} catch (e) {
  say({
    ok: false,
    client: 'openid-client',
    versions: { 'openid-client': version },
    error: `${e?.name}: ${e?.message}`,
    code: e?.code,
    cause: e?.cause === undefined ? undefined : String(e.cause?.message ?? JSON.stringify(e.cause)),
    exchange,
  });
  process.exitCode = 1;
}
