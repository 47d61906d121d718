// Photos and attachments uploaded through the clients apps use, against a
// running kith: Apollo Client 4 with apollo-upload-client's UploadHttpLink, and
// urql 6, whose fetchExchange sends a GraphQL multipart request by itself when
// a variable holds a File or Blob. Each runs the same flow with two friends:
// two photos (the second put first), a reorder, the friend's view of them, an
// attachment sent in a message with no text that the friend reads, a deleted
// photo, and an HTML file dressed as a JPEG refused as the client surfaces it.
// The images are PNGs written here (node:zlib), so no fixture or native module
// is needed; kith answers with its re-encoded JPEGs.
//
// apollo-upload-client is 19, not the latest 20: both take @apollo/client 4,
// but 20 wants Node 22.13+ and CI runs Node 20.
//
// The media URLs are only checked for their signed shape here: the route that
// serves them (GET /media/{key}) is not in this branch yet.
//
//   KITH_URL=http://127.0.0.1:8080/graphql npm run uploads

import { deflateSync } from 'node:zlib';
import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { CombinedGraphQLErrors } from '@apollo/client/errors';
import UploadHttpLink from 'apollo-upload-client/UploadHttpLink.mjs';
import { Client as UrqlClient, fetchExchange } from '@urql/core';
import { thumbHashToApproximateAspectRatio, thumbHashToAverageRGBA } from 'thumbhash';
import { friendsChatting, httpUrl } from './kith.mjs';

