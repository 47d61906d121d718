//! What a new user meets in the first minutes, through the real `kith`
//! binary: `serve --demo` leaves someone to sign in as with something on every
//! screen, `--help` lists every command, and a start-up that cannot go on
//! says why in one line naming the setting, wherever the setting came from.

use std::{path::Path, process::Output};

use serde_json::{Value, json};

use crate::common::{JWT_SECRET, spawn_process};

const DEMO_PASSWORD: &str = kith::seed::DEMO_PASSWORD;

#[tokio::test]
async fn serve_demo_gives_alice_friends_requests_a_group_chats_and_a_match() {
    let app = spawn_process(|command| {
        command.arg("--demo");
    })
    .await;
    let signed_in = app.login("alice", DEMO_PASSWORD).await;
    let token = signed_in["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("alice signs in with the demo password: {signed_in}"));
    let token = Some(token);

    let me = app
        .data(
            "{ me {
                 photos { width height }
                 friends(first: 10) { nodes { username photos { width height placeholder } } }
                 incomingFriendRequests(first: 10) { nodes { from { username } message } }
                 groups(first: 10) { nodes { name visibility memberCount conversation { lastSeq } } }
               } }",
            json!({}),
            token,
        )
        .await;
    let me = &me["me"];
    let mut friends = usernames(&me["friends"]["nodes"], "/username");
    friends.sort();
    assert_eq!(friends, ["bob", "carol"]);
    // A profile picture each, which friends see.
    assert_eq!(me["photos"], json!([{ "width": 480, "height": 600 }]));
    for friend in me["friends"]["nodes"].as_array().unwrap() {
        assert_eq!(friend["photos"][0]["width"], 480, "{friend}");
        assert!(friend["photos"][0]["placeholder"].is_string(), "{friend}");
    }
    assert_eq!(
        usernames(&me["incomingFriendRequests"]["nodes"], "/from/username"),
        ["dave"]
    );
    assert_eq!(
        me["groups"]["nodes"],
        json!([{
            "name": "Berlin Climbers",
            "visibility": "PUBLIC",
            "memberCount": 3,
            "conversation": { "lastSeq": 4 }
        }])
    );

    let lists = app
        .data(
            "{ conversations(first: 10) { nodes { kind lastSeq participants { username } } }
               matches(first: 10) { nodes { user { username } conversation { id } } }
               recommendations(first: 20) { edges { distanceKm node { username } } } }",
            json!({}),
            token,
        )
        .await;
    let direct_with_bob = lists["conversations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["kind"] == "DIRECT"
                && usernames(&c["participants"], "/username").contains(&"bob".to_owned())
        })
        .unwrap_or_else(|| panic!("a direct conversation with bob: {lists}"));
    assert!(
        direct_with_bob["lastSeq"].as_i64().unwrap() >= 5,
        "a history: {direct_with_bob}"
    );
    assert_eq!(
        usernames(&lists["matches"]["nodes"], "/user/username"),
        ["dave"]
    );
    assert!(lists["matches"]["nodes"][0]["conversation"]["id"].is_string());
    // Generated people around Berlin as well as the four.
    let nearby = lists["recommendations"]["edges"].as_array().unwrap();
    assert!(nearby.len() >= 5, "alice has people to discover: {lists}");
    assert!(
        nearby
            .iter()
            .all(|edge| edge["distanceKm"].as_i64().unwrap() <= 50)
    );

    // A few hundred generated users to search through, on the same password.
    let generated = app
        .data(
            "{ searchUsers(query: \"a\", first: 50) { nodes { username } pageInfo { hasNextPage } } }",
            json!({}),
            token,
        )
        .await;
    assert_eq!(
        generated["searchUsers"]["pageInfo"]["hasNextPage"], true,
        "{generated}"
    );
    let names = usernames(&generated["searchUsers"]["nodes"], "/username");
    // Generated names are first.last.number.
    let someone = names
        .iter()
        .find(|name| name.contains('.'))
        .expect("a generated user");
    let their_login = app.login(someone, DEMO_PASSWORD).await;
    assert!(
        their_login["data"]["login"]["accessToken"].is_string(),
        "{their_login}"
    );
}

#[test]
fn help_lists_every_command() {
    let help = kith(&["--help"], &[], None);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for command in ["serve", "migrate", "schema", "seed"] {
        assert!(
            text.lines()
                .any(|line| line.trim_start().starts_with(command)),
            "`kith --help` lists {command}: {text}"
        );
    }
    let serve = String::from_utf8(kith(&["serve", "--help"], &[], None).stdout).unwrap();
    assert!(serve.contains("--demo"), "{serve}");
}

