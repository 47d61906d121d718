// What the graphql-ws client does, with its default retry rules (shouldRetry,
// retryAttempts), when kith closes its socket:
//   - 4403 Forbidden, the socket's session was revoked (logout);
//   - 1001 Going Away, the server stopped (SIGTERM), then came back.
// It runs its own kith (KITH_BIN) on a fresh SQLite file, since it stops and
// restarts it on the same port and database.
//
//   KITH_BIN=target/debug/kith npm run ws-close

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const bin = process.env.KITH_BIN;
if (!bin) {
  console.error('set KITH_BIN to the kith binary');
  process.exit(2);
}
const port = Number(process.env.KITH_WS_E2E_PORT || 18766);
const httpUrl = `http://127.0.0.1:${port}/graphql`;
const wsUrl = httpUrl.replace(/^http/, 'ws');
const PASSWORD = 'correct horse battery';
const workdir = mkdtempSync(join(tmpdir(), 'kith-ws-close-'));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts kith in `workdir` (same database every time) and waits until it answers. */
async function startKith() {
  const child = spawn(bin, ['serve'], {
    cwd: workdir,
    env: { ...process.env, KITH_LISTEN: `127.0.0.1:${port}`, KITH_RATE_LIMITS: 'off', RUST_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  for (let i = 0; i < 300; i++) {
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

async function request(query, variables = {}, token) {
  const response = await fetch(httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

let users = 0;
async function register(prefix) {
  const username = `${prefix}_${process.pid}_${++users}`.slice(0, 32);
  const data = await request(
    'mutation($i: RegisterInput!) { register(input: $i) { accessToken } }',
    { i: { username, password: PASSWORD } },
  );
  return { token: data.register.accessToken, username };
}

async function login(username) {
  await request(
    'mutation($i: LoginInput!) { login(input: $i) { accessToken } }',
    { i: { identifier: username, password: PASSWORD } },
  );
}

/** Resolves with the first value `check` returns truthy, polled; rejects after `ms`. */
async function until(what, check, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function assertEqual(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** A graphql-ws client that records its sockets' acknowledgements and closes. */
function recordingClient(token, options = {}) {
  const seen = { connected: 0, closes: [] };
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    on: {
      connected: () => seen.connected++,
      closed: (event) => seen.closes.push(event.code),
    },
    ...options,
  });
  return { client, seen };
}

/** Subscribes to notifications; `state` collects what the sink is told. */
function notifications(client) {
  const state = { items: [], error: undefined, completed: false };
  client.subscribe(
    { query: 'subscription { notifications { __typename } }' },
    {
      next: (item) => state.items.push(item),
      error: (error) => (state.error = error),
      complete: () => (state.completed = true),
    },
  );
  return state;
}

let kith = await startKith();

const tests = {
  async '4403 (session revoked): graphql-ws retries it with the same connectionParams, then gives up'() {
    const ann = await register('forbidden');
    // Only the wait between retries is shortened (the default backs off
    // 1 s, 2 s, 4 s, 8 s, 16 s plus up to 3 s each); which codes are retried
    // and how often is the library's default.
    const { client, seen } = recordingClient(ann.token, { retryWait: () => sleep(50) });
    try {
      const sub = notifications(client);
      await until('the first connection_ack', () => seen.connected === 1);
      await request('mutation { logout }', {}, ann.token);
      const error = await until('the subscription to fail', () => sub.error);
      assertEqual(error.code, 4403, 'the close the subscription fails with');
      // One socket closed by the logout, then retryAttempts (5) more, each
      // refused at connection_init with the revoked token.
      assertEqual(seen.closes, [4403, 4403, 4403, 4403, 4403, 4403], 'close codes seen');
      assertEqual(seen.connected, 1, 'acknowledged connections');
      console.log(`     4403: ${seen.closes.length} sockets closed 4403 (1 + 5 retries), then error(${error.code} ${error.reason})`);
    } finally {
      await client.dispose();
    }
  },

  async '1001 (server stopped): graphql-ws reconnects and resubscribes when it comes back'() {
    const bob = await register('away');
    // Every default, the backoff included.
    const { client, seen } = recordingClient(bob.token);
    try {
      const sub = notifications(client);
      await until('the first connection_ack', () => seen.connected === 1);
      // The subscription is live once a sign-in elsewhere reaches it.
      await login(bob.username);
      await until('a notification before the restart', () => sub.items.length === 1);

      kith.child.kill('SIGTERM');
      const stopped = await kith.exited;
      assertEqual(stopped.code, 0, 'kith exits cleanly on SIGTERM');
      await until('the 1001 close', () => seen.closes.includes(1001));
      kith = await startKith();

      await until('a reconnection', () => seen.connected === 2, 30000);
      // Resubscribed by the client itself: a sign-in reaches the same sink.
      for (let i = 0; sub.items.length < 2; i++) {
        if (i === 20) throw new Error('no notification after the reconnection');
        await login(bob.username);
        await sleep(200);
      }
      assertEqual(sub.error, undefined, 'the subscription saw no error');
      assertEqual(sub.completed, false, 'the subscription did not complete');
      console.log(`     1001: closes seen ${JSON.stringify(seen.closes)}, reconnected, notifications ${sub.items.length}`);
    } finally {
      await client.dispose();
    }
  },
};

let passed = 0;
let failed = 0;
for (const [name, test] of Object.entries(tests)) {
  try {
    await test();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name} -- ${err?.stack ?? err}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
kith.child.kill('SIGTERM');
await kith.exited;
rmSync(workdir, { recursive: true, force: true });
process.exitCode = failed > 0 ? 1 : 0;
setTimeout(() => process.exit(process.exitCode), 100).unref();
