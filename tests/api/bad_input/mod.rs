//! The bad-input table (issue 30): every input field of every mutation, given
//! a value that is empty, too long, of the wrong format, out of range, an id
//! of something the caller may not touch, or an id of the wrong type. Each row
//! names the `extensions.code` and `extensions.field` the server must answer
//! with, and proves that nothing was written: the world, as its owners see
//! it, is the same before and after.
//!
//! One test per domain, each on a server and a [`World`] of its own, so they
//! run side by side; each collects every failing row and fails once, naming
//! them all. [`every_input_of_every_mutation_has_a_row`] reads the served
//! schema and fails for any input path with neither a row nor an exemption.

mod accounts;
mod chat;
mod discovery;
mod groups;
mod media;
mod queries;
mod social;
mod users;

use std::collections::BTreeSet;

use crate::common::{Session, TestApp};
use kith::graphql::ids::{self, NodeKind};
use serde_json::{Value, json};

/// What is wrong with a row's value.
#[derive(Clone, Copy, Debug)]
pub enum Bad {
    Empty,
    /// Nothing but white space: empty once trimmed.
    Blank,
    TooShort,
    TooLong,
    WrongFormat,
    OutOfRange,
    /// A well-formed id of the right type that names nothing.
    UnknownId,
    /// A well-formed id of something the caller may not see or act on.
    ForeignId,
    /// The id of a real object, under another type's name.
    WrongTypeId,
    /// The caller's own id, where it must be someone else's.
    Oneself,
    /// Refused by GraphQL itself: a wrong scalar type, an unknown enum value,
    /// a missing or null non-null value.
    Invalid,
}

/// The error a row must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    code: &'static str,
    field: Option<&'static str>,
}

/// `BAD_USER_INPUT` naming `field`, as the schema spells it.
pub fn bad(field: &'static str) -> Expect {
    Expect {
        code: "BAD_USER_INPUT",
        field: Some(field),
    }
}

/// Refused by GraphQL validation: `BAD_USER_INPUT`, where the message and
/// locations, not `extensions.field`, say what is wrong.
pub fn invalid() -> Expect {
    Expect {
        code: "BAD_USER_INPUT",
        field: None,
    }
}

/// Missing or hidden from the caller: a mutation on it is `NOT_FOUND`, with
/// no `extensions.field` (docs/api.md: only `BAD_USER_INPUT` and `CONFLICT`
/// errors that one input value caused carry one).
/// An id that is no id at all, or names another type, is as missing.
pub fn not_found() -> Expect {
    Expect {
        code: "NOT_FOUND",
        field: None,
    }
}

/// A sign-in that fails: whatever is wrong, the answer is the one a wrong
/// password gets, telling nothing about the account.
pub fn unauthenticated() -> Expect {
    Expect {
        code: "UNAUTHENTICATED",
        field: None,
    }
}

/// Something the caller sees but may not do this to: `FORBIDDEN`.
pub fn forbidden() -> Expect {
    Expect {
        code: "FORBIDDEN",
        field: None,
    }
}

/// One bad value for one input path of a mutation.
struct Row {
    /// Within the mutation's variables: `input.body`, `userId`.
    path: &'static str,
    bad: Bad,
    /// `None` leaves the value out.
    value: Option<Value>,
    expect: Expect,
}

/// A mutation called by `viewer` with variables that are valid but for the
/// one value each row puts in (the id of a one-id mutation is the row's).
pub struct Call {
    mutation: &'static str,
    document: String,
    valid: Value,
    viewer: Option<Session>,
    rows: Vec<Row>,
}

