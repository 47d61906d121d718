//! The authorization matrix (issue 30): every mutation and every subscription
//! of the schema against every kind of caller that may not call it, in one
//! table per domain, over one shared [`World`] built once per test.
//!
//! A mutation row names its operation, the caller's kind, the document and
//! variables built from the world, the `extensions.code` it must answer, and a
//! [`Witness`]: a query a rightful user makes before and after the call, which
//! must come back the same (a refused call wrote nothing). Every operation that
//! needs a signed-in caller also gets, without being listed, the rows of an
//! anonymous caller, of its signer's ended sessions (logged out, and revoked
//! from another device) and of an account deleted since. A run collects every
//! failing row and fails once, printing them all.
//!
//! Subscriptions have their table in `subscriptions`, with the feeds that
//! must stay quiet or end (a marker proves the quiet) beside it.
//!
//! `every_operation_of_the_schema_has_rows` fails when the served schema has a
//! mutation or a subscription that no table names, so a new operation cannot
//! slip in without deciding who may not call it.

use crate::common;

use std::{collections::BTreeSet, fmt};

use common::{PASSWORD, Session, TestApp};
use serde_json::{Value, json};

mod accounts;
mod chat;
mod discovery;
mod groups;
mod media;
mod social;
mod subscriptions;
mod world;

pub use world::World;

/// Who calls, as the product speaks of them. Each names how the caller stands
/// to what the row acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No token at all.
    Anonymous,
    /// The signer's own session, ended by `logout`.
    LoggedOut,
    /// The signer's own session, ended by `revokeSession` from another
    /// device.
    Revoked,
    /// Signed in, with no relation to anyone involved.
    Stranger,
    /// The other side blocked the caller.
    BlockedBy,
    /// The caller blocked the other side.
    Blocker,
    /// The caller's match with the other side ended.
    Unmatched,
    /// The other participant of a direct conversation (not the sender).
    OtherParticipant,
    /// A plain member of the group (not an owner or admin).
    Member,
    /// An admin of the group (not its owner).
    Admin,
    /// The group's owner, answering what is another's to answer.
    Owner,
    /// Was a member of the group, until removed.
    RemovedMember,
    /// Owns another group, and is no member of this one.
    OwnerOfAnotherGroup,
    /// A member of another group, and of no role in this one.
    MemberOfAnotherGroup,
    /// Sent the request that only its recipient may answer.
    Sender,
    /// Received the request that only its sender may withdraw.
    Recipient,
    /// Holds a pending invitation: no member yet.
    Invitee,
    /// Was invited, until the invitation was revoked.
    Uninvited,
    /// Declined the invitation.
    Decliner,
    /// Anyone at all, on an operation anyone may call, with what it must
    /// still refuse.
    Anyone,
    /// Holds the account's live session (a lost phone), not its password.
    SessionThief,
    /// Holds a token of an account deleted since.
    DeletedAccount,
    /// Holds a session its user ended with all the others.
    LoggedOutEverywhere,
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A user of the world: a live session, and two of their sessions that
/// ended, whose access and refresh tokens must no longer work.
#[derive(Clone, Debug)]
pub struct Person {
    pub session: Session,
    /// Ended by `logout` from itself.
    pub logged_out: Session,
    /// Ended by `revokeSession` from `session`.
    pub revoked: Session,
}

impl Person {
    pub fn id(&self) -> &str {
        &self.session.user_id
    }

    pub fn token(&self) -> Option<String> {
        Some(self.session.access_token.clone())
    }
}

/// A query a rightful user makes before and after a row's call: a refused call
/// must leave its answer unchanged.
#[derive(Clone, Debug)]
pub struct Witness {
    document: &'static str,
    variables: Value,
    viewer: Session,
}

impl Witness {
    pub fn new(viewer: &Person, document: &'static str, variables: Value) -> Self {
        Self {
            document,
            variables,
            viewer: viewer.session.clone(),
        }
    }

