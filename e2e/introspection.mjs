// What every GraphQL tool asks first: graphql-js's own getIntrospectionQuery(),
// with its defaults and with every option on (as GraphiQL 4, graphql-codegen,
// Apollo Rover, Postman and Insomnia send it), over HTTP and over graphql-ws.
// The answer must build a client schema (buildClientSchema validates it), and
// the deepest type wrapping in kith's schema must come back whole.
//
//   KITH_URL=http://127.0.0.1:8080/graphql npm run introspection

import { buildClientSchema, getIntrospectionQuery, printSchema } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const httpUrl = process.env.KITH_URL || 'http://127.0.0.1:8080/graphql';
const wsUrl = httpUrl.replace(/^http/, 'ws');

const variants = {
  defaults: getIntrospectionQuery(),
  'every option': getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
    oneOf: true,
  }),
};

function checkSchema(result, how) {
  if (result.errors) throw new Error(`${how}: ${JSON.stringify(result.errors)}`);
  const schema = buildClientSchema(result.data);
  const sdl = printSchema(schema);
  for (const expected of ['type Query', 'type Mutation', 'type Subscription', 'messageAdded(']) {
    if (!sdl.includes(expected)) throw new Error(`${how}: the schema lacks ${expected}`);
  }
  // [Gender!]! and the like: a list of non-null inside a non-null.
  const field = schema.getType('DiscoveryPreferences')?.getFields().genders;
  if (!field || String(field.type) !== '[Gender!]!') {
    throw new Error(`${how}: DiscoveryPreferences.genders came back as ${field && String(field.type)}`);
  }
}

async function overHttp(query) {
  const response = await fetch(httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, operationName: 'IntrospectionQuery' }),
  });
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  return response.json();
}

async function overWebSocket(query) {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  try {
    return await new Promise((resolve, reject) => {
      let result;
      client.subscribe(
        { query, operationName: 'IntrospectionQuery' },
        { next: (value) => (result = value), error: reject, complete: () => resolve(result) },
      );
    });
  } finally {
    await client.dispose();
  }
}

let passed = 0;
let failed = 0;
for (const [name, query] of Object.entries(variants)) {
  for (const [transport, run] of [['HTTP', overHttp], ['graphql-ws', overWebSocket]]) {
    const how = `${name} over ${transport}`;
    try {
      checkSchema(await run(query), how);
      console.log(`ok - introspection (${how})`);
      passed++;
    } catch (error) {
      console.log(`not ok - introspection (${how}): ${error.message ?? JSON.stringify(error)}`);
      failed++;
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