#[test]
fn a_bad_setting_is_one_line_naming_it() {
    let refused = kith(&["serve"], &[("KITH_LISTEN", "nonsense")], None);
    assert_one_line_error(&refused, "bad setting KITH_LISTEN:");
    let refused = kith(&["serve"], &[("KITH_BODY_LIMIT_BYTES", "-5")], None);
    assert_one_line_error(&refused, "bad setting KITH_BODY_LIMIT_BYTES:");
}

#[test]
fn a_dotenv_file_in_the_working_directory_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "KITH_LISTEN=\"from the dotenv file\"\n",
    )
    .unwrap();
    let refused = kith(&["serve"], &[], Some(dir.path()));
    assert_one_line_error(&refused, "bad setting KITH_LISTEN:");
    // The same setting from the environment wins over .env's: kith gets as
    // far as listening, on a port that is taken.
    serve_on_a_taken_port_in(dir.path());
}

#[test]
fn a_taken_port_is_one_line_naming_the_setting() {
    serve_on_a_taken_port_in(tempfile::tempdir().unwrap().path());
}

/// `kith serve` in `dir`, told by the environment to listen where another
/// socket already does, on a SQLite database there: refused in one line.
fn serve_on_a_taken_port_in(dir: &Path) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let database = format!("sqlite://{}?mode=rwc", dir.join("kith.db").display());
    let refused = kith(
        &["serve"],
        &[("KITH_LISTEN", &addr), ("KITH_DATABASE_URL", &database)],
        Some(dir),
    );
    assert_one_line_error(&refused, &format!("cannot listen on KITH_LISTEN={addr}:"));
}

#[test]
fn an_unreachable_database_is_one_line_naming_the_setting_without_its_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://kith:secret-password@127.0.0.1:{port}/kith");
    let refused = kith(
        &["serve"],
        &[
            ("KITH_DATABASE_URL", &url),
            ("KITH_DB_ACQUIRE_TIMEOUT_MILLIS", "500"),
        ],
        None,
    );
    assert_one_line_error(
        &refused,
        "cannot connect to KITH_DATABASE_URL=postgres://kith:***@",
    );
    assert!(!String::from_utf8_lossy(&refused.stderr).contains("secret-password"));
}

/// Runs the `kith` binary to its end, in `dir` (a fresh one by default, so no
/// `.env` of the repository's is read), with the test's JWT secret and `env`.
fn kith(args: &[&str], env: &[(&str, &str)], dir: Option<&Path>) -> Output {
    let fresh = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kith"));
    command
        .args(args)
        .current_dir(dir.unwrap_or(fresh.path()))
        .env("KITH_JWT_SECRET", JWT_SECRET)
        .env("KITH_LOG_FORMAT", "json")
        .env_remove("KITH_LISTEN")
        .env_remove("KITH_DATABASE_URL")
        .env_remove("DATABASE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("kith runs")
}

/// Failed with one line on stderr that starts with `kith: ` and holds
/// `expected`: no backtrace, no "Caused by" list.
fn assert_one_line_error(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "kith started: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("kith: "), "{stderr}");
    assert!(lines[0].contains(expected), "{expected:?} in {stderr}");
}

fn usernames(nodes: &Value, pointer: &str) -> Vec<String> {
    nodes
        .as_array()
        .unwrap_or_else(|| panic!("a list: {nodes}"))
        .iter()
        .map(|node| {
            node.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn graphiql_and_its_assets_come_from_the_binary_and_cache_by_content() {
    let app = crate::common::spawn_app().await;
    let page = app.client.get(app.url("/graphiql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("//"),
        "nothing on the page points at another host: {html}"
    );

    let assets: Vec<&str> = html
        .split('"')
        .filter(|part| part.starts_with("/graphiql/assets/"))
        .collect();
    assert_eq!(
        assets.len(),
        7,
        "GraphiQL, its CSS, React, ReactDOM, graphql-ws and kith's two: {html}"
    );
    for asset in &assets {
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if asset.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(
            content_type.starts_with(expected),
            "{asset}: {content_type}"
        );
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    // A name without the current hash is not served, so a cached copy is
    // never stale.
    let stale = app
        .client
        .get(app.url("/graphiql/assets/graphiql.min.000000000000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 404);

    // A browser asking /graphql for HTML gets the same page.
    let from_graphql = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(from_graphql.text().await.unwrap(), html);
}
