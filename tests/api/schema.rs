//! `schema.graphql` at the repository root is what `kith schema` prints, and
//! the schema the server answers introspection with documents itself: it is
//! the reference app developers read in GraphiQL's docs explorer.

use crate::common;

use serde_json::{Value, json};

/// graphql-js 16's `getIntrospectionQuery()` with every option on, as
/// GraphiQL sends it.
const INTROSPECTION_FULL: &str = include_str!("../fixtures/introspection-full.graphql");

/// The scalars the GraphQL specification defines: their descriptions are
/// async-graphql's, not ours.
const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

#[test]
fn schema_graphql_matches_what_the_server_prints() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("schema")
        .output()
        .expect("kith schema runs");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists at the repository root");
    assert!(
        printed == committed,
        "schema.graphql is stale: regenerate it with `cargo run -- schema > schema.graphql`"
    );
}

/// The SDL without its descriptions, each field's arguments on one line
/// (`login(input: LoginInput!): AuthPayload!`), as the contract writes them:
/// an argument with a description is printed on lines of its own.
fn signatures(sdl: &str) -> String {
    let mut bare = String::new();
    let mut rest = sdl;
    while let Some(start) = rest.find("\"\"\"") {
        bare.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        rest = after.find("\"\"\"").map_or("", |end| &after[end + 3..]);
    }
    bare.push_str(rest);
    let mut joined = String::new();
    let mut depth = 0usize;
    for line in bare
        .lines()
        .map(|line| line.trim().trim_end_matches(','))
        .filter(|line| !line.is_empty())
    {
        if depth > 0 && !line.starts_with(')') && !joined.ends_with('(') {
            joined.push_str(", ");
        }
        joined.push_str(line);
        depth += line.matches('(').count();
        depth = depth.saturating_sub(line.matches(')').count());
        if depth == 0 {
            joined.push('\n');
        }
    }
    joined
}

#[test]
fn the_schema_has_the_contracts_shape() {
    let sdl = signatures(&kith::graphql::sdl());
    for expected in [
        "interface Node",
        "scalar Date",
        "scalar DateTime",
        "type AuthPayload",
        "type User implements Node",
        "type Session implements Node",
        "register(input: RegisterInput!): AuthPayload!",
        "login(input: LoginInput!): AuthPayload!",
        "refreshSession(input: RefreshSessionInput!): AuthPayload!",
        "node(id: ID!): Node",
        "nodes(ids: [ID!]!): [Node]!",
        "notifications: Notification!",
    ] {
        assert!(sdl.contains(expected), "schema lacks `{expected}`");
    }
}

/// A description that says nothing: missing, blank, a few characters, or the
/// item's own name again (`id` described as "Id.").
fn placeholder(description: &Value, name: &str) -> Option<&'static str> {
    let Some(text) = description
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Some("no description");
    };
    let letters = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    if text.chars().count() < 8 {
        Some("a placeholder description (under 8 characters)")
    } else if letters(text) == letters(name) {
        Some("a placeholder description (its own name)")
    } else {
        None
    }
}

fn items(value: &Value, key: &str) -> Vec<Value> {
    value[key].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn every_type_field_argument_and_enum_value_the_server_serves_is_described() {
    let app = common::spawn_app().await;
    let response = app.graphql(INTROSPECTION_FULL, json!({}), None).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let types = response["data"]["__schema"]["types"]
        .as_array()
        .expect("introspection lists the types");

    let mut lacking = Vec::new();
    let mut check = |path: String, name: &str, description: &Value| {
        if let Some(problem) = placeholder(description, name) {
            lacking.push(format!("{path}: {problem}"));
        }
    };
    for ty in types {
        let type_name = ty["name"].as_str().expect("types are named");
        if type_name.starts_with("__") || BUILT_IN_SCALARS.contains(&type_name) {
            continue;
        }
        check(type_name.to_owned(), type_name, &ty["description"]);
        for field in items(ty, "fields") {
            let field_name = field["name"].as_str().unwrap();
            let path = format!("{type_name}.{field_name}");
            check(path.clone(), field_name, &field["description"]);
            for arg in items(&field, "args") {
                let arg_name = arg["name"].as_str().unwrap();
                check(format!("{path}({arg_name})"), arg_name, &arg["description"]);
            }
        }
        for input in items(ty, "inputFields") {
            let input_name = input["name"].as_str().unwrap();
            check(
                format!("{type_name}.{input_name}"),
                input_name,
                &input["description"],
            );
        }
        for value in items(ty, "enumValues") {
            let value_name = value["name"].as_str().unwrap();
            check(
                format!("{type_name}.{value_name}"),
                value_name,
                &value["description"],
            );
        }
    }
    assert!(
        lacking.is_empty(),
        "{} schema items lack a real description (doc comments on the Rust items, \
         `#[graphql(desc = ...)]` on arguments):\n{}",
        lacking.len(),
        lacking.join("\n")
    );
}