impl Call {
    /// `signature` is the mutation as the schema declares its arguments, then
    /// what to select of its answer: `"blockUser(userId: ID!) { id }"`.
    pub fn new(signature: &'static str, viewer: Option<&Session>, valid: Value) -> Self {
        let (mutation, rest) = signature.split_once('(').expect("a signature");
        let (arguments, selection) = rest.split_once(')').expect("a signature");
        let arguments: Vec<(&str, &str)> = arguments
            .split(',')
            .map(|argument| {
                let (name, kind) = argument.split_once(':').expect("name: Type");
                (name.trim(), kind.trim())
            })
            .collect();
        let declared = arguments
            .iter()
            .map(|(name, kind)| format!("${name}: {kind}"))
            .collect::<Vec<_>>()
            .join(", ");
        let passed = arguments
            .iter()
            .map(|(name, _)| format!("{name}: ${name}"))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            mutation,
            document: format!("mutation({declared}) {{ {mutation}({passed}) {selection} }}"),
            valid,
            viewer: viewer.cloned(),
            rows: Vec::new(),
        }
    }

    pub fn row(mut self, path: &'static str, bad: Bad, value: Value, expect: Expect) -> Self {
        self.rows.push(Row {
            path,
            bad,
            value: Some(value),
            expect,
        });
        self
    }

    /// The value left out: GraphQL refuses a missing non-null value.
    pub fn missing(mut self, path: &'static str) -> Self {
        self.rows.push(Row {
            path,
            bad: Bad::Invalid,
            value: None,
            expect: invalid(),
        });
        self
    }

    /// The id rows every id input has, for an id that names a real `kind`
    /// the call could act on: not an id at all (empty, garbage, huge), that
    /// object's key under another type's name, and a well-formed id of
    /// nothing. Each answers `expect`: `NOT_FOUND`, unless the field says
    /// otherwise.
    pub fn ids(self, path: &'static str, real: &Value, expect: Expect) -> Self {
        let (kind, key) = ids::decode(real.as_str().expect("an id")).expect("one of our ids");
        let other_kind = if kind == NodeKind::Group {
            NodeKind::User
        } else {
            NodeKind::Group
        };
        let retyped = json!(ids::encode(other_kind, key).0);
        let unknown = json!(ids::encode(kind, uuid::Uuid::now_v7()).0);
        self.row(path, Bad::WrongFormat, json!("not-an-id"), expect)
            .row(path, Bad::Empty, json!(""), expect)
            .row(path, Bad::TooLong, chars(10_000), expect)
            .row(path, Bad::WrongTypeId, retyped, expect)
            .row(path, Bad::UnknownId, unknown, expect)
    }

    /// `mutation.input.field`, as the completeness check counts paths.
    fn full_path(&self, row: &Row) -> String {
        format!("{}.{}", self.mutation, row.path)
    }
}

/// Calls and their rows, run one after another on one world.
#[derive(Default)]
pub struct Table {
    calls: Vec<Call>,
}

impl Table {
    pub fn add(&mut self, call: Call) {
        self.calls.push(call);
    }

    fn rows(&self) -> usize {
        self.calls.iter().map(|call| call.rows.len()).sum()
    }

    fn paths(&self) -> BTreeSet<String> {
        self.calls
            .iter()
            .flat_map(|call| call.rows.iter().map(|row| call.full_path(row)))
            .collect()
    }

