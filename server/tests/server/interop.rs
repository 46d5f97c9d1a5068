//! Interop with a client nobody here wrote: the `oauth2` crate's device flow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};

use crate::common::*;

#[tokio::test]
async fn oauth2_crate_completes_a_device_flow() {
    let s = Arc::new(TestServer::start().await);
    let client = BasicClient::new(ClientId::new("tv".to_owned()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{}{DA}", s.base)).unwrap(),
        )
        .set_token_uri(TokenUrl::new(format!("{}{TOKEN}", s.base)).unwrap());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".to_owned()))
        .add_scope(Scope::new("tv".to_owned()))
        .request_async(&http)
        .await
        .expect("device authorization");
    assert_eq!(details.interval(), Duration::from_secs(INTERVAL));

    // The client's sleeps move the server's clock instead of waiting; the person
    // approves during the second wait, so the client sees pending first.
    let sleeps = Arc::new(AtomicUsize::new(0));
    let user_code = details.user_code().secret().clone();
    let sleep = {
        let (s, sleeps) = (Arc::clone(&s), Arc::clone(&sleeps));
        move |d: Duration| {
            let (s, sleeps, user_code) = (Arc::clone(&s), Arc::clone(&sleeps), user_code.clone());
            async move {
                s.advance_ms(d.as_millis() as u64);
                if sleeps.fetch_add(1, Ordering::SeqCst) == 1 {
                    assert_eq!(s.decide(&user_code, "approve", "alice").await.status, 200);
                }
            }
        }
    };
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&http, sleep, None)
        .await
        .expect("device access token");
    assert!(
        sleeps.load(Ordering::SeqCst) >= 2,
        "the client polled while pending"
    );
    let scopes: Vec<&str> = token.scopes().unwrap().iter().map(|s| s.as_str()).collect();
    assert_eq!(scopes, ["openid", "tv"]);
    assert!(token.refresh_token().is_some());
    let metrics = String::from_utf8(s.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("deviceflow_slow_down_total 0\n"),
        "a compliant client is never slowed down"
    );
}
