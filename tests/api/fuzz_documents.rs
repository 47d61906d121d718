//! A bounded fuzz of the document path (nesting check, parse, shape limits,
//! validation, cost, execution) through the real server: documents grown from
//! a seed corpus that holds every shape that once crashed or held the process,
//! mutated at random. Every answer must be a GraphQL response whose errors
//! carry a client-facing code, within a bound, and the process must stay up.
//!
//! `KITH_FUZZ_ITERATIONS` (default 400) and `KITH_FUZZ_SEED` (default: the
//! clock) set the run; a failure prints the seed and the document, so
//! `KITH_FUZZ_SEED=<seed> cargo test --test api fuzz_documents::` replays it.

use crate::common;

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

const INTROSPECTION: &str = include_str!("../fixtures/introspection-full.graphql");
const ANSWER_BOUND: Duration = Duration::from_secs(20);

/// The documents mutations start from: what apps send, and what attackers sent.
fn corpus() -> Vec<String> {
    let mut seeds: Vec<String> = [
        "{ me { id username friends(first: 10) { nodes { id username } } } }",
        "query Q($n: Int) { searchGroups(query: \"a\", first: $n) { nodes { id name members(first: $n) { nodes { id } } } } }",
        "mutation { register(input: { username: \"fuzz\", password: \"correct horse battery\" }) { accessToken } }",
        "{ usernameAvailable(username: \"x\") }",
        "query { ...A } fragment A on Query { __typename ...B } fragment B on Query { __typename }",
        "{ a: __typename @skip(if: false) b: __typename @include(if: true) }",
        "subscription { messageAdded { seq body } }",
        "{ node(id: \"VXNlcjox\") { id ... on User { username } } }",
        "{ __type(name: \"User\") { fields { type { ofType { ofType { name } } } } } }",
        "query \"\"\"block \\\"\"\" string\"\"\" { __typename } # comment {{{",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    seeds.push(INTROSPECTION.to_owned());
    seeds.push(format!(
        "{{ usernameAvailable(username: {}1{}) }}",
        "{a:".repeat(1_300),
        "}".repeat(1_300)
    ));
    seeds.push(format!(
        "{{ usernameAvailable(username: {}1{}) }}",
        "[".repeat(2_000),
        "]".repeat(2_000)
    ));
    let mut fan_out = String::from("query { ...F0 }\n");
    for level in 0..26 {
        fan_out.push_str(&format!(
            "fragment F{level} on Query {{ ...F{n} ...F{n} }}\n",
            n = level + 1
        ));
    }
    fan_out.push_str("fragment F26 on Query { __typename }\n");
    seeds.push(fan_out);
    seeds.push(format!(
        "{{ __typename {} }}",
        "@skip(if: false) ".repeat(5_000)
    ));
    seeds.push(format!(
        "{{ {} }}",
        (0..3_000)
            .map(|i| format!("a{i}: __typename "))
            .collect::<String>()
    ));
    seeds
}

/// One random change: the kinds that broke parsers and limits before.
fn mutate(rng: &mut StdRng, seeds: &[String], document: &str) -> String {
    let bytes = document.as_bytes();
    let at = |rng: &mut StdRng| rng.random_range(0..=bytes.len());
    let mut out = match rng.random_range(0..6) {
        // Insert brackets, quotes or punctuation.
        0 => {
            let pick = [
                "{", "}", "[", "]", "(", ")", "\"", "\"\"\"", "#", "...", "@", "$", ":", "\\",
            ];
            let i = at(rng);
            let piece = pick[rng.random_range(0..pick.len())].repeat(rng.random_range(1..80));
            [&bytes[..i], piece.as_bytes(), &bytes[i..]].concat()
        }
        // Delete a slice.
        1 => {
            let (a, b) = (at(rng), at(rng));
            let (a, b) = (a.min(b), a.max(b));
            [&bytes[..a], &bytes[b..]].concat()
        }
        // Repeat a slice many times.
        2 => {
            let (a, b) = (at(rng), at(rng));
            let (a, b) = (a.min(b), a.max(b).min(a + 200));
            let piece = bytes[a..b].repeat(rng.random_range(2..200));
            [&bytes[..b], &piece, &bytes[b..]].concat()
        }
        // Splice another seed in.
        3 => {
            let other = seeds[rng.random_range(0..seeds.len())].as_bytes();
            let i = at(rng);
            [&bytes[..i], other, &bytes[i..]].concat()
        }
        // Flip a byte.
        4 if !bytes.is_empty() => {
            let mut owned = bytes.to_vec();
            let i = rng.random_range(0..owned.len());
            owned[i] = rng.random();
            owned
        }
        // Wrap the whole document's selections deeper.
        _ => {
            let depth = rng.random_range(1..100);
            format!(
                "{{ {}{document}{} }}",
                "a { ".repeat(depth),
                " }".repeat(depth)
            )
            .into_bytes()
        }
    };
    // Keep each request under the body limit, as attackers must.
    out.truncate(1 << 20);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn random_documents_get_coded_answers_and_never_hurt_the_process() {
    let (iterations, seed) = common::fuzz_run(400);
    let mut rng = StdRng::seed_from_u64(seed);
    let app = common::spawn_app().await;
    let user = app.register("fuzzer").await;
    let seeds = corpus();
    for iteration in 0..iterations {
        let mut document = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(0..4) {
            document = mutate(&mut rng, &seeds, &document);
        }
        let mut request = app
            .client
            .post(app.url("/graphql"))
            .timeout(ANSWER_BOUND)
            .json(&json!({ "query": document, "variables": { "n": rng.random_range(-5..200) } }));
        if rng.random_bool(0.5) {
            request = request.bearer_auth(&user.access_token);
        }
        let replay =
            || format!("KITH_FUZZ_SEED={seed}, iteration {iteration}, document: {document:.400}");
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("no answer ({err}); {}", replay()));
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|err| panic!("not JSON ({err}); {}", replay()));
        assert!(
            status == 200 || status == 400,
            "status {status}: {body}; {}",
            replay()
        );
        for error in body["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"].as_str().unwrap_or_default();
            assert!(
                !code.is_empty() && code != "INTERNAL_SERVER_ERROR",
                "error without a client-facing code: {error}; {}",
                replay()
            );
        }
    }
    let health = app
        .client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the process is up");
    assert_eq!(health.status(), 200);
}
