// Runs the GraphQL-over-HTTP conformance audits of `graphql-http` against a
// running kith server. MUST audits decide the exit code; SHOULD and MAY audits
// are printed for information only.
//
//   KITH_URL=http://127.0.0.1:8080/graphql npm run audit

import { serverAudits } from 'graphql-http';

const url = process.env.KITH_URL || 'http://127.0.0.1:8080/graphql';

/** Runs one audit; an audit only throws when it could not run at all. */
async function run(audit) {
  try {
    return await audit.fn();
  } catch (err) {
    return { id: audit.id, name: audit.name, status: 'error', reason: `audit threw: ${err?.message ?? err}` };
  }
}

let passed = 0;
let failed = 0;
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await run(audit);
  const ok = result.status === 'ok';
  const must = audit.name.startsWith('MUST');
  if (must) {
    if (ok) passed++;
    else failed++;
  }
  const mark = ok ? 'ok  ' : 'FAIL';
  const reason = ok ? '' : ` -- ${result.reason}`;
  const note = !ok && !must ? ' [informational]' : '';
  console.log(`${mark} ${audit.id} ${audit.name}${reason}${note}`);
}

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