// ---- images -----------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A width × height PNG (8-bit RGB) of one colour. */
function png(width, height, [r, g, b]) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, truecolour, deflate, no filter, no interlace
  const row = 1 + width * 3; // each scanline starts with its filter type, 0 (none)
  const pixels = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set([r, g, b], y * row + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const pngFile = (name, width, height, rgb) => new File([png(width, height, rgb)], name, { type: 'image/png' });

// ---- checks -----------------------------------------------------------------

function assertEqual(actual, expected, what) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function assert(condition, what) {
  if (!condition) throw new Error(what);
}

// kith's signed URLs: a path on the server, an expiry (a ttl, an hour by
// default, rounded up to a quarter of it) and a 128-bit base64url HMAC.
const MEDIA_URL = /^\/media\/([^?#]+)\?expires=(\d+)&sig=([A-Za-z0-9_-]{22})$/;
const TTL_SECS = Number(process.env.KITH_MEDIA_URL_TTL_SECS || 3600);

function checkUrl(url, what) {
  const m = MEDIA_URL.exec(url);
  assert(m, `${what}: ${JSON.stringify(url)} is not a signed /media/ URL`);
  const now = Date.now() / 1000;
  const expires = Number(m[2]);
  assert(
    expires >= now + TTL_SECS - 60 && expires <= now + TTL_SECS * 1.25 + 60,
    `${what}: expires ${expires} is not about ${TTL_SECS}s from now (${Math.round(now)})`,
  );
  return m[1];
}

/**
 * An image answer (Photo or Attachment) against the PNG sent: re-encoded as
 * JPEG, `sizes` largest first as `[width, height]`, the largest repeated at
 * the top, every URL signed and for its own file, `url(size: 160)` the
 * smallest, and a ThumbHash placeholder of the right shape and colour.
 */
/** Fetches a media URL from kith as an app would, and checks what comes back. */
async function fetchImage(url, bytes, what) {
  const response = await fetch(new URL(url, httpUrl));
  assertEqual(response.status, 200, `${what}: GET ${url}`);
  assertEqual(response.headers.get('content-type'), 'image/jpeg', `${what}: Content-Type`);
  assertEqual(response.headers.get('x-content-type-options'), 'nosniff', `${what}: X-Content-Type-Options`);
  assert(/immutable/.test(response.headers.get('cache-control') ?? ''), `${what}: Cache-Control immutable`);
  const body = Buffer.from(await response.arrayBuffer());
  assertEqual(body.length, bytes, `${what}: the body's length`);
  assertEqual([...body.subarray(0, 3)], [0xff, 0xd8, 0xff], `${what}: a JPEG`);
}

async function checkImage(image, { sizes, rgb }, what) {
  assertEqual(image.mimeType, 'image/jpeg', `${what} mimeType`);
  assertEqual(image.sizes.map((s) => [s.width, s.height]), sizes, `${what} sizes`);
  assertEqual([image.width, image.height], sizes[0], `${what} width, height`);
  assertEqual(image.bytes, image.sizes[0].bytes, `${what} bytes (the largest size's)`);
  for (const s of image.sizes) assert(s.bytes > 100, `${what}: a ${s.width}px JPEG of ${s.bytes} bytes`);
  const keys = image.sizes.map((s, i) => checkUrl(s.url, `${what} sizes[${i}].url`));
  assertEqual(new Set(keys).size, keys.length, `${what}: distinct keys per size`);
  assertEqual(checkUrl(image.url, `${what} url`), keys[0], `${what} url is the largest size's`);
  assertEqual(checkUrl(image.small, `${what} url(size: 160)`), keys.at(-1), `${what} url(size: 160) is the smallest's`);
  for (const [i, s] of image.sizes.entries()) await fetchImage(s.url, s.bytes, `${what} sizes[${i}]`);

  assert(/^[A-Za-z0-9+/]+=*$/.test(image.placeholder), `${what}: placeholder ${image.placeholder} is not base64`);
  const hash = Buffer.from(image.placeholder, 'base64');
  assert(hash.length >= 5 && hash.length <= 32, `${what}: a ${hash.length}-byte ThumbHash`);
  const ratio = thumbHashToApproximateAspectRatio(hash);
  const wanted = sizes[0][0] / sizes[0][1];
  assert(Math.abs(ratio - wanted) / wanted < 0.25, `${what}: placeholder aspect ${ratio}, image ${wanted}`);
  const average = thumbHashToAverageRGBA(hash);
  const got = [average.r, average.g, average.b].map((v) => Math.round(v * 255));
  assert(
    got.every((v, i) => Math.abs(v - rgb[i]) <= 32),
    `${what}: placeholder's average colour ${got}, image ${rgb}`,
  );
}

// ---- operations -------------------------------------------------------------

const IMAGE = 'id width height mimeType bytes placeholder url small: url(size: 160) sizes { width height bytes url }';
const UPLOAD_PHOTO = `mutation($input: UploadPhotoInput!) { uploadPhoto(input: $input) { position ${IMAGE} } }`;
const UPLOAD_ATTACHMENT = `mutation($file: Upload!) { uploadAttachment(file: $file) { ${IMAGE} } }`;
const REORDER = 'mutation($ids: [ID!]!) { reorderPhotos(input: { photoIds: $ids }) { id position } }';
const DELETE = 'mutation($id: ID!) { deletePhoto(id: $id) }';
const MY_PHOTOS = 'query { me { photos { id position width height } } }';
const USER_PHOTOS = 'query($id: ID!) { user(id: $id) { photos { id position width height url } } }';
const SEND = `mutation($c: ID!, $k: String!, $a: [ID!]) {
  sendMessage(input: { conversationId: $c, body: "", clientMessageId: $k, attachmentIds: $a }) {
    id body attachments { id } } }`;
const MESSAGES = `query($c: ID!) { conversation(id: $c) { messages(last: 10) { nodes {
  id body sender { id } attachments { ${IMAGE} } } } } }`;

// Each client behind the same three calls: `mutate` and `query` return the
// data or throw; `refusal` returns the GraphQL errors of a mutation that must
// fail, as the client hands them to the app.

function apolloFor(user) {
  const client = new ApolloClient({
    link: new UploadHttpLink({ uri: httpUrl, headers: { authorization: `Bearer ${user.token}` } }),
    cache: new InMemoryCache(),
  });
  return {
    async mutate(doc, variables) {
      return (await client.mutate({ mutation: gql(doc), variables, fetchPolicy: 'no-cache' })).data;
    },
    async query(doc, variables) {
      return (await client.query({ query: gql(doc), variables, fetchPolicy: 'no-cache' })).data;
    },
    async refusal(doc, variables) {
      try {
        await client.mutate({ mutation: gql(doc), variables, fetchPolicy: 'no-cache' });
      } catch (err) {
        if (CombinedGraphQLErrors.is(err)) return err.errors;
        throw err;
      }
      throw new Error('the mutation was not refused');
    },
    close: () => client.stop(),
  };
}

function urqlFor(user) {
  const client = new UrqlClient({
    url: httpUrl,
    fetchOptions: { headers: { authorization: `Bearer ${user.token}` } },
    exchanges: [fetchExchange],
    requestPolicy: 'network-only',
  });
  const run = async (op) => {
    const result = await op.toPromise();
    if (result.error) throw result.error;
    return result.data;
  };
  return {
    mutate: (doc, variables) => run(client.mutation(doc, variables)),
    query: (doc, variables) => run(client.query(doc, variables)),
    async refusal(doc, variables) {
      const result = await client.mutation(doc, variables).toPromise();
      if (!result.error) throw new Error('the mutation was not refused');
      if (result.error.networkError) throw result.error;
      return result.error.graphQLErrors;
    },
    close() {},
  };
}

// ---- the flow ---------------------------------------------------------------

const RED = [220, 40, 40];
const BLUE = [40, 60, 220];
const GREEN = [40, 180, 70];

async function flow(prefix, clientFor) {
  const { ann, bob, conversation } = await friendsChatting(prefix);
  const anns = clientFor(ann);
  const bobs = clientFor(bob);
  let step = '';
  try {
    step = 'a first photo (400×300 PNG)';
    const first = (await anns.mutate(UPLOAD_PHOTO, { input: { file: pngFile('red.png', 400, 300, RED) } }))
      .uploadPhoto;
    assertEqual(first.position, 0, 'first photo position');
    await checkImage(first, { sizes: [[400, 300], [160, 120]], rgb: RED }, 'first photo');

    step = 'a second photo (300×400 PNG) put first';
    const second = (
      await anns.mutate(UPLOAD_PHOTO, { input: { file: pngFile('blue.png', 300, 400, BLUE), position: 0 } })
    ).uploadPhoto;
    assertEqual(second.position, 0, 'second photo position');
    await checkImage(second, { sizes: [[300, 400], [120, 160]], rgb: BLUE }, 'second photo');
    let mine = (await anns.query(MY_PHOTOS)).me.photos;
    assertEqual(mine.map((p) => [p.id, p.position]), [[second.id, 0], [first.id, 1]], 'me.photos after a photo put first');

    step = 'reorderPhotos';
    const reordered = (await anns.mutate(REORDER, { ids: [first.id, second.id] })).reorderPhotos;
    assertEqual(reordered.map((p) => [p.id, p.position]), [[first.id, 0], [second.id, 1]], 'reorderPhotos answer');
    mine = (await anns.query(MY_PHOTOS)).me.photos;
    assertEqual(mine.map((p) => [p.id, p.position]), [[first.id, 0], [second.id, 1]], 'me.photos after reorderPhotos');

    step = "the friend's view of the photos";
    const seen = (await bobs.query(USER_PHOTOS, { id: ann.id })).user.photos;
    assertEqual(
      seen.map((p) => [p.id, p.position, p.width, p.height]),
      [[first.id, 0, 400, 300], [second.id, 1, 300, 400]],
      "the friend's user(id).photos",
    );
    seen.forEach((p, i) => checkUrl(p.url, `the friend's photos[${i}].url`));

    step = 'an attachment (200×100 PNG)';
    const attachment = (await anns.mutate(UPLOAD_ATTACHMENT, { file: pngFile('green.png', 200, 100, GREEN) }))
      .uploadAttachment;
    await checkImage(attachment, { sizes: [[200, 100], [160, 80]], rgb: GREEN }, 'attachment');

    step = 'sendMessage with the attachment and no text';
    const sent = (await anns.mutate(SEND, { c: conversation, k: `${prefix}-1`, a: [attachment.id] })).sendMessage;
    assertEqual([sent.body, sent.attachments.map((a) => a.id)], ['', [attachment.id]], 'sendMessage answer');

    step = "the friend's conversation.messages";
    const messages = (await bobs.query(MESSAGES, { c: conversation })).conversation.messages.nodes;
    const got = messages.find((m) => m.id === sent.id);
    assert(got, `the message ${sent.id} is not among ${JSON.stringify(messages.map((m) => m.id))}`);
    assertEqual([got.body, got.sender.id], ['', ann.id], 'the message as the friend reads it');
    assertEqual(got.attachments.map((a) => a.id), [attachment.id], 'its attachments');
    await checkImage(got.attachments[0], { sizes: [[200, 100], [160, 80]], rgb: GREEN }, "the friend's attachment");

    step = 'deletePhoto';
    assertEqual((await anns.mutate(DELETE, { id: first.id })).deletePhoto, first.id, 'deletePhoto answer');
    mine = (await anns.query(MY_PHOTOS)).me.photos;
    assertEqual(mine.map((p) => [p.id, p.position]), [[second.id, 0]], 'me.photos after deletePhoto');
    // Its files went with it: the URL handed out before now finds nothing.
    const gone = await fetch(new URL(first.url, httpUrl));
    assertEqual(gone.status, 404, `GET ${first.url} after deletePhoto`);

    step = 'an HTML file named photo.jpg, sent as image/jpeg';
    const html = new File(
      ['<!doctype html><html><body><script>alert(document.cookie)</script></body></html>\n'],
      'photo.jpg',
      { type: 'image/jpeg' },
    );
    const errors = await anns.refusal(UPLOAD_PHOTO, { input: { file: html } });
    assertEqual(
      errors.map((e) => [e.extensions?.code, e.extensions?.field]),
      [['BAD_USER_INPUT', 'file']],
      `the refusal's extensions (${JSON.stringify(errors)})`,
    );
    mine = (await anns.query(MY_PHOTOS)).me.photos;
    assertEqual(mine.map((p) => p.id), [second.id], 'me.photos after the refused upload');
  } catch (err) {
    err.message = `${step}: ${err.message}`;
    throw err;
  } finally {
    anns.close();
    bobs.close();
  }
}

const tests = {
  "Apollo Client 4 + apollo-upload-client's UploadHttpLink: photos, a reorder, an attachment, a disguised file": () =>
    flow('upap', apolloFor),
  'urql 6 (fetchExchange multipart): photos, a reorder, an attachment, a disguised file': () => flow('upur', urqlFor),
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
setTimeout(() => process.exit(process.exitCode), 100).unref();
