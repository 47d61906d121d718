// A typed kith client, run against a live server (KITH_URL, default
// http://127.0.0.1:8080/graphql): Apollo Client 4 over HTTP, graphql-ws 6
// (with `ws` as Node's WebSocket) for subscriptions, and every operation
// typed by graphql-codegen from kith's schema (src/operations.ts).
//
//   1. two new users register and get access tokens;
//   2. they become friends (kith lets friends and matches message by
//      default) and open their direct conversation;
//   3. the first lists their conversations (a connection);
//   4. the first subscribes to `messageAdded` over graphql-ws, the second
//      sends over HTTP, and the message arrives;
//   5. the first disconnects, misses three messages, resumes with
//      `sinceSeq` and gets exactly those, in order, then a live one.
//
// Each step prints a line; the last line is "N passed, M failed", and any
// failure exits non-zero. Every wait is bounded (WAIT_MS).

import { randomBytes } from 'node:crypto';
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { MessageAddedSubscription } from './gql/graphql.js';
import {
  AcceptFriendRequest,
  DirectConversation,
  MessageAdded,
  MyConversations,
  Register,
  SendFriendRequest,
  SendMessage,
} from './operations.js';

// Apollo Client 4's GraphQLWsLink reads the global WebSocket (WebSocket.CLOSED)
// when a subscription fails; Node 20 has none, so lend it ws's. (Node 22 and
// browsers have one.)
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

const httpUrl = process.env.KITH_URL || 'http://127.0.0.1:8080/graphql';
const wsUrl = httpUrl.replace(/^http/, 'ws');
const PASSWORD = 'correct horse battery';
/** The bound on every single wait: a request, a delivery, a close. */
const WAIT_MS = 10_000;
/** How long a finished feed must stay quiet to show nothing more comes. */
const QUIET_MS = 500;

type Message = MessageAddedSubscription['messageAdded'];

interface User {
  id: string;
  username: string;
  token: string;
}

// ---------------------------------------------------------------- helpers

function fail(message: string): never {
  throw new Error(message);
}

/** Resolves as `promise` does, or rejects once `ms` have passed. */
function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function assertEqual<T>(actual: T, expected: T, what: string): void {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) fail(`${what}: expected ${e}, got ${a}`);
}

/** A data field Apollo typed as possibly missing; with errorPolicy "none" it is there. */
function present<T>(value: T | null | undefined, what: string): T {
  if (value === null || value === undefined) fail(`no ${what} in the response`);
  return value;
}

/** What went wrong, with kith's error codes when the server answered with errors. */
function describe(error: unknown): string {
  if (CombinedGraphQLErrors.is(error)) {
    return error.errors.map((e) => `${e.message} [${String(e.extensions?.['code'] ?? '?')}]`).join('; ');
  }
  if (error instanceof Error) return error.message;
  return JSON.stringify(error);
}

// ---------------------------------------------------------------- clients

/** An Apollo client over HTTP, sending `token` as a Bearer token when given. */
function httpClient(token?: string): ApolloClient {
  return new ApolloClient({
    link: new HttpLink({
      uri: httpUrl,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    }),
    cache: new InMemoryCache(),
  });
}

/**
 * A signed-in connection: queries and mutations over HTTP, subscriptions
 * over one graphql-ws socket whose `connection_init` carries the token.
 */
interface Connection {
  client: ApolloClient;
  ws: WsClient;
  /** Closes the socket (and stops the client); resolves with its close code. */
  close(): Promise<number>;
}