    async fn look(&self, app: &TestApp) -> Value {
        app.graphql(self.document, self.variables.clone(), self.viewer.token())
            .await
    }
}

/// One caller an operation must refuse, and the code it must answer.
#[derive(Clone, Debug)]
struct Refusal {
    caller: Caller,
    token: Option<String>,
    code: &'static str,
}

/// One operation called on one thing of the world, and everyone it must
/// refuse there.
pub struct Operation {
    name: &'static str,
    /// What it acts on, for the failure messages.
    on: String,
    document: &'static str,
    variables: Value,
    /// One who signs in to call it (one who may, unless nobody may there):
    /// their ended sessions must be refused, as must no token at all. `None`
    /// for an operation anyone may call.
    signer: Option<Person>,
    /// Why anyone may call it, for an operation without a signer.
    public_because: Option<&'static str>,
    witness: Option<Witness>,
    refusals: Vec<Refusal>,
    /// Where in the variables a file goes, for an upload: then the call is a
    /// multipart request carrying a small JPEG there.
    file_at: Option<&'static str>,
}

impl Operation {
    /// An operation for signed-in callers, as `signer` calls it on `on`.
    pub fn signed_in(
        name: &'static str,
        on: impl Into<String>,
        document: &'static str,
        variables: Value,
        signer: &Person,
    ) -> Self {
        Self {
            name,
            on: on.into(),
            document,
            variables,
            signer: Some(signer.clone()),
            public_because: None,
            witness: None,
            refusals: Vec::new(),
            file_at: None,
        }
    }

    /// An operation anyone may call, signed in or not, with why.
    pub fn public(
        name: &'static str,
        because: &'static str,
        on: impl Into<String>,
        document: &'static str,
        variables: Value,
    ) -> Self {
        Self {
            name,
            on: on.into(),
            document,
            variables,
            signer: None,
            public_because: Some(because),
            witness: None,
            refusals: Vec::new(),
            file_at: None,
        }
    }

    /// Sends the call as an upload, a JPEG at `path` of the variables
    /// (`variables.file`).
    pub fn uploading(mut self, path: &'static str) -> Self {
        self.file_at = Some(path);
        self
    }

    pub fn witness(mut self, witness: Witness) -> Self {
        self.witness = Some(witness);
        self
    }

    /// `caller`, signed in as `who`, must be answered `code`.
    pub fn refuse(mut self, caller: Caller, who: &Person, code: &'static str) -> Self {
        self.refusals.push(Refusal {
            caller,
            token: who.token(),
            code,
        });
        self
    }