    /// Runs every row and fails once, listing every row that went wrong.
    pub async fn run(&self, app: &TestApp, world: &World) {
        let mut failures = Vec::new();
        let mut count = 0;
        // Nothing runs between two rows: one row's after is the next one's
        // before.
        let mut before = world.snapshot(app).await;
        // A snapshot that fails before any row ran would hide every write.
        let first = before.to_string();
        assert!(
            !first.contains("\"errors\""),
            "the world's snapshot fails: {first}"
        );
        for call in &self.calls {
            for row in &call.rows {
                count += 1;
                let after = run_row(app, world, call, row).await;
                let wrote = (before != after.snapshot).then(|| wrote(&before, &after.snapshot));
                before = after.snapshot;
                let failure = after.wrong.into_iter().chain(wrote).collect::<Vec<_>>();
                if !failure.is_empty() {
                    let failure = failure.join("; ");
                    failures.push(format!(
                        "{} ({:?}, {}): {failure}",
                        call.full_path(row),
                        row.bad,
                        row.value
                            .as_ref()
                            .map_or("left out".to_owned(), short_value),
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {count} bad inputs answered wrongly:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

/// What a row got wrong in its answer, and the world after it.
struct Ran {
    wrong: Vec<String>,
    snapshot: Value,
}

async fn run_row(app: &TestApp, world: &World, call: &Call, row: &Row) -> Ran {
    let mut variables = call.valid.clone();
    set_path(&mut variables, row.path, row.value.clone());
    let response = app
        .graphql(
            &call.document,
            variables,
            call.viewer.as_ref().and_then(Session::token),
        )
        .await;

    let mut wrong = Vec::new();
    let error = &response["errors"][0];
    if error.is_null() {
        wrong.push(format!("accepted: {}", short_value(&response["data"])));
    } else {
        let code = error["extensions"]["code"].as_str();
        let field = error["extensions"]["field"].as_str();
        if (code, field) != (Some(row.expect.code), row.expect.field) {
            wrong.push(format!(
                "answered {} field {} (\"{}\"), expected {} field {}",
                code.unwrap_or("no code"),
                field.unwrap_or("none"),
                error["message"].as_str().unwrap_or_default(),
                row.expect.code,
                row.expect.field.unwrap_or("none"),
            ));
        }
        if !response["data"][call.mutation].is_null() {
            wrong.push("answered data beside the error".into());
        }
    }
    Ran {
        wrong,
        snapshot: world.snapshot(app).await,
    }
}

/// The first few places where a row changed the world.
fn wrote(before: &Value, after: &Value) -> String {
    let changes = differences(before, after, "");
    let more = changes.len().saturating_sub(SHOWN_CHANGES);
    let shown = changes.into_iter().take(SHOWN_CHANGES).collect::<Vec<_>>();
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("wrote: {}{more}", shown.join(", "))
}

/// Puts `value` at the dotted `path` of `variables`, or removes what is there.
fn set_path(variables: &mut Value, path: &str, value: Option<Value>) {
    let (parents, last) = match path.rsplit_once('.') {
        Some((parents, last)) => (Some(parents), last),
        None => (None, path),
    };
    let mut at = variables;
    for key in parents.into_iter().flat_map(|p| p.split('.')) {
        at = &mut at[key];
    }
    if at.is_null() {
        *at = json!({});
    }
    let object = at.as_object_mut().expect("an input object on the path");
    match value {
        Some(value) => object.insert(last.to_owned(), value),
        None => object.remove(last),
    };
}

/// A value for a failure line: long strings shown by their length.
fn short_value(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!(
            "{}… ({} characters)",
            text.chars().take(40).collect::<String>(),
            text.len()
        )
    } else {
        text
    }
}

/// How many of a row's writes its failure line shows.
const SHOWN_CHANGES: usize = 4;

/// Where two snapshots differ, as `path: before -> after`.
fn differences(before: &Value, after: &Value, at: &str) -> Vec<String> {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => b
            .keys()
            .chain(a.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|key| b.get(*key) != a.get(*key))
            .flat_map(|key| {
                differences(
                    b.get(key).unwrap_or(&Value::Null),
                    a.get(key).unwrap_or(&Value::Null),
                    &format!("{at}.{key}"),
                )
            })
            .collect(),
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => b
            .iter()
            .zip(a)
            .enumerate()
            .filter(|(_, (b, a))| b != a)
            .flat_map(|(i, (b, a))| differences(b, a, &format!("{at}[{i}]")))
            .collect(),
        _ => vec![format!(
            "{at}: {} -> {}",
            short_value(before),
            short_value(after)
        )],
    }
}

/// A string of `count` characters.
pub fn chars(count: usize) -> Value {
    json!("x".repeat(count))
}

/// Everything a bad input could touch, owned by users who each see their
/// part: `ann` is the caller of almost every row.
///
/// Each id row is built on an id `ann` could act on, so that a server that
/// read a wrong-type id for the right one would be seen doing it:
///
/// - `ann` and `bob` are friends with a direct conversation of two messages,
///   one from each; `bob` and `cat` are friends and chat too (not `ann`'s).
/// - `ann` asked `cat` to be friends and `eve` asked `ann`; `eve` also asked
///   `cat` (not `ann`'s business).
/// - `ann` owns a public group that asks for approval: `bob` is a member,
///   `cat` is invited and `eve` asked to join.
/// - `cat` owns a private, invite-only group `ann` cannot see, and has
///   invited `bob` to it; `bob` invited `ann` to his group; `ann` and `bob`
///   asked to join `eve`'s group.
/// - everyone has a dating profile; `ann` matched `eve`, `bob` matched `cat`.
/// - `dan` blocked `ann`: to her he does not exist.
pub struct World {
    pub ann: Session,
    pub bob: Session,
    pub cat: Session,
    pub dan: Session,
    pub eve: Session,
    pub ann_group: Value,
    pub cat_group: Value,
    pub eve_group: Value,
    pub ann_bob: Value,
    pub bob_cat: Value,
    pub ann_message: Value,
    pub bob_message: Value,
    pub foreign_message: Value,
    pub invitation_to_cat: Value,
    pub foreign_invitation: Value,
    pub eve_join_request: Value,
    pub foreign_join_request: Value,
    pub ann_eve_match: Value,
    pub foreign_match: Value,
    pub request_to_ann: Value,
    pub request_from_ann: Value,
    pub foreign_friend_request: Value,
    pub invitation_to_ann: Value,
    pub ann_join_request: Value,
    pub ann_session: Value,
    pub foreign_session: Value,
    /// A photo of ann's, and one of bob's she may not touch.
    pub ann_photo: Value,
    pub foreign_photo: Value,
    /// An unsent attachment of ann's, and one of bob's she may not send.
    pub ann_attachment: Value,
    pub foreign_attachment: Value,
}

/// A name the register rows try: no row may take it.
pub const UNTAKEN: &str = "never.taken";

const PROFILE: &str =
    "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }";

impl World {
    pub async fn build(app: &TestApp) -> Self {
        let [ann, bob, cat, dan, eve] = {
            let mut users = Vec::new();
            for name in ["ann", "bob", "cat", "dan", "eve"] {
                let user = app.register(name).await;
                app.data(
                    PROFILE,
                    json!({ "input": { "birthdate": "1990-05-17", "gender": "FEMALE",
                        "location": { "latitude": 52.5, "longitude": 13.4 } } }),
                    user.token(),
                )
                .await;
                users.push(user);
            }
            users.try_into().ok().unwrap()
        };
        app.befriend(&ann, &bob).await;
        app.befriend(&bob, &cat).await;
        let request_to_ann = ask(app, &eve, &ann).await;
        let request_from_ann = ask(app, &ann, &cat).await;
        let foreign_friend_request = ask(app, &eve, &cat).await;

        let ann_bob = app.direct_conversation(&ann, &bob).await;
        let bob_cat = app.direct_conversation(&bob, &cat).await;
        let ann_message = send(app, &ann, &ann_bob, "hello bob").await;
        let bob_message = send(app, &bob, &ann_bob, "hello ann").await;
        let foreign_message = send(app, &bob, &bob_cat, "between us").await;

        let ann_group_id =
            group(app, &ann, "ann's circle", "PUBLIC", "APPROVAL").await["id"].clone();
        app.data(
            "mutation($input: GroupUserInput!) { addGroupMember(input: $input) { id } }",
            group_user(&ann_group_id, &bob),
            ann.token(),
        )
        .await;
        let invitation_to_cat = invite(app, &ann, group_user(&ann_group_id, &cat)).await;
        let eve_join_request = join(app, &eve, &ann_group_id).await;

        let cat_group = group(app, &cat, "cat's den", "PRIVATE", "INVITE_ONLY").await["id"].clone();
        let foreign_invitation = invite(app, &cat, group_user(&cat_group, &bob)).await;
        let bob_group = group(app, &bob, "bob's band", "PUBLIC", "INVITE_ONLY").await["id"].clone();
        let invitation_to_ann = invite(app, &bob, group_user(&bob_group, &ann)).await;
        let eve_group = group(app, &eve, "eve's garden", "PUBLIC", "APPROVAL").await["id"].clone();
        let ann_join_request = join(app, &ann, &eve_group).await;
        let foreign_join_request = join(app, &bob, &eve_group).await;

        let ann_eve_match = matched(app, &ann, &eve).await;
        let foreign_match = matched(app, &bob, &cat).await;

        app.data(
            "mutation($id: ID!) { blockUser(userId: $id) { id } }",
            json!({ "id": ann.user_id }),
            dan.token(),
        )
        .await;

        let ann_session = current_session(app, &ann).await;
        let foreign_session = current_session(app, &bob).await;

        let photo = |user: &Session| {
            let user = user.clone();
            async move {
                let picture = crate::media::jpeg(64, 48);
                crate::media::upload_photo(app, user.token(), &picture, None).await["data"]
                    ["uploadPhoto"]["id"]
                    .clone()
            }
        };
        let attachment = |user: &Session| {
            let user = user.clone();
            async move {
                let picture = crate::media::jpeg(64, 48);
                crate::media::upload_attachment(app, user.token(), &picture).await["data"]
                    ["uploadAttachment"]["id"]
                    .clone()
            }
        };
        let (ann_photo, foreign_photo) = (photo(&ann).await, photo(&bob).await);
        let (ann_attachment, foreign_attachment) = (attachment(&ann).await, attachment(&bob).await);

        Self {
            ann_group: ann_group_id,
            ann,
            bob,
            cat,
            dan,
            eve,
            cat_group,
            eve_group,
            ann_bob,
            bob_cat,
            ann_message,
            bob_message,
            foreign_message,
            invitation_to_cat,
            foreign_invitation,
            eve_join_request,
            foreign_join_request,
            ann_eve_match,
            foreign_match,
            request_to_ann,
            request_from_ann,
            foreign_friend_request,
            invitation_to_ann,
            ann_join_request,
            ann_session,
            foreign_session,
            ann_photo,
            foreign_photo,
            ann_attachment,
            foreign_attachment,
        }
    }

    /// What every user sees of their own world, and whether the name the
    /// register rows try is still free: equal before and after a row
    /// proves the row wrote nothing. Whole responses, errors included: a
    /// row that ended a session shows as the owner's view turning into an
    /// error.
    async fn snapshot(&self, app: &TestApp) -> Value {
        let mut seen = serde_json::Map::new();
        for user in [&self.ann, &self.bob, &self.cat, &self.dan, &self.eve] {
            let mut parts = Vec::new();
            for part in OWN_WORLD {
                parts.push(app.graphql(part, json!({}), user.token()).await);
            }
            // Whom a user has swiped shows as whom they are no longer
            // recommended; the ranking's order is not the point.
            let recommended = &mut parts[3]["data"]["recommendations"]["nodes"];
            if let Some(nodes) = recommended.as_array_mut() {
                nodes.sort_by_key(Value::to_string);
            }
            let response = Value::Array(parts);
            seen.insert(user.username.clone(), response);
        }
        let free = app
            .graphql(
                "query($name: String!) { usernameAvailable(username: $name) }",
                json!({ "name": UNTAKEN }),
                None,
            )
            .await;
        seen.insert("untaken".into(), free);
        Value::Object(seen)
    }
}

/// A user's world as they see it, in parts that each stay within the
/// query cost limit. Pages are small: the world is.
const OWN_WORLD: &[&str] = &[
    "{ me {
        username email phone displayName bio birthdate gender interests
        location { latitude longitude } friendListVisibility presenceVisibility
        presence
        sessions { id }
        discoveryPreferences { minAge maxAge genders maxDistanceKm discoverable }
        friends(first: 10) { nodes { id } }
        incomingFriendRequests(first: 10) { nodes { id status message } }
        outgoingFriendRequests(first: 10) { nodes { id status message } }
        blockedUsers(first: 10) { nodes { id } }
        groupInvitations(first: 10) { nodes { id status } }
        photos { id position }
    } }",
    "{ me { groups(first: 10) { nodes {
        id name description visibility joinPolicy memberCount viewerRole
        members(first: 10) { edges { role node { id } } }
        invitations(first: 10) { nodes { id status } }
        joinRequests(first: 10) { nodes { id status } }
    } } } }",
    "{ conversations(first: 10) { nodes {
        id unreadCount
        messages(first: 10) { nodes {
            id seq body editedAt deletedAt replyTo { id }
            reactions { emoji count viewerReacted } readBy { id }
        } }
    } } }",
    "{ matches(first: 10) { nodes { id } }
       recommendations(first: 10) { nodes { id } } }",
];

