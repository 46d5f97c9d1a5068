//! Registered clients live in the store: on Redis, a client registered through one
//! instance is known to every other at once, survives a restart of them all, and is
//! gone everywhere once deleted through any; on the in-memory store a restart forgets
//! it (as the README says).

use deviceflow_testkit::RedisServer;
use reqwest::Method;

use super::*;

/// [`config`] with dynamic registration on.
fn registration(store: &str) -> String {
    format!(
        "{}\n[registration]\ninitial_access_token = \"{INITIAL_TOKEN}\"\n",
        config(store)
    )
}

/// A device flow of `client_id` started on `a`, approved on `b`, redeemed on `a`.
async fn flow(a: &Client, b: &Client, client_id: &str) -> (String, String) {
    let da = a.authorize(client_id).await;
    assert_eq!(
        b.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    tokens(&a.poll(client_id, &da.device_code).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_on_one_instance_works_on_another_and_survives_a_restart() {
    let redis = RedisServer::start().unwrap();
    let mut fleet = Instances::start(2, &registration(&redis.url()));
    let client_id = fleet.at(0).register_device_app("Shared TV").await;
    let (access, _) = flow(fleet.at(1), fleet.at(0), &client_id).await;
    assert_eq!(fleet.at(0).introspect(&access).await["active"], true);

    fleet.stop_all();
    fleet.start_all();
    let (a, b) = (fleet.at(0), fleet.at(1));
    let (_, refresh) = flow(b, a, &client_id).await;
    assert_eq!(a.introspect(&access).await["active"], true);

    // Deleted through one instance: unknown on the other at once.
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let deleted = a
        .call(
            Method::DELETE,
            &format!("{ADMIN_CLIENTS}/{client_id}"),
            &[("authorization", &admin)],
        )
        .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    b.post(DA, &format!("client_id={client_id}"))
        .await
        .assert_oauth_error(401, "invalid_client");
    b.post(
        TOKEN,
        &format!("grant_type=refresh_token&client_id={client_id}&refresh_token={refresh}"),
    )
    .await
    .assert_oauth_error(401, "invalid_client");
    assert_eq!(b.introspect(&access).await["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_memory_store_forgets_registered_clients() {
    let mut fleet = Instances::start(1, &registration("memory"));
    let client_id = fleet.at(0).register_device_app("Forgotten TV").await;
    assert_eq!(
        fleet
            .at(0)
            .post(DA, &format!("client_id={client_id}"))
            .await
            .status,
        200
    );
    fleet.stop_all();
    fleet.start_all();
    fleet
        .at(0)
        .post(DA, &format!("client_id={client_id}"))
        .await
        .assert_oauth_error(401, "invalid_client");
}

/// RFC 8628 §5.4: two registrations of names that read alike, sent at the same moment
/// through two instances, keep one: the name's keys are claimed in Redis in one step.
/// A check of the registered names alone (read, then write) lets several through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_names_alike_registered_at_once_through_two_instances_one_is_kept() {
    let redis = RedisServer::start().unwrap();
    let fleet = Instances::start(2, &registration(&redis.url()));
    let names = [
        "Hall TV",
        "hall tv",
        "HALL-TV",
        "Ha\u{13de}\u{13de} TV",
        "H\u{430}ll TV",
    ];
    let sent: Vec<_> = (0..16)
        .map(|i| {
            let metadata = serde_json::json!({
                "client_name": names[i % names.len()],
                "token_endpoint_auth_method": "none",
            });
            let at = fleet.at(i % 2).clone();
            tokio::spawn(async move { at.register(&metadata).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in sent {
        answers.push(task.await.unwrap());
    }
    let kept: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(kept.len(), 1, "{statuses:?}");
    for a in answers.iter().filter(|a| a.status != 201) {
        a.assert_oauth_error(400, "invalid_client_metadata");
    }
    // Nothing else was kept, by either instance.
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let listed = fleet
        .at(1)
        .call(Method::GET, ADMIN_CLIENTS, &[("authorization", &admin)])
        .await;
    let listed = listed.json();
    let registered: Vec<_> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "registered")
        .collect();
    assert_eq!(registered.len(), 1, "{listed}");
}

/// Clients registered before the names were indexed in Redis (by an older server), or
/// the index lost (evicted, deleted) while the clients stayed: an instance that starts
/// gives them their names back, so that a name alike is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_name_index_is_rebuilt_from_the_registered_clients_at_start() {
    let redis = RedisServer::start().unwrap();
    let mut fleet = Instances::start(1, &registration(&redis.url()));
    fleet.at(0).register_device_app("Attic TV").await;
    assert_eq!(
        redis.command(&["DEL", "df:c:names"]).unwrap(),
        deviceflow_testkit::Reply::Integer(1)
    );
    fleet.stop_all();
    fleet.start_all();
    let again =
        serde_json::json!({"client_name": "ATTIC TV", "token_endpoint_auth_method": "none"});
    let a = fleet.at(0).register(&again).await;
    a.assert_oauth_error(400, "invalid_client_metadata");
    let why = a.json()["error_description"].as_str().unwrap().to_owned();
    assert!(why.contains("reads as 'Attic TV'"), "{why}");
}
