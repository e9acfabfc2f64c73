// A real, widely used OAuth 2.0 authorization server (oidc-provider) with Dynamic Client
// Registration (RFC 7591) and its management protocol (RFC 7592) enabled, for the tests of
// oauth2-sync's `rfc7592+` adapter. Started and stopped by tests/oidc_peer.py.
//
// Environment:
//   OIDC_INITIAL_ACCESS_TOKEN  required: the initial access token that registration demands
//   OIDC_PORT                  port on 127.0.0.1; 0 (default) picks a free one
//   OIDC_ROTATE_RAT            "1": rotate the registration access token on every update
//                              (oidc-provider's own default); "0" (default here): keep it
//   OIDC_EXTRA_METADATA        "0": do NOT declare oauth2-sync's extension metadata, so the
//                              server silently drops it (to test that the adapter notices)
//   OIDC_EXTRA_NAMES           JSON: the extension fields declared under other names, as an
//                              administrator would ({"oauth2_sync_partner": "partner", ...});
//                              a field mapped to "" is not declared at all
//   OIDC_CLIENT_CREDENTIALS    "1": offer the client_credentials grant (off by default)
//
// Prints one line `listening on http://127.0.0.1:PORT` on stdout once it accepts requests.
// Clients live in memory (oidc-provider's development adapter): a restart loses them all.

import http from 'node:http';
import process from 'node:process';

import Provider, { errors } from 'oidc-provider';

const initialAccessToken = process.env.OIDC_INITIAL_ACCESS_TOKEN;
if (!initialAccessToken) {
  process.stderr.write('OIDC_INITIAL_ACCESS_TOKEN must be set\n');
  process.exit(2);
}
const port = Number.parseInt(process.env.OIDC_PORT ?? '0', 10);
const rotate = process.env.OIDC_ROTATE_RAT === '1';
const declareExtras = process.env.OIDC_EXTRA_METADATA !== '0';
const renamed = JSON.parse(process.env.OIDC_EXTRA_NAMES ?? '{}');
const clientCredentials = process.env.OIDC_CLIENT_CREDENTIALS === '1';
const nameOf = (field) => (field in renamed ? renamed[field] : field);

// The fields RFC 7591 lacks, which oauth2-sync sends as extension metadata.
const EXTRAS = {
  oauth2_sync_client_id: (v) => typeof v === 'string' && v.length > 0,
  oauth2_sync_partner: (v) => typeof v === 'string' && v.length > 0,
  oauth2_sync_restrict_to_partner_users: (v) => typeof v === 'boolean',
  oauth2_sync_access_token_ttl: (v) => Number.isSafeInteger(v) && (v === -1 || v > 0),
  oauth2_sync_refresh_token_ttl: (v) => Number.isSafeInteger(v) && v > 0,
};

// The checks under the names this server declares (renamed, or left out).
const DECLARED = Object.fromEntries(
  Object.entries(EXTRAS).filter(([k]) => nameOf(k) !== '').map(([k, v]) => [nameOf(k), v]),
);

function validateExtra(ctx, key, value) {
  if (value !== undefined && value !== null && !DECLARED[key](value)) {
    throw new errors.InvalidClientMetadata(`${key} has an invalid value`);
  }
}

// A year stands for "never": oidc-provider needs a finite lifetime.
const NEVER = 365 * 24 * 3600;

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const { port: actual } = server.address();
  const issuer = `http://127.0.0.1:${actual}`;
  const provider = new Provider(issuer, {
    clients: [],
    scopes: ['openid', 'offline_access', 'read', 'write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: clientCredentials },
      registration: { enabled: true, initialAccessToken },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: rotate },
    },
    extraClientMetadata: declareExtras
      ? { properties: Object.keys(DECLARED), validator: validateExtra }
      : { properties: [] },
    // Honour the lifetimes that oauth2-sync manages, so the extension metadata means something.
    ttl: {
      AccessToken(ctx, token, client) {
        const ttl = client?.[nameOf('oauth2_sync_access_token_ttl')];
        if (ttl === -1) return NEVER;
        return ttl ?? 12 * 3600;
      },
      RefreshToken(ctx, token, client) {
        return client?.[nameOf('oauth2_sync_refresh_token_ttl')] ?? 30 * 24 * 3600;
      },
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`listening on ${issuer}\n`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