/// A `GroupUserInput` of `group` and `user`.
fn group_user(group: &Value, user: &Session) -> Value {
    json!({ "input": { "groupId": group, "userId": user.user_id } })
}

/// `from` asks `to` to be friends; the request's id.
async fn ask(app: &TestApp, from: &Session, to: &Session) -> Value {
    app.data(
        "mutation($to: ID!) { sendFriendRequest(input: { userId: $to }) { id } }",
        json!({ "to": to.user_id }),
        from.token(),
    )
    .await["sendFriendRequest"]["id"]
        .clone()
}

async fn send(app: &TestApp, from: &Session, conversation: &Value, body: &str) -> Value {
    app.data(
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
        json!({ "input": { "conversationId": conversation, "body": body,
            "clientMessageId": body } }),
        from.token(),
    )
    .await["sendMessage"]["id"]
        .clone()
}

async fn group(
    app: &TestApp,
    owner: &Session,
    name: &str,
    visibility: &str,
    join_policy: &str,
) -> Value {
    app.data(
        "mutation($input: CreateGroupInput!) { createGroup(input: $input) {
            id conversation { id } } }",
        json!({ "input": { "name": name, "visibility": visibility,
            "joinPolicy": join_policy } }),
        owner.token(),
    )
    .await["createGroup"]
        .clone()
}

