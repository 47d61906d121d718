//! Sends racing in one conversation, all in flight at once
//! (`TestApp::at_once`): every accepted message takes the next seq, none is
//! lost or taken twice, and a refused or repeated send takes none. A lost seq
//! would be a gap that a client resuming with `sinceSeq` waits on forever.

use crate::common;

use common::{error_code, spawn_app};
use serde_json::{Value, json};

const SEND: &str = "mutation($c: ID!, $b: String!, $k: String!) {
    sendMessage(input: { conversationId: $c, body: $b, clientMessageId: $k }) { id seq } }";
const ROUNDS: usize = 6;
/// Each participant's new messages per round.
const SENDS_EACH: usize = 4;
/// What the conversation API allows in a body (`MAX_BODY_CHARS`).
const MAX_BODY_CHARS: usize = 4000;

#[tokio::test]
async fn sends_at_once_take_every_seq_exactly_once() {
    let app = spawn_app().await;
    let (ann, bob, conversation) = app.friends_chatting().await;
    let mut accepted = Vec::new();
    for round in 0..ROUNDS {
        let send = |who: &common::Session, body: String, key: String| {
            (
                SEND,
                json!({ "c": conversation, "b": body, "k": key }),
                who.token().map(str::to_owned),
            )
        };
        let mut calls = Vec::new();
        for i in 0..SENDS_EACH {
            calls.push(send(
                &ann,
                format!("ann {round}.{i}"),
                format!("a{round}.{i}"),
            ));
            calls.push(send(
                &bob,
                format!("bob {round}.{i}"),
                format!("b{round}.{i}"),
            ));
        }
        // Ann's first send again, racing itself: the same message, no new seq.
        calls.push(send(&ann, format!("ann {round}.0"), format!("a{round}.0")));
        // Refused ones take no seq either.
        calls.push(send(
            &bob,
            "x".repeat(MAX_BODY_CHARS + 1),
            format!("long{round}"),
        ));
        calls.push(send(&ann, String::new(), format!("empty{round}")));
        let calls: Vec<_> = calls
            .iter()
            .map(|(query, variables, token)| (*query, variables.clone(), token.as_deref()))
            .collect();
        let answers = app.at_once(&calls).await;

        let (new, rest) = answers.split_at(2 * SENDS_EACH);
        let [retry, long, empty] = rest else {
            unreachable!()
        };
        for answer in new {
            assert!(answer.get("errors").is_none(), "round {round}: {answer}");
            accepted.push(answer["data"]["sendMessage"].clone());
        }
        assert!(retry.get("errors").is_none(), "round {round}: {retry}");
        assert_eq!(
            retry["data"]["sendMessage"], new[0]["data"]["sendMessage"],
            "round {round}: a retry racing its first send is that message"
        );
        for refused in [long, empty] {
            assert_eq!(error_code(refused), "BAD_USER_INPUT", "{refused}");
        }
    }

    let mut seqs: Vec<i64> = accepted
        .iter()
        .map(|message| message["seq"].as_i64().unwrap())
        .collect();
    seqs.sort_unstable();
    let sent = (ROUNDS * 2 * SENDS_EACH) as i64;
    assert_eq!(
        seqs,
        (1..=sent).collect::<Vec<_>>(),
        "every seq once, none lost"
    );
    // Stored as answered: the history holds exactly those, in seq order.
    let history = app
        .data(
            "query($c: ID!, $n: Int!) { conversation(id: $c) {
                messages(last: $n) { edges { node { id seq } } } } }",
            json!({ "c": conversation, "n": sent + 10 }),
            bob.token(),
        )
        .await;
    let stored: Vec<Value> = history["conversation"]["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    accepted.sort_by_key(|message| message["seq"].as_i64());
    assert_eq!(stored, accepted);
}
