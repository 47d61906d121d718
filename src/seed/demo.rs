//! `kith serve --demo`: a database worth opening GraphiQL on. Four people to
//! sign in as (alice, bob, carol, dave), a few hundred generated ones around
//! them, and something on every screen: friends and pending requests, a public
//! group with its chat, a direct conversation with history, and discovery
//! profiles near each other with a match, each of the four with a profile
//! picture.
//!
//! The four and everything between them go through the domain services, as
//! the API would write them (conversations, counters and sequence numbers
//! stay consistent); the generated crowd is bulk-loaded by [`super::run`].
//! Filled once: a database that already has users is left as it is.

use chrono::NaiveDate;
use entity::user;
use sea_orm::{EntityTrait, PaginatorTrait};
use uuid::Uuid;

use super::{DEMO_PASSWORD, SeedOptions};
use crate::{
    auth::PasswordHasher,
    domain::{
        accounts::{ClientInfo, Identifier, Registration},
        chat::Outgoing,
        discovery::{PreferenceChanges, SwipeKind},
        groups::{JoinPolicy, NewGroup, Visibility},
        users::{Gender, ProfileChanges},
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// The generated crowd: enough for search, suggestions and recommendations
/// to have pages, few enough to load in a second.
pub const GENERATED_USERS: usize = 300;
const GENERATED_AVERAGE_FRIENDS: usize = 8;

/// Someone to sign in as. All four live within a few kilometres of each other
/// in Berlin (where part of the generated crowd lives too), so each shows up
/// in the others' recommendations.
struct Person {
    username: &'static str,
    display_name: &'static str,
    bio: &'static str,
    birthdate: (i32, u32, u32),
    gender: Gender,
    interests: &'static [&'static str],
    location: (f64, f64),
    /// Their profile picture's colours, top and bottom.
    colours: ([u8; 3], [u8; 3]),
}

const PEOPLE: [Person; 4] = [
    Person {
        username: "alice",
        display_name: "Alice Park",
        bio: "Climbing on weekends, coffee on weekdays.",
        birthdate: (1996, 4, 12),
        gender: Gender::Female,
        interests: &["climbing", "coffee", "photography", "travel"],
        location: (52.4986, 13.4030), // Kreuzberg
        colours: ([255, 183, 77], [229, 57, 53]),
    },
    Person {
        username: "bob",
        display_name: "Bob Okafor",
        bio: "Runs before sunrise. Cooks after sunset.",
        birthdate: (1994, 9, 3),
        gender: Gender::Male,
        interests: &["running", "cooking", "climbing", "jazz"],
        location: (52.5076, 13.4262), // Friedrichshain
        colours: ([79, 195, 247], [40, 53, 147]),
    },
    Person {
        username: "carol",
        display_name: "Carol Jensen",
        bio: "Board games, bad puns, good bread.",
        birthdate: (1998, 1, 27),
        gender: Gender::Female,
        interests: &["board games", "baking", "climbing", "cinema"],
        location: (52.4840, 13.4370), // Neukölln
        colours: ([174, 213, 129], [0, 121, 107]),
    },
    Person {
        username: "dave",
        display_name: "Dave Ito",
        bio: "New in town. Show me your favourite café?",
        birthdate: (1995, 6, 18),
        gender: Gender::Male,
        interests: &["coffee", "photography", "hiking", "travel"],
        location: (52.5300, 13.4010), // Prenzlauer Berg
        colours: ([206, 147, 216], [94, 53, 177]),
    },
];

const DIRECT_HISTORY: &[(usize, &str)] = &[
    (0, "Are we still on for the wall on Saturday?"),
    (1, "Yes! 10 am at the usual place?"),
    (0, "Perfect. I'll bring the new rope."),
    (1, "Carol wants to come too, I added her to the group."),
    (0, "Great, the more the merrier."),
    (1, "Coffee after?"),
    (0, "Always ☕"),
];

const GROUP_HISTORY: &[(usize, &str)] = &[
    (
        0,
        "Welcome to Berlin Climbers! Saturday sessions, all levels.",
    ),
    (1, "Hi all! Bringing chalk for everyone this week."),
    (2, "First time here, excited to join 🧗"),
    (0, "Welcome Carol! Beginners' wall is on the left."),
];

/// A profile picture: head and shoulders on a gradient, as a PNG upload
/// (stored like any other, in every size, with its placeholder).
fn portrait((top, bottom): ([u8; 3], [u8; 3])) -> bytes::Bytes {
    const WIDTH: u32 = 480;
    const HEIGHT: u32 = 600;
    let blend = |y: u32, channel: usize| {
        let (a, b) = (f64::from(top[channel]), f64::from(bottom[channel]));
        (a + (b - a) * f64::from(y) / f64::from(HEIGHT)) as u8
    };
    let image = image::RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (x, y) = (f64::from(x), f64::from(y));
        let head = (x - 240.0).powi(2) + (y - 250.0).powi(2) < 95.0_f64.powi(2);
        let shoulders =
            (x - 240.0).powi(2) / 210.0_f64.powi(2) + (y - 600.0).powi(2) / 190.0_f64.powi(2) < 1.0;
        if head || shoulders {
            image::Rgb([250, 247, 242])
        } else {
            let y = y as u32;
            image::Rgb([blend(y, 0), blend(y, 1), blend(y, 2)])
        }
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("a PNG encodes in memory");
    png.into_inner().into()
}

/// What `kith serve --demo` tells its user at start.
pub struct DemoReport {
    /// False when the database already had users and was left alone.
    pub filled: bool,
    /// A ready `Authorization` header value for alice, when she exists.
    pub alice_authorization: Option<String>,
}

/// Fills an empty database with the demo; a database that has users is left
/// as it is. Either way, signs alice in when she exists.
pub async fn fill(state: &AppState) -> anyhow::Result<DemoReport> {
    let empty = user::Entity::find().count(state.db.primary()).await? == 0;
    if empty {
        fill_empty(state).await?;
    }
    let client = demo_client();
    let alice_authorization = match state
        .accounts
        .login(&Identifier::parse("alice"), DEMO_PASSWORD, &client)
        .await
    {
        Ok(session) => Some(format!("Bearer {}", session.access_token)),
        // Someone else's data: no alice, or not with the demo password.
        Err(_) => None,
    };
    Ok(DemoReport {
        filled: empty,
        alice_authorization,
    })
}

async fn fill_empty(state: &AppState) -> anyhow::Result<()> {
    let hasher = PasswordHasher::new(1).await?;
    super::run(
        state.db.primary(),
        &hasher,
        SeedOptions {
            users: GENERATED_USERS,
            friends: GENERATED_AVERAGE_FRIENDS,
            seed: 42,
        },
    )
    .await?;
    write_people(state)
        .await
        .map_err(|err| anyhow::anyhow!("writing the demo people: {err:?}"))
}

/// The four, and everything between them.
async fn write_people(state: &AppState) -> AppResult<()> {
    let client = demo_client();
    let mut ids = Vec::with_capacity(PEOPLE.len());
    for person in &PEOPLE {
        let (year, month, day) = person.birthdate;
        let registered = state
            .accounts
            .register(
                Registration {
                    username: person.username.into(),
                    password: DEMO_PASSWORD.into(),
                    email: Some(format!("{}@example.com", person.username)),
                    phone: None,
                    display_name: Some(person.display_name.into()),
                    birthdate: NaiveDate::from_ymd_opt(year, month, day),
                },
                &client,
            )
            .await?;
        let id = registered.user.id;
        state
            .accounts
            .update_profile(
                id,
                ProfileChanges {
                    bio: Some(Some(person.bio.into())),
                    gender: Some(Some(person.gender)),
                    interests: Some(person.interests.iter().map(|&i| i.into()).collect()),
                    location: Some(Some(person.location)),
                    ..Default::default()
                },
            )
            .await?;
        state
            .media
            .upload_photo(id, portrait(person.colours), None)
            .await?;
        state
            .discovery
            .update_preferences(
                id,
                PreferenceChanges {
                    genders: Some(vec![Gender::Female, Gender::Male, Gender::Nonbinary]),
                    max_distance_km: Some(50),
                    ..Default::default()
                },
            )
            .await?;
        ids.push(id);
    }
    let [alice, bob, carol, dave] = ids[..] else {
        unreachable!("four people")
    };

    // Friends: alice, bob and carol know each other; carol and dave too.
    // Pending: dave asked alice, bob asked dave.
    for (from, to) in [(alice, bob), (alice, carol), (bob, carol), (carol, dave)] {
        let request = state.social.send_request(from, to, None).await?;
        state.social.accept_request(to, request.id).await?;
    }
    state
        .social
        .send_request(dave, alice, Some("Hi Alice, we matched! Friends?".into()))
        .await?;
    state.social.send_request(bob, dave, None).await?;

    // A public group with its chat.
    let group = state
        .groups
        .create(
            alice,
            NewGroup {
                name: "Berlin Climbers".into(),
                description: Some("Saturday sessions at the wall, all levels welcome.".into()),
                visibility: Visibility::Public,
                join_policy: JoinPolicy::Open,
            },
        )
        .await?;
    for member in [bob, carol] {
        state.groups.request_to_join(member, group.id).await?;
    }
    let group_chat = state
        .chat
        .group_membership(alice, group.id)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the demo group has no conversation")))?
        .conversation
        .id;
    send_all(state, group_chat, &[alice, bob, carol], GROUP_HISTORY).await?;

    // A direct conversation with history.
    let direct = state
        .chat
        .direct_conversation(alice, bob)
        .await?
        .conversation
        .id;
    send_all(state, direct, &[alice, bob], DIRECT_HISTORY).await?;

    // Discovery: alice and dave like each other (a match, with its own
    // conversation); carol super-liked dave, who has not answered.
    state.discovery.swipe(alice, dave, SwipeKind::Like).await?;
    state.discovery.swipe(dave, alice, SwipeKind::Like).await?;
    state
        .discovery
        .swipe(carol, dave, SwipeKind::SuperLike)
        .await?;
    Ok(())
}

async fn send_all(
    state: &AppState,
    conversation_id: Uuid,
    senders: &[Uuid],
    history: &[(usize, &str)],
) -> AppResult<()> {
    for (index, &(sender, body)) in history.iter().enumerate() {
        state
            .chat
            .send(
                senders[sender],
                Outgoing {
                    conversation_id,
                    body: body.into(),
                    client_message_id: format!("demo-{conversation_id}-{index}"),
                    reply_to_id: None,
                    attachment_ids: Vec::new(),
                },
            )
            .await?;
    }
    Ok(())
}

fn demo_client() -> ClientInfo {
    ClientInfo {
        ip: None,
        user_agent: Some("kith serve --demo".into()),
    }
}