async fn invite(app: &TestApp, by: &Session, group_user: Value) -> Value {
    app.data(
        "mutation($input: GroupUserInput!) { inviteToGroup(input: $input) { id } }",
        group_user,
        by.token(),
    )
    .await["inviteToGroup"]["id"]
        .clone()
}

async fn join(app: &TestApp, who: &Session, group: &Value) -> Value {
    app.data(
        "mutation($id: ID!) { requestToJoinGroup(groupId: $id) { joinRequest { id } } }",
        json!({ "id": group }),
        who.token(),
    )
    .await["requestToJoinGroup"]["joinRequest"]["id"]
        .clone()
}

/// `a` and `b` like each other; their match's id.
async fn matched(app: &TestApp, a: &Session, b: &Session) -> Value {
    let like = "mutation($id: ID!) { like(userId: $id) { match { id } } }";
    app.data(like, json!({ "id": b.user_id }), a.token()).await;
    app.data(like, json!({ "id": a.user_id }), b.token()).await["like"]["match"]["id"].clone()
}

async fn current_session(app: &TestApp, user: &Session) -> Value {
    app.data("{ me { sessions { id } } }", json!({}), user.token())
        .await["me"]["sessions"][0]["id"]
        .clone()
}

/// Every domain's calls, on one world.
fn every_table(world: &World) -> Vec<Table> {
    vec![
        accounts::table(world),
        users::table(world),
        social::table(world),
        groups::table(world),
        chat::table(world),
        discovery::table(world),
        media::table(world),
    ]
}

