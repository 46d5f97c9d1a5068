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