    /// A caller holding `token` (none when anonymous) must be answered `code`.
    pub fn refuse_token(
        mut self,
        caller: Caller,
        token: Option<String>,
        code: &'static str,
    ) -> Self {
        self.refusals.push(Refusal {
            caller,
            token,
            code,
        });
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The listed refusals, after those every signed-in operation has: no
    /// token, the signer's own ended sessions, and the token of an
    /// account that is gone.
    fn rows(&self, deleted: &Session) -> Vec<Refusal> {
        let mut rows = Vec::new();
        if let Some(signer) = &self.signer {
            rows.push(Refusal {
                caller: Caller::Anonymous,
                token: None,
                code: "UNAUTHENTICATED",
            });
            for (caller, session) in [
                (Caller::LoggedOut, &signer.logged_out),
                (Caller::Revoked, &signer.revoked),
                (Caller::DeletedAccount, deleted),
            ] {
                rows.push(Refusal {
                    caller,
                    token: Some(session.access_token.clone()),
                    code: "UNAUTHENTICATED",
                });
            }
        }
        rows.extend(self.refusals.iter().cloned());
        rows
    }
}

/// Runs every row of `operations` and fails once, listing every row that
/// answered another code than its own or changed what its witness sees.
pub async fn run(app: &TestApp, world: &World, operations: Vec<Operation>) {
    let mut failures = Vec::new();
    let mut count = 0;
    for operation in &operations {
        assert!(
            operation.signer.is_some() || operation.public_because.is_some(),
            "{}: say who may call it, or why anyone may",
            operation.name
        );
        for row in operation.rows(&world.deleted) {
            count += 1;
            if let Err(failure) = check(app, operation, &row).await {
                failures.push(format!(
                    "{} on {} as {}: {failure}",
                    operation.name, operation.on, row.caller
                ));
            }
        }
    }
    println!("{count} rows");
    assert!(
        failures.is_empty(),
        "{} of {count} rows broke the authorization matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn check(app: &TestApp, operation: &Operation, row: &Refusal) -> Result<(), String> {
    let before = match &operation.witness {
        Some(witness) => Some(witness.look(app).await),
        None => None,
    };
    let response = match operation.file_at {
        None => {
            app.graphql(
                operation.document,
                operation.variables.clone(),
                row.token.as_deref(),
            )
            .await
        }
        Some(path) => {
            let picture = crate::media::jpeg(64, 48);
            crate::media::post_multipart(
                app,
                row.token.as_deref(),
                json!({ "query": operation.document, "variables": operation.variables }),
                json!({ "0": [path] }),
                &[("0", &picture)],
            )
            .await
            .1
        }
    };
    let code = response["errors"][0]["extensions"]["code"].as_str();
    if code != Some(row.code) {
        return Err(format!(
            "expected {}, got {}: {response}",
            row.code,
            code.unwrap_or("no error")
        ));
    }
    if let (Some(witness), Some(before)) = (&operation.witness, before) {
        let after = witness.look(app).await;
        if after != before {
            return Err(format!(
                "refused ({}) but changed what {} sees:\nbefore {before}\nafter  {after}",
                row.code, witness.viewer.username
            ));
        }
    }
    Ok(())
}

/// The mutations and subscriptions the server serves.
async fn served_operations(app: &TestApp) -> BTreeSet<String> {
    let schema = app
        .data(
            "{ __schema { mutationType { fields { name } }
                subscriptionType { fields { name } } } }",
            json!({}),
            None,
        )
        .await;
    ["mutationType", "subscriptionType"]
        .iter()
        .flat_map(|kind| {
            schema["__schema"][kind]["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|field| field["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_operation_of_the_schema_has_rows() {
    let app = crate::sign_in::matrix_app().await;
    let world = World::build(&app).await;
    let mut named: BTreeSet<String> = [
        accounts::operations(&world),
        social::operations(&world),
        groups::operations(&world),
        chat::operations(&world),
        discovery::operations(&world),
        media::operations(&world),
    ]
    .into_iter()
    .flatten()
    .map(|operation| operation.name().to_owned())
    .collect();
    named.extend(subscriptions::names(&world).map(str::to_owned));
    let served = served_operations(&app).await;
    let missing: Vec<_> = served.difference(&named).collect();
    let unknown: Vec<_> = named.difference(&served).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "operations of the schema without rows in the matrix: {missing:?}; \
         rows for operations the schema has not: {unknown:?}"
    );
}

/// Registers `username` and opens two more sessions, one logged out and one
/// revoked from the first.
pub async fn person(app: &TestApp, username: &str) -> Person {
    let session = app.register(username).await;
    let logged_out = Session::from_payload(&app.login(username, PASSWORD).await["data"]["login"]);
    app.data("mutation { logout }", json!({}), logged_out.token())
        .await;
    let (revoked, revoked_id) = another_session(app, username).await;
    app.data(
        "mutation($id: ID!) { revokeSession(id: $id) }",
        json!({ "id": revoked_id }),
        session.token(),
    )
    .await;
    Person {
        session,
        logged_out,
        revoked,
    }
}

/// A further session of `username`'s, as another device of theirs signs in,
/// and that session's id (for `revokeSession`).
pub async fn another_session(app: &TestApp, username: &str) -> (Session, Value) {
    let session = Session::from_payload(&app.login(username, PASSWORD).await["data"]["login"]);
    let id = app
        .data(
            "{ me { sessions { id current } } }",
            json!({}),
            session.token(),
        )
        .await["me"]["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session")["id"]
        .clone();
    (session, id)
}

/// Builds the world, then runs `operations` over it.
async fn run_domain(operations: fn(&World) -> Vec<Operation>) {
    let app = crate::sign_in::matrix_app().await;
    let world = World::build(&app).await;
    run(&app, &world, operations(&world)).await;
}

#[tokio::test]
async fn account_mutations_refuse_who_may_not_call_them() {
    run_domain(accounts::operations).await;
}

#[tokio::test]
async fn social_mutations_refuse_who_may_not_call_them() {
    run_domain(social::operations).await;
}

#[tokio::test]
async fn group_mutations_refuse_who_may_not_call_them() {
    run_domain(groups::operations).await;
}

#[tokio::test]
async fn chat_mutations_refuse_who_may_not_call_them() {
    run_domain(chat::operations).await;
}

#[tokio::test]
async fn discovery_and_presence_mutations_refuse_who_may_not_call_them() {
    run_domain(discovery::operations).await;
}

#[tokio::test]
async fn media_mutations_refuse_who_may_not_call_them() {
    run_domain(media::operations).await;
}

/// The witnesses the tables share: what a refused call must leave as it was.
pub mod look {
    use serde_json::{Value, json};

    use super::{Person, Witness};

    /// A conversation as one of its participants reads it: every message,
    /// its edits, tombstone, reactions and readers.
    pub fn conversation(viewer: &Person, id: &Value) -> Witness {
        Witness::new(
            viewer,
            "query($c: ID!) { conversation(id: $c) { lastSeq participants { username }
                messages(last: 100) { nodes { seq body editedAt deletedAt
                    reactions { emoji count } readBy { username } } } } }",
            json!({ "c": id }),
        )
    }

    /// The viewer's conversations: none may be opened behind their back.
    pub fn conversations(viewer: &Person) -> Witness {
        Witness::new(
            viewer,
            "{ conversations(first: 100) { nodes { id lastSeq } } }",
            json!({}),
        )
    }

    /// Everything about a group its owner sees.
    pub fn group(owner: &Person, id: &Value) -> Witness {
        Witness::new(
            owner,
            "query($g: ID!) { group(id: $g) { name description visibility joinPolicy
                memberCount members(first: 100) { edges { role node { username } } }
                invitations { nodes { id status } } joinRequests { nodes { id status } }
                conversation { lastSeq } } }",
            json!({ "g": id }),
        )
    }

    /// The groups the viewer belongs to.
    pub fn groups(viewer: &Person) -> Witness {
        Witness::new(
            viewer,
            "{ me { groups(first: 100) { nodes { id } } groupInvitations { nodes { id status } } } }",
            json!({}),
        )
    }

    /// The viewer's friends, requests both ways and blocks.
    pub fn social(viewer: &Person) -> Witness {
        Witness::new(
            viewer,
            "{ me { friends(first: 100) { nodes { username } }
                incomingFriendRequests { nodes { id status } }
                outgoingFriendRequests { nodes { id status } }
                blockedUsers { nodes { username } } } }",
            json!({}),
        )
    }

    /// The viewer's sessions: none may be opened or ended by another.
    pub fn sessions(viewer: &Person) -> Witness {
        Witness::new(viewer, "{ me { sessions { id } } }", json!({}))
    }

    /// The viewer's profile, preferences and presence.
    pub fn profile(viewer: &Person) -> Witness {
        Witness::new(
            viewer,
            "{ me { username displayName bio gender presence
                discoveryPreferences { minAge maxAge genders maxDistanceKm discoverable } } }",
            json!({}),
        )
    }

    /// The viewer's matches.
    pub fn matches(viewer: &Person) -> Witness {
        Witness::new(viewer, "{ matches { nodes { id } } }", json!({}))
    }
}
