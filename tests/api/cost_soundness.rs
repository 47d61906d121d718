//! The cost limit is a promise: a query it accepts never makes the server
//! resolve more fields than the limit. Valid queries are generated at random
//! over the schema as the server introspects it (every readable field of
//! `Query`, lists paged up to 100, interfaces and unions through inline
//! fragments), run as a user whose lists are full, and every answer the limit
//! let through is counted field by field. A list field whose cost does not
//! weigh its length (an unannotated list) fails this.
//!
//! `KITH_FUZZ_ITERATIONS` (default 300) and `KITH_FUZZ_SEED` set the run.

use crate::common;

use std::collections::HashMap;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

/// Low, so that lists a few dozen long reach it.
const COMPLEXITY_LIMIT: usize = 400;
const MAX_DEPTH: usize = 5;

const SCHEMA_QUERY: &str = "{ __schema { types { name kind possibleTypes { name }
    fields { name args { name type { ...T } } type { ...T } } } } }
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

struct Schema {
    types: HashMap<String, Value>,
}

/// The named type under any list and non-null wrappers.
fn named(ty: &Value) -> &Value {
    let mut ty = ty;
    while ty["name"].is_null() && !ty["ofType"].is_null() {
        ty = &ty["ofType"];
    }
    ty
}

struct Generator<'a> {
    schema: &'a Schema,
    rng: StdRng,
    ids: Vec<String>,
}

