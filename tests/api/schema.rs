//! `schema.graphql` at the repository root is what `kith schema` prints.

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

#[test]
fn the_schema_has_the_contracts_shape() {
    let sdl = kith::graphql::sdl();
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
