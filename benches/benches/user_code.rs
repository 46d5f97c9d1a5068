//! User codes (RFC 8628 §6.1): drawing a fresh one (`user_code/generate`, one CSPRNG
//! draw) and reading what a person typed (`user_code/normalize`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use deviceflow_server::protocol::user_code::{UserCode, ALPHABET, LEN};

fn user_code(c: &mut Criterion) {
    let code = UserCode::generate();
    assert!(code.chars().iter().all(|b| ALPHABET.contains(b)));
    // What a person types from the screen: lower case, the dash as a space.
    let display = code.display().to_ascii_lowercase();
    let typed = format!(" {} ", display.replace('-', " "));
    assert_eq!(typed.len(), LEN + 3);
    assert_eq!(
        UserCode::normalize(&typed),
        Some(code),
        "user_code/normalize must measure an accepted code"
    );

    let mut g = c.benchmark_group("user_code");
    g.bench_function("generate", |b| b.iter(UserCode::generate));
    g.bench_function("normalize", |b| {
        b.iter(|| UserCode::normalize(black_box(&typed)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = user_code
}
criterion_main!(benches);