impl Generator<'_> {
    /// Arguments for `field`, or `None` when it needs one we cannot make up.
    fn arguments(&mut self, field: &Value) -> Option<String> {
        let mut given = Vec::new();
        for arg in field["args"].as_array().into_iter().flatten() {
            let name = arg["name"].as_str().unwrap_or_default();
            let required = arg["type"]["kind"] == "NON_NULL";
            let ty = named(&arg["type"])["name"].as_str().unwrap_or_default();
            let value = match (name, ty) {
                ("first", "Int") => self.rng.random_range(0..=100).to_string(),
                ("id" | "userId" | "conversationId" | "groupId", "ID") => {
                    format!("{:?}", self.ids[self.rng.random_range(0..self.ids.len())])
                }
                ("ids", "ID") => format!("{:?}", self.ids),
                ("query" | "username", "String") => "\"u\"".to_owned(),
                _ if required => return None,
                _ => continue,
            };
            given.push(format!("{name}: {value}"));
        }
        Some(if given.is_empty() {
            String::new()
        } else {
            format!("({})", given.join(", "))
        })
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> String {
        let ty = &self.schema.types[type_name];
        match ty["kind"].as_str() {
            Some("INTERFACE" | "UNION") => {
                let possible: Vec<String> = ty["possibleTypes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["name"].as_str().map(String::from))
                    .collect();
                let pick = possible[self.rng.random_range(0..possible.len())].clone();
                let inner = self.selection(&pick, depth);
                format!("{{ __typename ... on {pick} {inner} }}")
            }
            _ => {
                let fields: Vec<Value> = ty["fields"].as_array().cloned().unwrap_or_default();
                let mut chosen = Vec::new();
                for _ in 0..self.rng.random_range(1..=4) {
                    let field = &fields[self.rng.random_range(0..fields.len())];
                    let Some(arguments) = self.arguments(field) else {
                        continue;
                    };
                    let name = field["name"].as_str().unwrap_or_default();
                    let inner = named(&field["type"]);
                    let alias = format!("f{}", chosen.len());
                    match inner["kind"].as_str() {
                        Some("OBJECT" | "INTERFACE" | "UNION") if depth < MAX_DEPTH => {
                            let inner = inner["name"].as_str().unwrap_or_default().to_owned();
                            let sub = self.selection(&inner, depth + 1);
                            chosen.push(format!("{alias}: {name}{arguments} {sub}"));
                        }
                        Some("OBJECT" | "INTERFACE" | "UNION") => {}
                        _ => chosen.push(format!("{alias}: {name}{arguments}")),
                    }
                }
                if chosen.is_empty() {
                    chosen.push("__typename".into());
                }
                format!("{{ {} }}", chosen.join(" "))
            }
        }
    }
}

/// Fields in an answer: every key of every object.
fn fields_in(value: &Value) -> usize {
    match value {
        Value::Object(object) => object.len() + object.values().map(fields_in).sum::<usize>(),
        Value::Array(items) => items.iter().map(fields_in).sum(),
        _ => 0,
    }
}

#[tokio::test]
async fn no_accepted_query_resolves_more_fields_than_the_cost_limit() {
    let (iterations, seed) = common::fuzz_run(300);
    let app = common::spawn_app_with(|settings| {
        settings.query_complexity_limit = COMPLEXITY_LIMIT;
    })
    .await;

    // A user whose lists are long: friends, a group's members, messages.
    let owner = app.register("owner").await;
    let group = app.open_group(&owner, "crowd").await;
    let mut ids = vec![
        owner.user_id.clone(),
        group["id"].as_str().unwrap().to_owned(),
    ];
    let mut first_friend = None;
    for i in 0..25 {
        let friend = app.register(&format!("friend{i}")).await;
        app.befriend(&friend, &owner).await;
        app.data(
            "mutation($g: ID!) { requestToJoinGroup(groupId: $g) { __typename } }",
            json!({ "g": group["id"] }),
            friend.token(),
        )
        .await;
        ids.push(friend.user_id.clone());
        first_friend.get_or_insert(friend);
    }
    for _ in 0..30 {
        app.login(&owner.username, common::PASSWORD).await;
    }
    let friend = first_friend.unwrap();
    let conversation = app.direct_conversation(&owner, &friend).await;
    ids.push(conversation.as_str().unwrap().to_owned());
    for i in 0..30 {
        let sent = app
            .data(
                "mutation($c: ID!, $k: String!) { sendMessage(input: {
                    conversationId: $c, body: $k, clientMessageId: $k }) { id } }",
                json!({ "c": conversation, "k": format!("m{i}") }),
                owner.token(),
            )
            .await;
        app.data(
            "mutation($m: ID!) { addReaction(input: { messageId: $m, emoji: \"👍\" }) { id } }",
            json!({ "m": sent["sendMessage"]["id"] }),
            friend.token(),
        )
        .await;
    }

    let introspected = app.data(SCHEMA_QUERY, json!({}), None).await;
    let types = introspected["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| Some((t["name"].as_str()?.to_owned(), t.clone())))
        .collect();
    let schema = Schema { types };
    let mut generator = Generator {
        schema: &schema,
        rng: StdRng::seed_from_u64(seed),
        ids,
    };
    let (mut accepted, mut refused, mut largest) = (0, 0, 0);
    for iteration in 0..iterations {
        let query = generator.selection("Query", 1);
        let response = app.graphql(&query, json!({}), owner.token()).await;
        let too_complex = response["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["message"] == "Query is too complex.");
        if too_complex {
            refused += 1;
            continue;
        }
        accepted += 1;
        let resolved = fields_in(&response["data"]);
        largest = largest.max(resolved);
        assert!(
            resolved <= COMPLEXITY_LIMIT,
            "accepted, yet {resolved} fields resolved: KITH_FUZZ_SEED={seed}, iteration \
             {iteration}, query {query}"
        );
    }
    println!("{accepted} accepted (largest {largest} fields), {refused} refused as too complex");
    assert!(
        accepted > iterations / 4 && refused > 0,
        "the run exercised both sides"
    );

    // Then every list field of the objects that hold long lists here, each
    // asked for 16 times over: a list whose cost ignored its length would be
    // let through and resolve more than the limit.
    let group_id = group["id"].as_str().unwrap();
    let parents = [
        ("Query", String::new(), String::new()),
        ("User", "me { ".to_owned(), " }".to_owned()),
        (
            "Group",
            format!("group(id: {group_id:?}) {{ "),
            " }".to_owned(),
        ),
        (
            "Conversation",
            format!("conversation(id: {conversation}) {{ "),
            " }".to_owned(),
        ),
    ];
    let mut checked = 0;
    for (parent, open, close) in &parents {
        for field in schema.types[*parent]["fields"].as_array().unwrap() {
            let Some(selection) = list_selection(&schema, field) else {
                continue;
            };
            let name = field["name"].as_str().unwrap();
            let Some(arguments) = list_arguments(field, &generator.ids) else {
                continue;
            };
            let aliases: String = (0..16)
                .map(|i| format!("a{i}: {name}{arguments} {selection} "))
                .collect();
            let query = format!("{{ {open}{aliases}{close} }}");
            let response = app.graphql(&query, json!({}), owner.token()).await;
            let resolved = fields_in(&response["data"]);
            assert!(
                resolved <= COMPLEXITY_LIMIT,
                "{parent}.{name} was let through and resolved {resolved} fields: {query}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} list fields were found");
}

/// What to select under `field` when it returns a list of objects (directly
/// or as a connection's `nodes`); `None` for any other field.
fn list_selection(schema: &Schema, field: &Value) -> Option<String> {
    let mut ty = &field["type"];
    let mut list = false;
    while ty["name"].is_null() {
        list |= ty["kind"] == "LIST";
        ty = &ty["ofType"];
    }
    let name = ty["name"].as_str()?;
    let kind = ty["kind"].as_str()?;
    if name.ends_with("Connection") {
        return Some("{ nodes { __typename } }".into());
    }
    (list && matches!(kind, "OBJECT" | "INTERFACE" | "UNION") && schema.types.contains_key(name))
        .then(|| "{ __typename }".into())
}

/// The largest page, and what a required argument needs to find the long
/// lists here; `None` for a required argument this cannot make up.
fn list_arguments(field: &Value, ids: &[String]) -> Option<String> {
    let mut given = Vec::new();
    for arg in field["args"].as_array().into_iter().flatten() {
        match arg["name"].as_str().unwrap_or_default() {
            "first" => given.push("first: 100".to_owned()),
            "query" => given.push("query: \"friend\"".to_owned()),
            "ids" => given.push(format!("ids: {ids:?}")),
            _ if arg["type"]["kind"] == "NON_NULL" => return None,
            _ => {}
        }
    }
    Some(if given.is_empty() {
        String::new()
    } else {
        format!("({})", given.join(", "))
    })
}
