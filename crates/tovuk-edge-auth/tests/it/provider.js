// A real OIDC provider for the edge-auth tests: npm's oauth2-mock-server, driven through its
// programmatic API so a test can mint tokens with chosen claims, rotate keys and count JWKS
// fetches.
//
// Usage: node provider.js <npm prefix holding node_modules/oauth2-mock-server>
// Listens on 127.0.0.1 on a port the OS picks, and prints one JSON line:
// {"issuer": "http://127.0.0.1:<port>", "kid": "<signing key id>"}.
// Then reads one JSON command per line on stdin and answers each with one JSON line:
//   {"op":"mint","claims":{..},"unset":["exp"],"header":{..},"expires_in":s,"kid":k} -> {"token"}
//       a token from the provider's issuer (its key, its iss/iat/exp/nbf), then changed
//   {"op":"sign","header":{..},"payload":{..},"kid":k} -> {"token"}
//       exactly this header (alg included) and payload, signed with the private key `kid`
//   {"op":"next_token","claims":{..}} -> {}    claims added to the next token /token issues
//   {"op":"id_token_claims","claims":{..}} -> {} claims added to every id token from now on
//   {"op":"rotate"} -> {"kid"}                  a new RS256 key, published in the JWKS
//   {"op":"public_pem","kid":k} -> {"pem"}      the public key as SPKI PEM
//   {"op":"jwks_requests"} -> {"count"}         how many times the JWKS was fetched
// It exits when stdin closes, so it never outlives the test.
'use strict';

const path = require('node:path');
const http = require('node:http');
const crypto = require('node:crypto');
const readline = require('node:readline');

const prefix = process.argv[2];
const mockDir = path.join(prefix, 'node_modules', 'oauth2-mock-server');
const { OAuth2Server } = require(mockDir);
// jose is the mock's own dependency: resolved from the mock's directory, hoisted or not.
const { importJWK, SignJWT } = require(require.resolve('jose', { paths: [mockDir] }));

async function main() {
  const provider = new OAuth2Server();
  const first = await provider.issuer.keys.generate('RS256');
  let idTokenClaims = {};
  // Id tokens are the ones carrying the login's nonce.
  provider.service.on('beforeTokenSigning', (token) => {
    if (token.payload.nonce !== undefined) Object.assign(token.payload, idTokenClaims);
  });

  // Our own listener in front of the mock's request handler: it counts JWKS fetches.
  let jwksRequests = 0;
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/jwks')) jwksRequests += 1;
    provider.service.requestHandler(req, res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  // The mock would say "localhost"; the tests reach it on 127.0.0.1, and the issuer must be
  // the URL its discovery document is fetched from.
  provider.issuer.url = `http://127.0.0.1:${server.address().port}`;

  const privateKey = (kid) => provider.issuer.keys.toJSON(true).find((key) => key.kid === kid);

  const ops = {
    async mint(cmd) {
      const token = await provider.issuer.buildToken({
        kid: cmd.kid,
        expiresIn: cmd.expires_in,
        scopesOrTransform: (header, payload) => {
          Object.assign(payload, cmd.claims || {});
          for (const name of cmd.unset || []) delete payload[name];
          Object.assign(header, cmd.header || {});
        },
      });
      return { token };
    },
    async sign(cmd) {
      const jwk = privateKey(cmd.kid);
      const key = await importJWK({ ...jwk, alg: cmd.header.alg }, cmd.header.alg);
      const token = await new SignJWT(cmd.payload).setProtectedHeader(cmd.header).sign(key);
      return { token };
    },
    async next_token(cmd) {
      provider.service.once('beforeTokenSigning', (token) => Object.assign(token.payload, cmd.claims));
      return {};
    },
    async id_token_claims(cmd) {
      idTokenClaims = cmd.claims;
      return {};
    },
    async rotate() {
      const key = await provider.issuer.keys.generate('RS256');
      return { kid: key.kid };
    },
    async public_pem(cmd) {
      const { d, p, q, dp, dq, qi, ...publicJwk } = privateKey(cmd.kid);
      const pem = crypto.createPublicKey({ key: publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      return { pem };
    },
    async jwks_requests() {
      return { count: jwksRequests };
    },
  };

  process.stdout.write(JSON.stringify({ issuer: provider.issuer.url, kid: first.kid }) + '\n');
  const lines = readline.createInterface({ input: process.stdin });
  // One command at a time, answered in order.
  for await (const line of lines) {
    let answer;
    try {
      const cmd = JSON.parse(line);
      answer = await ops[cmd.op](cmd);
    } catch (error) {
      answer = { error: String(error && error.stack ? error.stack : error) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`provider failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
