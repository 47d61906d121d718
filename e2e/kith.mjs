// What the e2e scripts share: plain GraphQL requests to the kith under test
// (KITH_URL), and the people they set up through them.

export const httpUrl = process.env.KITH_URL || 'http://127.0.0.1:8080/graphql';
export const PASSWORD = 'correct horse battery';

/** A plain GraphQL POST; throws on any error. */
export async function request(query, variables = {}, token) {
  const response = await fetch(httpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

let users = 0;
/** A new account with a name no earlier run used. */
export async function register(prefix) {
  const username = `${prefix}_${process.pid}_${++users}`.slice(0, 32);
  const data = await request(
    'mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }',
    { i: { username, password: PASSWORD } },
  );
  return { token: data.register.accessToken, id: data.register.user.id, username };
}

/** Two friends and the id of their direct conversation. */
export async function friendsChatting(prefix) {
  const [ann, bob] = [await register(`${prefix}a`), await register(`${prefix}b`)];
  const sent = await request(
    'mutation($u: ID!) { sendFriendRequest(input: { userId: $u }) { id } }',
    { u: bob.id },
    ann.token,
  );
  await request('mutation($id: ID!) { acceptFriendRequest(id: $id) { id } }', { id: sent.sendFriendRequest.id }, bob.token);
  const opened = await request('mutation($u: ID!) { directConversation(userId: $u) { id } }', { u: bob.id }, ann.token);
  return { ann, bob, conversation: opened.directConversation.id };
}
