// The identity provider tests/test_oidc.py signs in through: the certified oidc-provider package,
// on 127.0.0.1, one confidential client with PKCE, and no login form: the person the test names
// (POST /test/person) is signed in at the next interaction, so no browser is needed.
//
//   node tests/js/oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// POST /test/mischief {"mode": "wrong-audience" | "expired" | ""} makes the token endpoint answer
// with an ID token re-signed by the provider's own key but with another audience or an expiry in
// the past (what a misconfigured or hostile provider could send): the app must refuse both.
import http from 'node:http';
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt } from 'jose';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };

let person = { sub: 'sub-alice', preferred_username: 'alice', email: 'alice@example.com', groups: [] };
const people = new Map();
let mischief = '';

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: ['test-cookie-key'] },
  pkce: { required: () => true },
  conformIdTokenClaims: false, // the claims asked for by scope go into the ID token too
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name', 'groups'],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const found = people.get(sub);
    if (!found) return undefined;
    return { accountId: sub, claims: async () => ({ ...found, email_verified: true }) };
  },
  async loadExistingGrant(ctx) {
    // consent is implied: every scope the client asks for is granted
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    await grant.save();
    return grant;
  },
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && mischief && ctx.body && ctx.body.id_token) {
    const claims = decodeJwt(ctx.body.id_token);
    if (mischief === 'wrong-audience') claims.aud = 'another-app';
    if (mischief === 'expired') { claims.iat -= 7200; claims.exp = claims.iat + 600; }
    ctx.body = { ...ctx.body, id_token: await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(privateKey) };
  }
});

const handle = provider.callback();

function readJson(req) {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (chunk) => { text += chunk; });
    req.on('end', () => resolve(text ? JSON.parse(text) : {}));
  });
}

http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/test/person') {
      person = await readJson(req);
      people.set(person.sub, person);
      res.end('ok');
    } else if (req.method === 'POST' && req.url === '/test/mischief') {
      mischief = (await readJson(req)).mode || '';
      res.end('ok');
    } else if (req.url.startsWith('/interaction/')) {
      people.set(person.sub, person);
      await provider.interactionFinished(req, res, { login: { accountId: person.sub } }, { mergeWithLastSubmission: false });
    } else {
      handle(req, res);
    }
  } catch (err) {
    res.statusCode = 500;
    res.end(String(err));
  }
}).listen(Number(port), '127.0.0.1', () => console.log(`listening on ${issuer}`));
