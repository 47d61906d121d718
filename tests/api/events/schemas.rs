//! The published schemas themselves: each parses and is a valid draft
//! 2020-12 schema of a whole envelope of its own type, closed to fields it
//! does not describe, every field described; `docs/events.md`'s types table
//! lists exactly them, each linked to its file.

use serde_json::{Value, json};

use super::*;

const ENVELOPE: [&str; 6] = ["id", "type", "version", "occurredAt", "actor", "data"];

fn described(kind: &str, at: &str, properties: &Value) {
    for (name, property) in properties.as_object().unwrap() {
        let description = property["description"].as_str().unwrap_or_default();
        assert!(
            !description.trim().is_empty(),
            "{kind}: {at}.{name} says nothing to a consumer"
        );
    }
}

#[test]
fn every_schema_is_a_valid_closed_envelope_of_its_type() {
    let schemas = schema_files();
    assert!(!schemas.is_empty(), "no schema in {:?}", schema_dir());
    for (kind, schema) in &schemas {
        if let Err(err) = jsonschema::draft202012::meta::validate(schema) {
            panic!("{kind}: not a valid draft 2020-12 schema: {err}");
        }
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind}"
        );
        validator(kind, schema);
        assert_eq!(schema["title"], kind.as_str());
        assert!(
            schema["description"].is_string(),
            "{kind}: when is it sent?"
        );
        assert_eq!(schema["type"], "object", "{kind}");
        assert_eq!(schema["additionalProperties"], false, "{kind}");
        assert_eq!(schema["required"], json!(ENVELOPE), "{kind}");
        let properties = &schema["properties"];
        let names: Vec<&String> = properties.as_object().unwrap().keys().collect();
        assert_eq!(names.len(), ENVELOPE.len(), "{kind}: {names:?}");
        described(kind, "", properties);
        assert_eq!(properties["type"]["const"], kind.as_str());
        assert_eq!(properties["version"]["const"], 1, "{kind}");
        let data = &properties["data"];
        assert_eq!(data["type"], "object", "{kind}");
        assert_eq!(data["additionalProperties"], false, "{kind}");
        described(kind, "data", &data["properties"]);
        for required in data["required"].as_array().unwrap() {
            assert!(
                data["properties"].get(required.as_str().unwrap()).is_some(),
                "{kind}: data requires {required}, which it does not describe"
            );
        }
    }
}

#[test]
fn a_schema_refuses_what_it_does_not_describe() {
    let schemas = schema_files();
    let deleted = validator("user.deleted", &schemas["user.deleted"]);
    let event = json!({
        "id": "019af3c2-6f1e-7c2a-9a41-3b8e2f0d5c11",
        "type": "user.deleted",
        "version": 1,
        "occurredAt": "2026-12-07T10:12:03.418Z",
        "actor": "019af3c2-6f1d-7b90-8d3e-0a4c1e9f2b77",
        "data": { "userId": "019af3c2-6f1d-7b90-8d3e-0a4c1e9f2b77" },
    });
    assert!(deleted.is_valid(&event));
    let mut extra = event.clone();
    extra["data"]["passwordHash"] = json!("$argon2id$...");
    let mut not_a_uuid = event.clone();
    not_a_uuid["data"]["userId"] = json!("VXNlcjowMTk");
    let mut not_a_time = event.clone();
    not_a_time["occurredAt"] = json!("yesterday");
    let mut other_type = event.clone();
    other_type["type"] = json!("user.registered");
    for wrong in [extra, not_a_uuid, not_a_time, other_type] {
        assert!(!deleted.is_valid(&wrong), "{wrong:#}");
    }
}

#[test]
#[should_panic(expected = "no schema for `user.teleported`")]
fn an_event_without_a_schema_fails() {
    assert_matches_schema(&json!({ "type": "user.teleported" }));
}

#[test]
fn the_types_table_lists_exactly_the_schemas() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md"),
    )
    .unwrap();
    let start = doc
        .find("\n## Types")
        .expect("docs/events.md has a Types section");
    let section = &doc[start + 1..];
    let section = &section[..section[1..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 1)];
    let mut listed = Vec::new();
    for row in section.lines().filter(|line| line.starts_with("| `")) {
        let kind = row[3..row[3..].find('`').unwrap() + 3].to_owned();
        let link = format!("(events/schemas/{kind}.json)");
        assert!(row.contains(&link), "`{kind}`'s row links to {link}: {row}");
        listed.push(kind);
    }
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        listed.len(),
        "a type listed twice: {listed:?}"
    );
    let schemas: Vec<String> = schema_files().into_keys().collect();
    assert_eq!(sorted, schemas, "the table and docs/events/schemas differ");
}