/// Input paths that cannot be wrong beyond what GraphQL itself refuses, so
/// they need no row of their own: each says why.
const EXEMPT: &[(&str, &str)] = &[
    (
        "uploadPhoto.input.file",
        "an Upload, which a JSON request cannot carry: media::bad_uploads sends every bad file as multipart",
    ),
    (
        "uploadPhoto.input.position",
        "beside an Upload, which a JSON request cannot carry: media::bad_uploads sends a negative one as multipart",
    ),
    (
        "uploadAttachment.file",
        "an Upload, which a JSON request cannot carry: media::bad_uploads sends every bad file as multipart",
    ),
    ("setTyping.input.typing", "a Boolean: either value is valid"),
    (
        "updateDiscoveryPreferences.input.discoverable",
        "a Boolean: either value is valid",
    ),
    (
        "updateGroup.input.joinPolicy",
        "an enum: every value GraphQL admits is valid",
    ),
    (
        "updateProfile.input.friendListVisibility",
        "an enum: every value GraphQL admits is valid",
    ),
    (
        "updateProfile.input.presenceVisibility",
        "an enum: every value GraphQL admits is valid",
    ),
    (
        "setGroupMemberRole.input.role",
        "an enum: every value GraphQL admits is valid (OWNER is not one: transferGroupOwnership)",
    ),
];