function connect(user: User): Connection {
  const closes: number[] = [];
  const closeWaiters: Array<(code: number) => void> = [];
  const ws = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${user.token}` },
    on: {
      connected: () => console.log(`     graphql-ws: ${user.username} connected (connection_ack)`),
      closed: (event) => {
        // The WebSocket CloseEvent; graphql-ws types it `unknown`.
        const code = (event as { code?: number }).code ?? 0;
        closes.push(code);
        for (const resolve of closeWaiters.splice(0)) resolve(code);
      },
    },
  });
  const link = ApolloLink.split(
    ({ operationType }) => operationType === 'subscription',
    new GraphQLWsLink(ws),
    new HttpLink({ uri: httpUrl, headers: { authorization: `Bearer ${user.token}` } }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return {
    client,
    ws,
    async close() {
      const closed = new Promise<number>((resolve) => closeWaiters.push(resolve));
      client.stop();
      await ws.dispose();
      return within(closed, 'the socket to close');
    },
  };
}

/**
 * Collects what a `messageAdded` subscription delivers; `until(n)` waits
 * (bounded) for n messages in all. A GraphQL or transport error fails it.
 */
class Feed {
  readonly messages: Message[] = [];
  private failure: Error | undefined;
  private completed = false;
  private wake: () => void = () => {};
  private readonly subscription: { unsubscribe(): void };

  constructor(client: ApolloClient, conversationId: string, sinceSeq: number) {
    this.subscription = client
      .subscribe({ query: MessageAdded, variables: { conversationId, sinceSeq } })
      .subscribe({
        next: (result) => {
          if (result.error) this.failure = new Error(`subscription error: ${describe(result.error)}`);
          else if (result.data) this.messages.push(result.data.messageAdded);
          this.wake();
        },
        error: (error: unknown) => {
          this.failure = new Error(`subscription failed: ${describe(error)}`);
          this.wake();
        },
        complete: () => {
          this.completed = true;
          this.wake();
        },
      });
  }

  async until(count: number, what: string): Promise<Message[]> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.messages.length >= count) return this.messages.slice(0, count);
      if (this.completed) fail(`the subscription ended after ${this.messages.length} of ${count} messages`);
      const left = deadline - Date.now();
      if (left <= 0) {
        fail(`timed out waiting for ${what}: ${this.messages.length} of ${count} messages came`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

// ---------------------------------------------------------------- kith calls

async function register(prefix: string): Promise<User> {
  // 3 to 32 of a-z 0-9 _ .: a random suffix keeps reruns apart.
  const username = `${prefix}_${randomBytes(5).toString('hex')}`;
  const { data } = await within(
    httpClient().mutate({ mutation: Register, variables: { input: { username, password: PASSWORD } } }),
    `register ${username}`,
  );
  const payload = present(data, 'register').register;
  assertEqual(payload.user.username, username, 'registered username');
  return { id: payload.user.id, username: payload.user.username, token: payload.accessToken };
}

async function send(client: ApolloClient, conversationId: string, body: string): Promise<number> {
  const { data } = await within(
    client.mutate({
      mutation: SendMessage,
      // The client's own id makes a retried send the same message.
      variables: { input: { conversationId, body, clientMessageId: randomBytes(8).toString('hex') } },
    }),
    `send "${body}"`,
  );
  const message = present(data, 'sendMessage').sendMessage;
  assertEqual(message.body, body, 'sent body');
  return message.seq;
}

const seqsAndBodies = (messages: Message[]) => messages.map((m) => [m.seq, m.body]);

// ---------------------------------------------------------------- the steps

const open: Connection[] = [];
let ann: User;
let bob: User;
let bobHttp: ApolloClient;
let conversationId: string;
let startSeq: number;
let lastSeenSeq = 0;

const steps: Array<[string, () => Promise<string>]> = [
  [
    'register two users, each with an access token',
    async () => {
      ann = await register('ts_ann');
      bob = await register('ts_bob');
      bobHttp = httpClient(bob.token);
      return `${ann.username} (${ann.id}) and ${bob.username} (${bob.id})`;
    },
  ],
  [
    'befriend and open their direct conversation',
    async () => {
      const annHttp = httpClient(ann.token);
      const asked = await within(
        annHttp.mutate({ mutation: SendFriendRequest, variables: { userId: bob.id } }),
        'sendFriendRequest',
      );
      const request = present(asked.data, 'sendFriendRequest').sendFriendRequest;
      assertEqual(request.status, 'PENDING', 'the new friend request');
      const accepted = await within(
        bobHttp.mutate({ mutation: AcceptFriendRequest, variables: { id: request.id } }),
        'acceptFriendRequest',
      );
      assertEqual(present(accepted.data, 'acceptFriendRequest').acceptFriendRequest.status, 'ACCEPTED', 'the answer');
      const opened = await within(
        annHttp.mutate({ mutation: DirectConversation, variables: { userId: bob.id } }),
        'directConversation',
      );
      const conversation = present(opened.data, 'directConversation').directConversation;
      assertEqual(conversation.kind, 'DIRECT', 'conversation kind');
      assertEqual(
        conversation.participants.map((p) => p.username).sort(),
        [ann.username, bob.username].sort(),
        'participants',
      );
      // Bob opening it finds the same conversation.
      const again = await within(
        bobHttp.mutate({ mutation: DirectConversation, variables: { userId: ann.id } }),
        'directConversation (the other side)',
      );
      assertEqual(present(again.data, 'directConversation').directConversation.id, conversation.id, 'the pair\'s conversation');
      conversationId = conversation.id;
      return `friend request ${request.id} accepted; conversation ${conversation.id}`;
    },
  ],
  [
    "list the first user's conversations (a connection)",
    async () => {
      const { data } = await within(
        httpClient(ann.token).query({ query: MyConversations, variables: { first: 10 } }),
        'conversations',
      );
      const page = present(data, 'conversations').conversations;
      assertEqual(page.edges.length, 1, 'a new user\'s conversations');
      const node = present(page.edges[0], 'the first edge').node;
      assertEqual(node.id, conversationId, 'the listed conversation');
      assertEqual(page.pageInfo.hasNextPage, false, 'hasNextPage');
      startSeq = node.lastSeq;
      const withWhom = node.participants.filter((p) => p.id !== ann.id).map((p) => p.username);
      return `${page.edges.length} conversation: ${node.kind} with ${withWhom.join(', ')}, lastSeq ${node.lastSeq}, unread ${node.unreadCount}`;
    },
  ],
  [
    'subscribe to messageAdded over graphql-ws; a message sent over HTTP arrives',
    async () => {
      const live = connect(ann);
      open.push(live);
      // From the seq the listing showed: whatever is sent from then on
      // arrives, even if it is sent before the server has set the feed up.
      const feed = new Feed(live.client, conversationId, startSeq);
      const seq = await send(bobHttp, conversationId, 'hello over HTTP');
      const [message] = await feed.until(1, 'the live message');
      const got = present(message, 'message');
      assertEqual([got.seq, got.body, got.sender?.username], [seq, 'hello over HTTP', bob.username], 'the delivered message');
      await sleep(QUIET_MS);
      assertEqual(feed.messages.length, 1, 'deliveries of one send');
      lastSeenSeq = got.seq;
      feed.stop();
      const code = await live.close();
      open.splice(open.indexOf(live), 1);
      return `seq ${got.seq} "${got.body}" from ${got.sender?.username}; then disconnected (close ${code})`;
    },
  ],
  [
    'missed messages while away; a resume with sinceSeq gets exactly them, then a live one',
    async () => {
      const missed = ['one while away', 'two while away', 'three while away'];
      const sentSeqs: number[] = [];
      for (const body of missed) sentSeqs.push(await send(bobHttp, conversationId, body));
      assertEqual(sentSeqs, [lastSeenSeq + 1, lastSeenSeq + 2, lastSeenSeq + 3], 'seqs of the missed sends');

      const resumed = connect(ann);
      open.push(resumed);
      const feed = new Feed(resumed.client, conversationId, lastSeenSeq);
      const caughtUp = await feed.until(missed.length, 'the missed messages');
      assertEqual(
        seqsAndBodies(caughtUp),
        missed.map((body, i) => [lastSeenSeq + 1 + i, body]),
        'the replayed messages',
      );
      const liveSeq = await send(bobHttp, conversationId, 'and a live one');
      await feed.until(missed.length + 1, 'the live message after the replay');
      await sleep(QUIET_MS);
      assertEqual(
        seqsAndBodies(feed.messages),
        [...missed, 'and a live one'].map((body, i) => [lastSeenSeq + 1 + i, body]),
        'everything after the resume (no gap, no duplicate)',
      );
      assertEqual(liveSeq, lastSeenSeq + missed.length + 1, 'the live send\'s seq');
      feed.stop();
      const replayed = caughtUp.map((m) => m.seq).join(', ');
      return `sinceSeq ${lastSeenSeq}: replayed seqs ${replayed}, then live seq ${liveSeq}`;
    },
  ],
];

// Nothing may hang: a hard stop well past the sum of the per-wait bounds.
setTimeout(() => {
  console.log('FAIL the example did not finish in 120 s');
  process.exit(1);
}, 120_000).unref();

console.log(`kith typed client example against ${httpUrl}`);
let passed = 0;
let failed = 0;
for (const [index, [name, run]] of steps.entries()) {
  try {
    const detail = await run();
    passed++;
    console.log(`ok   ${index + 1}. ${name}\n     ${detail}`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${index + 1}. ${name} -- ${describe(error)}`);
    // Each step builds on the one before.
    break;
  }
}
for (const connection of open) await connection.close().catch(() => undefined);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed !== steps.length ? 1 : 0);
