// Password-less sign-in against the real binary, through Apollo Client 4 as
// app developers would use it (and urql for one step): an SMS code sent
// through a fake Twilio, Telegram WebApp initData signed here as Telegram
// signs it, and Facebook Login tokens checked by a fake Graph API; then
// linking, unlinking and refreshing. It runs its own kith (KITH_BIN) on a
// fresh SQLite file, pointed at the two doubles this script serves on
// 127.0.0.1 (node:http, node:crypto), so no real provider is called.
//
//   KITH_BIN=target/debug/kith npm run sign-in

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { CombinedGraphQLErrors } from '@apollo/client/errors';
import { Client as UrqlClient, fetchExchange } from '@urql/core';

const bin = process.env.KITH_BIN;
if (!bin) {
  console.error('set KITH_BIN to the kith binary');
  process.exit(2);
}
const port = Number(process.env.KITH_SIGN_IN_E2E_PORT || 18767);
const httpUrl = `http://127.0.0.1:${port}/graphql`;
const workdir = mkdtempSync(join(tmpdir(), 'kith-sign-in-'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hmacSha256 = (key, msg) => createHmac('sha256', key).update(msg).digest();

function assertEqual(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function assert(condition, what) {
  if (!condition) throw new Error(what);
}

// ---- the doubles ------------------------------------------------------------

/** Serves `handle(req, url, body)` → [status, json] on a free port of 127.0.0.1. */
async function serveJson(handle) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let status = 500;
      let json = { error: 'the double failed' };
      try {
        [status, json] = handle(req, new URL(req.url, 'http://127.0.0.1'), Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        json = { error: String(err) };
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

// Twilio's Messages API: POST /2010-04-01/Accounts/{sid}/Messages.json,
// HTTP basic auth sid:token, form fields To, From and Body; 201 and the
// message resource. Anything else is recorded as a problem and refused the
// way Twilio refuses it.
const TWILIO_SID = `AC${randomBytes(16).toString('hex')}`;
const TWILIO_TOKEN = randomBytes(16).toString('hex');
const SMS_FROM = '+15005550006';
const sms = []; // { to, from, body }
const twilioProblems = [];

function twilio(req, url, body) {
  const refuse = (status, code, message) => {
    twilioProblems.push(`${req.method} ${url.pathname}: ${message}`);
    return [status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }];
  };
  if (req.method !== 'POST' || url.pathname !== `/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`) {
    return refuse(404, 20404, `The requested resource ${url.pathname} was not found`);
  }
  const expected = `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`;
  if (req.headers.authorization !== expected) return refuse(401, 20003, 'Authenticate');
  if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    return refuse(400, 20001, `Content-Type ${req.headers['content-type']}`);
  }
  const form = new URLSearchParams(body);
  const [to, from, text] = ['To', 'From', 'Body'].map((k) => form.get(k));
  if (!to || !/^\+[1-9]\d{6,14}$/.test(to)) return refuse(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
  if (from !== SMS_FROM) return refuse(400, 21212, `The 'From' number ${from} is not a valid phone number`);
  if (!text) return refuse(400, 21602, 'Message body is required.');
  sms.push({ to, from, body: text });
  const sid = `SM${randomBytes(16).toString('hex')}`;
  const now = new Date().toUTCString();
  return [201, {
    sid, account_sid: TWILIO_SID, to, from, body: text, status: 'queued', num_segments: '1', direction: 'outbound-api',
    api_version: '2010-04-01', date_created: now, date_updated: now, date_sent: null, price: null, error_code: null,
    error_message: null, uri: `/2010-04-01/Accounts/${TWILIO_SID}/Messages/${sid}.json`,
  }];
}

// The Graph API's two calls kith makes: debug_token with the app access token
// (APPID|SECRET), then /me with the user's token and its appsecret_proof.
const FB_APP_ID = '4815162342';
const FB_APP_SECRET = randomBytes(16).toString('hex');
const fbTokens = new Map(); // token → { app_id, user_id, name, email, valid }
const graphCalls = [];
const graphProblems = [];

function graph(req, url) {
  const q = url.searchParams;
  graphCalls.push(`${url.pathname} ${q.get('input_token') ?? q.get('access_token')}`);
  const error = (status, code, message, type = 'OAuthException') => [
    status,
    { error: { message, type, code, fbtrace_id: randomBytes(8).toString('hex') } },
  ];
  if (req.method !== 'GET') {
    graphProblems.push(`${req.method} ${url.pathname}`);
    return error(400, 100, 'Unsupported method', 'GraphMethodException');
  }
  if (url.pathname === '/debug_token') {
    if (q.get('access_token') !== `${FB_APP_ID}|${FB_APP_SECRET}`) {
      graphProblems.push(`debug_token with the app access token ${q.get('access_token')}`);
      return error(400, 190, 'Invalid OAuth access token signature.');
    }
    const token = fbTokens.get(q.get('input_token'));
    if (!token) return error(400, 190, 'Invalid OAuth access token - Cannot parse access token');
    if (!token.valid) {
      return [200, {
        data: {
          app_id: token.app_id, type: 'USER', application: 'kith e2e', is_valid: false, user_id: token.user_id,
          error: { code: 190, message: 'Error validating access token: Session has expired.', subcode: 463 },
          scopes: [],
        },
      }];
    }
    return [200, {
      data: {
        app_id: token.app_id, type: 'USER', application: 'kith e2e', data_access_expires_at: 0,
        expires_at: Math.floor(Date.now() / 1000) + 3600, is_valid: true, scopes: ['public_profile', 'email'],
        user_id: token.user_id,
      },
    }];
  }
  if (url.pathname === '/me') {
    const token = fbTokens.get(q.get('access_token'));
    if (!token || !token.valid) return error(400, 190, 'Invalid OAuth access token - Cannot parse access token');
    const proof = hmacSha256(FB_APP_SECRET, q.get('access_token')).toString('hex');
    if (q.get('appsecret_proof') !== proof) {
      graphProblems.push(`/me with appsecret_proof ${q.get('appsecret_proof')}, not ${proof}`);
      return error(400, 100, 'Invalid appsecret_proof provided in the API argument', 'GraphMethodException');
    }
    // The proof is for this server's app; a token for another app would fail it.
    if (token.app_id !== FB_APP_ID) {
      graphProblems.push(`/me for a token of app ${token.app_id}`);
      return error(400, 100, 'Invalid appsecret_proof provided in the API argument', 'GraphMethodException');
    }
    const fields = (q.get('fields') ?? 'id,name').split(',');
    const all = { id: token.user_id, name: token.name, email: token.email };
    return [200, Object.fromEntries(fields.filter((f) => f in all).map((f) => [f, all[f]]))];
  }
  graphProblems.push(`unknown path ${url.pathname}`);
  return error(400, 2500, 'Unknown path components', 'OAuthException');
}

/** A Facebook Login access token the fake Graph API knows. */
function facebookToken(user) {
  const token = `EAAB${randomBytes(24).toString('base64url')}`;
  fbTokens.set(token, { app_id: FB_APP_ID, valid: true, ...user });
  return token;
}

// Telegram WebApp initData, signed as https://core.telegram.org/bots/webapps
// says: secret_key = HMAC_SHA256("WebAppData", bot_token); hash =
// hex(HMAC_SHA256(secret_key, data_check_string)), the data-check-string
// being every field but hash, key=value, sorted by key, joined by "\n".
const BOT_TOKEN = `7${Math.floor(Math.random() * 1e9)}:AA${randomBytes(16).toString('base64url')}`;

function initData(user, botToken = BOT_TOKEN) {
  const fields = {
    auth_date: String(Math.floor(Date.now() / 1000)),
    query_id: `AAH${randomBytes(12).toString('base64url')}`,
    user: JSON.stringify(user),
  };
  const dataCheckString = Object.keys(fields)
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('\n');
  const secretKey = hmacSha256('WebAppData', botToken);
  const hash = hmacSha256(secretKey, dataCheckString).toString('hex');
  return new URLSearchParams({ ...fields, hash }).toString();
}

const TG_ANN = {
  id: 5000001, first_name: 'Ann', last_name: 'Frost', username: 'Ann_Frost',
  photo_url: 'https://t.me/i/userpic/320/ann.jpg',
};
const TG_SAM = {
  id: 5000002, first_name: 'Sam', last_name: 'Reed', username: 'sam_reed',
  photo_url: 'https://t.me/i/userpic/320/sam.jpg',
};

// ---- kith -------------------------------------------------------------------

/** Starts kith in `workdir` with the doubles as its providers; waits until it answers. */
async function startKith(twilioBase, graphBase) {
  // The Facebook app id and the SMS sender are all digits, as they are in
  // real deployments: kith must take them from the environment as written.
  const child = spawn(bin, ['serve'], {
    cwd: workdir,
    env: {
      ...process.env,
      KITH_LISTEN: `127.0.0.1:${port}`,
      KITH_RATE_LIMITS: 'off',
      RUST_LOG: 'warn',
      KITH_SMS_SENDER: 'twilio',
      KITH_TWILIO_BASE_URL: twilioBase,
      KITH_TWILIO_ACCOUNT_SID: TWILIO_SID,
      KITH_TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      KITH_SMS_FROM: SMS_FROM,
      KITH_TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      KITH_FACEBOOK_APP_ID: FB_APP_ID,
      KITH_FACEBOOK_APP_SECRET: FB_APP_SECRET,
      KITH_FACEBOOK_GRAPH_URL: graphBase,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`kith exited with ${child.exitCode} before it answered`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return { child, exited };
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('kith did not come up');
}

// ---- clients ----------------------------------------------------------------

// Each behind the same calls: `mutate` and `query` return the data or throw;
// `refusal` returns the GraphQL errors of a mutation that must fail, as the
// client hands them to the app.

function apollo(token) {
  const client = new ApolloClient({
    link: new HttpLink({ uri: httpUrl, headers: token ? { authorization: `Bearer ${token}` } : {} }),
    cache: new InMemoryCache(),
  });
  const describe = (err) => (CombinedGraphQLErrors.is(err) ? new Error(JSON.stringify(err.errors)) : err);
  return {
    async mutate(doc, variables) {
      try {
        return (await client.mutate({ mutation: gql(doc), variables, fetchPolicy: 'no-cache' })).data;
      } catch (err) {
        throw describe(err);
      }
    },
    async query(doc, variables) {
      try {
        return (await client.query({ query: gql(doc), variables, fetchPolicy: 'no-cache' })).data;
      } catch (err) {
        throw describe(err);
      }
    },
    async refusal(doc, variables) {
      try {
        const result = await client.mutate({ mutation: gql(doc), variables, fetchPolicy: 'no-cache' });
        throw new Error(`the mutation was not refused: ${JSON.stringify(result.data)}`);
      } catch (err) {
        if (CombinedGraphQLErrors.is(err)) return err.errors;
        throw err;
      }
    },
  };
}

function urql(token) {
  const client = new UrqlClient({
    url: httpUrl,
    fetchOptions: { headers: token ? { authorization: `Bearer ${token}` } : {} },
    exchanges: [fetchExchange],
    requestPolicy: 'network-only',
  });
  return {
    async mutate(doc, variables) {
      const result = await client.mutation(doc, variables).toPromise();
      if (result.error) throw result.error;
      return result.data;
    },
    async refusal(doc, variables) {
      const result = await client.mutation(doc, variables).toPromise();
      if (!result.error) throw new Error(`the mutation was not refused: ${JSON.stringify(result.data)}`);
      if (result.error.networkError) throw result.error;
      return result.error.graphQLErrors;
    },
  };
}

/** The refusal is one error with `code` (and `field`, when given). */
function assertRefused(errors, code, what, field) {
  const got = errors.map((e) => [e.extensions?.code, ...(field ? [e.extensions?.field] : [])]);
  assertEqual(got, [[code, ...(field ? [field] : [])]], `${what} (${JSON.stringify(errors)})`);
}

// ---- operations -------------------------------------------------------------

const IDENTITY = 'method subject displayName username photoUrl';
// AuthPayload.user's identities and sessions come back null (the request
// itself has no viewer), so they are read through `me` with the new token.
const AUTH = 'accessToken refreshToken accessTokenExpiresAt user { id username phone }';
const REQUEST_CODE = 'mutation($i: RequestSmsCodeInput!) { requestSmsCode(input: $i) { phone expiresAt } }';
const LOGIN_SMS = `mutation($i: SmsCodeInput!) { loginWithSms(input: $i) { ${AUTH} } }`;
const LOGIN_TELEGRAM = `mutation($i: TelegramInput!) { loginWithTelegram(input: $i) { ${AUTH} } }`;
const LOGIN_FACEBOOK = `mutation($i: FacebookInput!) { loginWithFacebook(input: $i) { ${AUTH} } }`;
const LINK_TELEGRAM = `mutation($i: TelegramInput!) { linkTelegram(input: $i) { ${IDENTITY} } }`;
const UNLINK = `mutation($m: SignInMethod!) { unlinkIdentity(method: $m) { ${IDENTITY} } }`;
const REFRESH = `mutation($i: RefreshSessionInput!) { refreshSession(input: $i) { ${AUTH} } }`;
const ME = `query { me { id username phone identities { ${IDENTITY} } sessions { method current } } }`;

const methods = (identities) => identities.map((i) => [i.method, i.subject]);
const meWith = async (token) => (await apollo(token).query(ME)).me;
const currentSession = (sessions, what) => {
  const current = sessions.filter((s) => s.current);
  assertEqual(current.length, 1, `${what}: sessions marked current`);
  return current[0];
};

/** Asks kith for a code for `phone` and reads it from the one SMS the fake Twilio got. */
async function smsCode(client, phone, normalised) {
  const before = sms.length;
  const sent = (await client.mutate(REQUEST_CODE, { i: { phone } })).requestSmsCode;
  assertEqual(sent.phone, normalised, 'requestSmsCode.phone (normalised)');
  const expiresIn = (Date.parse(sent.expiresAt) - Date.now()) / 1000;
  assert(expiresIn > 240 && expiresIn <= 305, `requestSmsCode.expiresAt ${sent.expiresAt} is not about 5 min away`);
  assertEqual(twilioProblems, [], 'what the fake Twilio refused');
  const got = sms.slice(before);
  assertEqual(got.map((m) => [m.to, m.from]), [[normalised, SMS_FROM]], 'messages Twilio received (To, From)');
  const m = /^Your kith code is (\d{6})\. It expires in 5 min\. Never share it\.$/.exec(got[0].body);
  assert(m, `the SMS body ${JSON.stringify(got[0].body)} is not the expected text`);
  return m[1];
}

// ---- the flow ---------------------------------------------------------------

const PHONE_TYPED = '+1 (415) 555-0142';
const PHONE = '+14155550142';

// What the steps hand on to the ones after them.
const state = {};
const need = (key, step) => {
  if (!state[key]) throw new Error(`needs ${step}, which did not get that far`);
  return state[key];
};

const tests = {
  async '1. SMS (Apollo): requestSmsCode through Twilio, loginWithSms makes a PHONE-only account; the code works once'() {
    const anon = apollo();
    const code = await smsCode(anon, PHONE_TYPED, PHONE);
    const auth = (await anon.mutate(LOGIN_SMS, { i: { phone: PHONE, code } })).loginWithSms;
    assert(auth.accessToken && auth.refreshToken, 'loginWithSms answered no tokens');
    assert(Date.parse(auth.accessTokenExpiresAt) > Date.now(), `accessTokenExpiresAt ${auth.accessTokenExpiresAt} is past`);
    assertEqual(auth.user.phone, PHONE, 'loginWithSms user.phone');
    state.smsUser = { id: auth.user.id, token: auth.accessToken, refreshToken: auth.refreshToken };

    const me = (await apollo(auth.accessToken).query(ME)).me;
    assertEqual(me.id, auth.user.id, 'me.id');
    assertEqual(me.phone, PHONE, 'me.phone');
    assertEqual(methods(me.identities), [['PHONE', PHONE]], 'me.identities (no PASSWORD)');
    assertEqual(currentSession(me.sessions, 'me.sessions').method, 'PHONE', 'the current session method');
    assertEqual(me.sessions.map((s) => s.method), ['PHONE'], 'me.sessions methods');
    console.log(`     signed in as ${me.username} (${me.id}) with code ${code}`);

    const again = await anon.refusal(LOGIN_SMS, { i: { phone: PHONE, code } });
    assertRefused(again, 'UNAUTHENTICATED', 'loginWithSms with the spent code');
  },

  async '1b. SMS (urql): requestSmsCode + loginWithSms signs the same number in to the same account'() {
    const smsUser = need('smsUser', 'step 1');
    const anon = urql();
    const code = await smsCode(anon, PHONE, PHONE);
    const auth = (await anon.mutate(LOGIN_SMS, { i: { phone: PHONE, code } })).loginWithSms;
    assertEqual(auth.user.id, smsUser.id, 'the account a second sign-in lands in');
    const me = await meWith(auth.accessToken);
    assertEqual(methods(me.identities), [['PHONE', PHONE]], 'me.identities');
    assertEqual(currentSession(me.sessions, 'me.sessions').method, 'PHONE', 'the new session method');
    assertEqual(me.sessions.map((s) => s.method), ['PHONE', 'PHONE'], 'me.sessions methods (two sign-ins)');
    const wrong = code === '000000' ? '000001' : '000000';
    assertRefused(await anon.refusal(LOGIN_SMS, { i: { phone: PHONE, code: wrong } }), 'UNAUTHENTICATED', 'a wrong code');
    assertRefused(await anon.refusal(LOGIN_SMS, { i: { phone: PHONE, code } }), 'UNAUTHENTICATED', 'the spent code');
  },

  async '2. Telegram: signed initData makes a new account named after the Telegram username; tampered initData is refused'() {
    const anon = apollo();
    const auth = (await anon.mutate(LOGIN_TELEGRAM, { i: { initData: initData(TG_ANN) } })).loginWithTelegram;
    assertEqual(auth.user.username, TG_ANN.username.toLowerCase(), 'the new account username');
    if (state.smsUser) assert(auth.user.id !== state.smsUser.id, 'the Telegram user got the SMS user account');
    const me = await meWith(auth.accessToken);
    assertEqual(me.id, auth.user.id, 'me.id');
    assertEqual(
      me.identities.map((i) => [i.method, i.subject, i.displayName, i.username, i.photoUrl]),
      [['TELEGRAM', String(TG_ANN.id), 'Ann Frost', TG_ANN.username, TG_ANN.photo_url]],
      'me.identities (no PASSWORD)',
    );
    assertEqual(me.sessions.map((s) => [s.method, s.current]), [['TELEGRAM', true]], 'me.sessions');
    console.log(`     signed in as ${me.username} (${me.id})`);
    state.telegramUser = { id: auth.user.id };

    // Signed, then one letter of the user's name changed.
    const signed = new URLSearchParams(initData(TG_ANN));
    const user = signed.get('user');
    assert(user.includes('"Ann"'), 'the signed user field has no "Ann"');
    signed.set('user', user.replace('"Ann"', '"Anm"'));
    const tampered = await anon.refusal(LOGIN_TELEGRAM, { i: { initData: signed.toString() } });
    assertRefused(tampered, 'UNAUTHENTICATED', 'loginWithTelegram with tampered initData');

    const otherBot = await anon.refusal(LOGIN_TELEGRAM, { i: { initData: initData(TG_ANN, `${BOT_TOKEN}x`) } });
    assertRefused(otherBot, 'UNAUTHENTICATED', "loginWithTelegram with another bot's initData");
  },

  async '3. linkTelegram: the SMS user links a new Telegram user and signs in with it; one owned by another account is CONFLICT'() {
    const smsUser = need('smsUser', 'step 1');
    const mine = apollo(smsUser.token);
    const linked = (await mine.mutate(LINK_TELEGRAM, { i: { initData: initData(TG_SAM) } })).linkTelegram;
    assertEqual(
      [linked.method, linked.subject, linked.displayName, linked.username],
      ['TELEGRAM', String(TG_SAM.id), 'Sam Reed', TG_SAM.username],
      'linkTelegram answer',
    );
    const me = (await mine.query(ME)).me;
    assertEqual(methods(me.identities), [['PHONE', PHONE], ['TELEGRAM', String(TG_SAM.id)]], 'me.identities after linking');

    const auth = (await apollo().mutate(LOGIN_TELEGRAM, { i: { initData: initData(TG_SAM) } })).loginWithTelegram;
    assertEqual(auth.user.id, smsUser.id, 'the account loginWithTelegram lands in');
    assertEqual(currentSession((await meWith(auth.accessToken)).sessions, 'me.sessions').method, 'TELEGRAM', 'that session method');

    need('telegramUser', 'step 2');
    const taken = await mine.refusal(LINK_TELEGRAM, { i: { initData: initData(TG_ANN) } });
    assertRefused(taken, 'CONFLICT', 'linkTelegram with a Telegram user linked to another account');
    const after = (await mine.query(ME)).me;
    assertEqual(methods(after.identities), [['PHONE', PHONE], ['TELEGRAM', String(TG_SAM.id)]], 'me.identities after the CONFLICT');
  },

  async "4. Facebook: a valid token makes a new account (session FACEBOOK); another app's token is refused"() {
    const fb = { user_id: '10150000000000042', name: 'Fay Bloom', email: 'fay@example.com' };
    const token = facebookToken(fb);
    const anon = apollo();
    const callsBefore = graphCalls.length;
    const auth = (await anon.mutate(LOGIN_FACEBOOK, { i: { accessToken: token } })).loginWithFacebook;
    assertEqual(graphProblems, [], 'what the fake Graph API refused');
    assertEqual(graphCalls.slice(callsBefore), [`/debug_token ${token}`, `/me ${token}`], 'Graph API calls');
    for (const other of [state.smsUser, state.telegramUser]) {
      if (other) assert(auth.user.id !== other.id, 'the Facebook user landed in an earlier account');
    }
    const me = await meWith(auth.accessToken);
    assertEqual(me.id, auth.user.id, 'me.id');
    assertEqual(
      me.identities.map((i) => [i.method, i.subject, i.displayName]),
      [['FACEBOOK', fb.user_id, fb.name]],
      'me.identities (no PASSWORD)',
    );
    assertEqual(me.sessions.map((s) => [s.method, s.current]), [['FACEBOOK', true]], 'me.sessions');
    console.log(`     signed in as ${me.username} (${me.id})`);

    const foreign = `EAAB${randomBytes(24).toString('base64url')}`;
    fbTokens.set(foreign, { app_id: '999000111', user_id: '10150000000000077', name: 'Other App', email: null, valid: true });
    const refused = await anon.refusal(LOGIN_FACEBOOK, { i: { accessToken: foreign } });
    assertRefused(refused, 'UNAUTHENTICATED', "loginWithFacebook with another app's token");
    assertEqual(graphProblems, [], 'what the fake Graph API refused');
  },

  async '5. unlinkIdentity: TELEGRAM goes, leaving PHONE; PHONE, the last way to sign in, is CONFLICT'() {
    const smsUser = need('smsUser', 'step 1');
    const mine = apollo(smsUser.token);
    const left = (await mine.mutate(UNLINK, { m: 'TELEGRAM' })).unlinkIdentity;
    assertEqual(methods(left), [['PHONE', PHONE]], 'unlinkIdentity(TELEGRAM) answer');
    const last = await mine.refusal(UNLINK, { m: 'PHONE' });
    assertRefused(last, 'CONFLICT', 'unlinkIdentity(PHONE) as the last way', 'method');
    const me = (await mine.query(ME)).me;
    assertEqual(methods(me.identities), [['PHONE', PHONE]], 'me.identities afterwards');
    assertEqual(me.phone, PHONE, 'me.phone afterwards');
  },

  async "6. refreshSession: the SMS user's refresh token gives new tokens; the session still says PHONE"() {
    const smsUser = need('smsUser', 'step 1');
    const auth = (await apollo().mutate(REFRESH, { i: { refreshToken: smsUser.refreshToken } })).refreshSession;
    assertEqual(auth.user.id, smsUser.id, 'refreshSession user.id');
    assert(auth.refreshToken !== smsUser.refreshToken, 'refreshSession answered the same refresh token');
    // Not compared with the old access token: kith's JWT holds iss, sub, sid,
    // iat and exp (in seconds) only, so a refresh within the second of the
    // sign-in answers the same string; the new one must work.
    const me = (await apollo(auth.accessToken).query(ME)).me;
    assertEqual(me.id, smsUser.id, 'me.id with the new access token');
    assertEqual(currentSession(me.sessions, 'me.sessions').method, 'PHONE', 'the refreshed session method');
    const spent = await apollo().refusal(REFRESH, { i: { refreshToken: smsUser.refreshToken } });
    assertRefused(spent, 'UNAUTHENTICATED', 'refreshSession with the spent refresh token');
  },
};

const twilioDouble = await serveJson(twilio);
const graphDouble = await serveJson(graph);
let kith;
let passed = 0;
let failed = 0;
try {
  kith = await startKith(twilioDouble.base, graphDouble.base);
  for (const [name, test] of Object.entries(tests)) {
    try {
      await test();
      passed++;
      console.log(`ok   ${name}`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${name} -- ${err?.stack ?? err}`);
      // What the doubles refused says why a provider call failed.
      for (const [who, problems] of [['Twilio', twilioProblems], ['Graph API', graphProblems]]) {
        if (problems.length) console.log(`     the fake ${who} refused: ${problems.splice(0).join('; ')}`);
      }
    }
  }
} catch (err) {
  failed++;
  console.log(`FAIL starting kith -- ${err?.stack ?? err}`);
} finally {
  if (kith) {
    kith.child.kill('SIGTERM');
    await kith.exited;
  }
  twilioDouble.server.close();
  graphDouble.server.close();
  rmSync(workdir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
setTimeout(() => process.exit(process.exitCode), 100).unref();