const TYPE_REF: &str = "fragment TypeRef on __Type {
    kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// The named type under any list and non-null wrapping.
fn named(type_ref: &Value) -> &Value {
    let mut at = type_ref;
    while !at["ofType"].is_null() {
        at = &at["ofType"];
    }
    at
}

/// Every input path of every mutation the server serves: each argument, and
/// through input objects each of their fields, down to scalars and enums.
async fn served_input_paths(app: &TestApp) -> BTreeSet<String> {
    let schema = app
        .data(
            &format!(
                "{{ __schema {{ mutationType {{ fields {{
                    name args {{ name type {{ ...TypeRef }} }} }} }} }} }} {TYPE_REF}"
            ),
            json!({}),
            None,
        )
        .await;
    let mut paths = BTreeSet::new();
    let mut pending: Vec<(String, Value)> = Vec::new();
    for field in schema["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
    {
        for argument in field["args"].as_array().unwrap() {
            pending.push((
                format!(
                    "{}.{}",
                    field["name"].as_str().unwrap(),
                    argument["name"].as_str().unwrap()
                ),
                named(&argument["type"]).clone(),
            ));
        }
    }
    while let Some((path, named)) = pending.pop() {
        if named["kind"] != "INPUT_OBJECT" {
            paths.insert(path);
            continue;
        }
        let input = app
            .data(
                &format!(
                    "query($name: String!) {{ __type(name: $name) {{
                        inputFields {{ name type {{ ...TypeRef }} }} }} }} {TYPE_REF}"
                ),
                json!({ "name": named["name"] }),
                None,
            )
            .await;
        for field in input["__type"]["inputFields"].as_array().unwrap() {
            pending.push((
                format!("{path}.{}", field["name"].as_str().unwrap()),
                self::named(&field["type"]).clone(),
            ));
        }
    }
    paths
}

#[tokio::test]
async fn every_input_of_every_mutation_has_a_row() {
    let app = crate::sign_in::matrix_app().await;
    let world = World::build(&app).await;
    let served = served_input_paths(&app).await;
    let tables = every_table(&world);
    let covered: BTreeSet<String> = tables.iter().flat_map(Table::paths).collect();
    let rows: usize = tables.iter().map(Table::rows).sum();
    let exempt: BTreeSet<String> = EXEMPT.iter().map(|(path, _)| (*path).to_owned()).collect();

    let without_row: Vec<_> = served
        .iter()
        .filter(|path| !covered.contains(*path) && !exempt.contains(*path))
        .collect();
    let not_served: Vec<_> = covered
        .union(&exempt)
        .filter(|path| !served.contains(*path))
        .collect();
    let both: Vec<_> = covered.intersection(&exempt).collect();
    assert!(
        without_row.is_empty() && not_served.is_empty() && both.is_empty(),
        "input paths with no bad-input row: {without_row:#?}\n\
         rows or exemptions for paths the schema does not have: {not_served:#?}\n\
         exempt paths that have rows after all: {both:#?}"
    );
    println!(
        "{} input paths: {} with {rows} rows, {} exempt",
        served.len(),
        covered.len(),
        exempt.len()
    );
}

/// Runs one domain's table on a server and world of its own.
pub async fn run_table(table: fn(&World) -> Table) {
    let app = crate::sign_in::matrix_app().await;
    let world = World::build(&app).await;
    table(&world).run(&app, &world).await;
}
