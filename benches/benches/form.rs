//! The form layer of a poll: `form/poll` parses the device access token request body
//! (RFC 8628 §3.4) and makes the lookups the token endpoint makes on it: `grant_type`
//! present and equal to the device-code URN, `client_id` and `client_secret` for client
//! authentication, `device_code`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use deviceflow_benches::{poll_body, DEMO_CLIENT_ID};
use deviceflow_server::http::form::{Form, DEVICE_CODE_GRANT};
use deviceflow_server::protocol::device_code::{DeviceCode, Secret};
use deviceflow_server::protocol::user_code::UserCode;

/// What the token endpoint reads from a poll's form, in its order.
fn lookups(form: &Form<'_>) -> bool {
    form.has("grant_type")
        && form.get("client_id").is_ok_and(|id| id.is_some())
        && form.get("client_secret").is_ok_and(|s| s.is_none())
        && form.is("grant_type", &DEVICE_CODE_GRANT)
        && form.get_bytes("device_code").is_ok_and(|c| c.is_some())
}

fn form(c: &mut Criterion) {
    let code = DeviceCode {
        user_code: UserCode::generate(),
        secret: Secret::generate(),
    }
    .encode();
    let body = poll_body(&code);
    let parsed = Form::parse(&body).expect("the poll body is a valid form");
    assert!(lookups(&parsed), "form/poll must find every parameter");
    assert_eq!(
        parsed.get("client_id").unwrap().as_deref(),
        Some(DEMO_CLIENT_ID)
    );
    assert_eq!(parsed.get("device_code").unwrap().as_deref(), Some(&*code));

    let mut g = c.benchmark_group("form");
    g.bench_function("poll", |b| {
        b.iter(|| Form::parse(black_box(&body)).is_ok_and(|f| lookups(&f)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = form
}
criterion_main!(benches);
