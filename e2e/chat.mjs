// A chat flow through the clients app developers use, against a running kith:
// Apollo Client with GraphQLWsLink (graphql-transport-ws), urql with its
// subscriptionExchange (graphql-ws), and the legacy subscriptions-transport-ws
// protocol. Each signs two friends in, opens their conversation, subscribes
// through the client, sends through the client, and checks what arrives.
//
//   KITH_URL=http://127.0.0.1:8080/graphql npm run chat

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { Client as UrqlClient, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';
import { friendsChatting, httpUrl, request } from './kith.mjs';

// Apollo Client 4's GraphQLWsLink reads the global WebSocket (WebSocket.CLOSED)
// when a subscription fails, and Node 20 has none: without this a server's
// error would reach the test as a ReferenceError instead of the GraphQL error.
globalThis.WebSocket ??= WebSocket;

const wsUrl = httpUrl.replace(/^http/, 'ws');
const WAIT_MS = 5000;

const MESSAGE_ADDED = `subscription($c: ID!, $s: Int) {
  messageAdded(conversationId: $c, sinceSeq: $s) { id seq body sender { username } } }`;
const SEND = `mutation($c: ID!, $b: String!, $k: String!) {
  sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { id seq body } }`;

/**
 * Collects what a subscription delivers; `next(n)` waits for n more items.
 * `start(onItem, onError)` subscribes and returns a function that stops it.
 */
function collector(start) {
  const items = [];
  const waiters = [];
  let failure;
  const settle = () => {
    for (const w of [...waiters]) {
      if (failure) w.reject(failure);
      else if (items.length >= w.count) w.resolve(items.slice(0, w.count));
      else continue;
      waiters.splice(waiters.indexOf(w), 1);
    }
  };
  const stop = start(
    (item) => { items.push(item); settle(); },
    (err) => { failure = err instanceof Error ? err : new Error(JSON.stringify(err)); settle(); },
  );
  return {
    stop,
    count: () => items.length,
    until(count) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out with ${items.length} of ${count} items: ${JSON.stringify(items)}`)),
          WAIT_MS,
        );
        waiters.push({
          count,
          resolve: (v) => { clearTimeout(timer); resolve(v); },
          reject: (e) => { clearTimeout(timer); reject(e); },
        });
        settle();
      });
    },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function assertEqual(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function apolloFor(user) {
  const ws = createWsClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
  });
  // Apollo Client 4 gives each operation its type; `split` is now ApolloLink.split.
  const link = ApolloLink.split(
    ({ operationType }) => operationType === 'subscription',
    new GraphQLWsLink(ws),
    new HttpLink({ uri: httpUrl, headers: { authorization: `Bearer ${user.token}` } }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return { client, close: () => { client.stop(); return ws.dispose(); } };
}

function urqlFor(user) {
  const ws = createWsClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
  });
  const client = new UrqlClient({
    url: httpUrl,
    fetchOptions: { headers: { authorization: `Bearer ${user.token}` } },
    exchanges: [
      subscriptionExchange({
        forwardSubscription(operation) {
          const input = { ...operation, query: operation.query || '' };
          return { subscribe: (sink) => ({ unsubscribe: ws.subscribe(input, sink) }) };
        },
      }),
      fetchExchange,
    ],
  });
  return { client, close: () => ws.dispose() };
}

const tests = {
  async 'Apollo Client + GraphQLWsLink: live messages, then a resume with sinceSeq'() {
    const { ann, bob, conversation } = await friendsChatting('ap');
    const anns = apolloFor(ann);
    const bobs = apolloFor(bob);
    try {
      const live = collector((next, error) => {
        const sub = bobs.client
          .subscribe({ query: gql(MESSAGE_ADDED), variables: { c: conversation } })
          .subscribe({ next: (r) => (r.error ? error(r.error) : next(r.data.messageAdded)), error });
        return () => sub.unsubscribe();
      });
      await sleep(300);
      const sent = await anns.client.mutate({
        mutation: gql(SEND),
        variables: { c: conversation, b: 'hello from Apollo', k: 'ap-1' },
      });
      assertEqual(sent.data.sendMessage.seq, 1, 'first seq');
      const [first] = await live.until(1);
      assertEqual([first.seq, first.body, first.sender.username], [1, 'hello from Apollo', ann.username], 'live message');
      live.stop();

      // A second device resumes from seq 0: the stored message, then a live one.
      const resumed = collector((next, error) => {
        const sub = bobs.client
          .subscribe({ query: gql(MESSAGE_ADDED), variables: { c: conversation, s: 0 } })
          .subscribe({ next: (r) => (r.error ? error(r.error) : next(r.data.messageAdded)), error });
        return () => sub.unsubscribe();
      });
      await resumed.until(1);
      await anns.client.mutate({ mutation: gql(SEND), variables: { c: conversation, b: 'second', k: 'ap-2' } });
      // A retry of the same send is the same message and no second delivery.
      await anns.client.mutate({ mutation: gql(SEND), variables: { c: conversation, b: 'second', k: 'ap-2' } });
      const seen = await resumed.until(2);
      assertEqual(seen.map((m) => m.seq), [1, 2], 'resumed seqs');
      await sleep(300);
      assertEqual(resumed.count(), 2, 'deliveries after a retried send');
      resumed.stop();
    } finally {
      await anns.close();
      await bobs.close();
    }
  },

  async 'urql + subscriptionExchange: messages and typing through conversationEvents'() {
    const { ann, bob, conversation } = await friendsChatting('ur');
    const anns = urqlFor(ann);
    const bobs = urqlFor(bob);
    try {
      const events = collector((next, error) => {
        const { unsubscribe } = bobs.client
          .subscription(
            `subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename
              ... on MessageAddedEvent { message { seq body } }
              ... on TypingEvent { typing user { username } } } }`,
            { c: conversation },
          )
          .subscribe((r) => (r.error ? error(r.error) : next(r.data.conversationEvents)));
        return unsubscribe;
      });
      await sleep(300);
      const typing = await anns.client
        .mutation('mutation($c: ID!) { setTyping(input: { conversationId: $c, typing: true }) }', { c: conversation })
        .toPromise();
      if (typing.error) throw typing.error;
      const sent = await anns.client.mutation(SEND, { c: conversation, b: 'hello from urql', k: 'ur-1' }).toPromise();
      if (sent.error) throw sent.error;
      const seen = await events.until(2);
      assertEqual(
        seen,
        [
          { __typename: 'TypingEvent', typing: true, user: { username: ann.username } },
          { __typename: 'MessageAddedEvent', message: { seq: 1, body: 'hello from urql' } },
        ],
        'conversation events',
      );
      events.stop();
    } finally {
      await anns.close();
      await bobs.close();
    }
  },

  async 'subscriptions-transport-ws (legacy graphql-ws protocol): live messages'() {
    const { ann, bob, conversation } = await friendsChatting('st');
    const client = new SubscriptionClient(
      wsUrl,
      { connectionParams: { authorization: `Bearer ${bob.token}` }, reconnect: false, lazy: false },
      WebSocket,
    );
    try {
      const live = collector((next, error) => {
        const sub = client
          .request({ query: MESSAGE_ADDED, variables: { c: conversation } })
          .subscribe({ next: (r) => (r.errors ? error(r.errors) : next(r.data.messageAdded)), error });
        return () => sub.unsubscribe();
      });
      await sleep(300);
      await request(SEND, { c: conversation, b: 'hello, legacy', k: 'st-1' }, ann.token);
      await request(SEND, { c: conversation, b: 'still here', k: 'st-2' }, ann.token);
      const seen = await live.until(2);
      assertEqual(seen.map((m) => [m.seq, m.body]), [[1, 'hello, legacy'], [2, 'still here']], 'legacy delivery');
      live.stop();
    } finally {
      client.close();
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
process.exitCode = failed > 0 ? 1 : 0;
// Clients may keep sockets open; nothing else is left to wait for.
setTimeout(() => process.exit(process.exitCode), 100).unref();
