// GraphiQL in a real browser, cut off from the internet: headless Chromium
// (Debian's `chromium`, driven by playwright-core) opens /graphiql on a running
// kith with every request to a host other than loopback blocked and counted.
// It signs in through the headers editor, runs a query from the editor, opens
// the docs explorer on Query.me, and starts a messageAdded subscription that
// must show a message another client sends. Any off-host request, page error or
// Content-Security-Policy violation fails it. A screenshot is saved.
//
//   KITH_URL=http://127.0.0.1:8080/graphql CHROMIUM=/usr/bin/chromium \
//   GRAPHIQL_SCREENSHOT=graphiql.png npm run graphiql

import { chromium } from 'playwright-core';
import { friendsChatting, httpUrl, request } from './kith.mjs';

const origin = new URL(httpUrl).origin;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const screenshot = process.env.GRAPHIQL_SCREENSHOT || 'graphiql.png';
const WAIT_MS = 15000;

/** How many subscriptions the server has open, from /readyz. */
async function liveSubscriptions() {
  const ready = await (await fetch(`${origin}/readyz`)).json();
  return ready.subscriptions;
}

async function until(what, check) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const isLoopback = (url) => ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);

const offHost = [];
const pageErrors = [];
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
let passed = 0;
let failed = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // Every request the page makes passes here; one to another host is refused.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || isLoopback(url)) return route.continue();
    offHost.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('websocket', (socket) => {
    if (!isLoopback(socket.url())) offHost.push(socket.url());
  });
  page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) =>
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`),
    );
  });

  const { ann, bob, conversation } = await friendsChatting('giql');

  /** Sets a CodeMirror editor's text the way typing does (its change events fire). */
  const setEditor = (selector, text) =>
    page.locator(selector).filter({ visible: true }).first().evaluate((element, value) => element.CodeMirror.setValue(value), text);
  /** Puts an operation in the query editor, once GraphiQL has taken it in (the tab is named after it). */
  const setOperation = async (name, text) => {
    await setEditor('.graphiql-query-editor .CodeMirror', text);
    await page.locator('.graphiql-tab-active', { hasText: name }).waitFor({ timeout: WAIT_MS });
  };
  const responseText = () =>
    page.locator('.graphiql-response .CodeMirror').first().evaluate((element) => element.CodeMirror.getValue());

  const steps = [
    ['the page loads from the binary and fetches the schema', async () => {
      const schema = page.waitForResponse(
        (response) => response.url() === httpUrl && /IntrospectionQuery/.test(response.request().postData() || ''),
        { timeout: WAIT_MS },
      );
      await page.goto(`${origin}/graphiql`);
      if (!(await schema).ok()) throw new Error(`the schema request answered ${(await schema).status()}`);
      await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: WAIT_MS });
    }],
    ['a query from the editor runs with the token typed into the headers editor', async () => {
      await page.getByText('Headers', { exact: true }).click();
      await setEditor('.graphiql-editor-tool .CodeMirror', JSON.stringify({ Authorization: `Bearer ${ann.token}` }));
      await setOperation('Me', 'query Me {\n  me { id username }\n}\n');
      await page.locator('.graphiql-execute-button').click();
      await until('the query result', async () => (await responseText()).includes(ann.username));
      const result = JSON.parse(await responseText());
      if (result.data?.me?.id !== ann.id) throw new Error(`unexpected result: ${JSON.stringify(result)}`);
    }],
    ['the docs explorer opens on Query.me with its description', async () => {
      await page.getByRole('button', { name: /documentation explorer/i }).click();
      const explorer = page.locator('.graphiql-doc-explorer');
      await explorer.getByText('Query', { exact: true }).first().click();
      await explorer.locator('.graphiql-doc-explorer-field-name', { hasText: /^me$/ }).first().click();
      await until('the docs for Query.me', async () =>
        (await explorer.locator('.graphiql-doc-explorer-title').innerText()).trim() === 'me');
      const text = await explorer.innerText();
      if (!/User/.test(text)) throw new Error(`Query.me's docs do not name its type: ${text}`);
    }],
    ['a messageAdded subscription shows a message another client sends', async () => {
      const before = await liveSubscriptions();
      await setOperation(
        'Incoming',
        `subscription Incoming {\n  messageAdded(conversationId: "${conversation}") {\n    seq\n    body\n    sender { username }\n  }\n}\n`,
      );
      await page.locator('.graphiql-execute-button').click();
      // Subscribed as ann over the socket: the server counts it.
      await until('the subscription to start', async () => (await liveSubscriptions()) > before);
      const body = `hello from another client ${Date.now()}`;
      await request(
        'mutation($i: SendMessageInput!) { sendMessage(input: $i) { id } }',
        { i: { conversationId: conversation, body, clientMessageId: `giql-${Date.now()}` } },
        bob.token,
      );
      await until('the message in the subscription results', async () => (await responseText()).includes(body));
      if (!(await responseText()).includes(bob.username)) throw new Error('the message does not name its sender');
      await page.screenshot({ path: screenshot });
    }],
    ['nothing was asked of another host, and the page had no errors', async () => {
      if (offHost.length) throw new Error(`requests off the host: ${offHost.join(', ')}`);
      if (pageErrors.length) throw new Error(pageErrors.join('\n'));
    }],
  ];
  for (const [name, step] of steps) {
    try {
      await step();
      console.log(`ok   ${name}`);
      passed++;
    } catch (error) {
      console.log(`FAIL ${name}: ${error.message}`);
      console.log(`  result pane: ${(await responseText().catch(() => '(none)')).slice(0, 2000)}`);
      for (const line of [...offHost, ...pageErrors]) console.log(`  ${line}`);
      failed++;
      await page.screenshot({ path: screenshot }).catch(() => {});
      break;
    }
  }
} finally {
  await browser.close();
}
console.log(`graphiql: screenshot at ${screenshot}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
