//! A.9: security considerations (RFC 8628 §5), and A.10: RFC 9700 as it applies.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{approved_token, case, expect_error};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::Ctx;

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "SC-01",
            "rfc8628/5.1/user-code-entropy",
            "A.9",
            "RFC 8628 §5.1",
            Info,
            None,
            None,
            "User-code entropy, inferred from samples",
            sc_01
        ),
        case!(
            "SC-02",
            "rfc8628/5.2/device-code-entropy",
            "A.9",
            "RFC 8628 §5.2",
            Should,
            None,
            None,
            "The device code has very high entropy (at least 128 bits)",
            sc_02
        ),
        case!(
            "SC-05",
            "rfc8628/5.6/public-clients",
            "A.9",
            "RFC 8628 §5.6",
            Should,
            None,
            None,
            "Public device clients are supported with client_id alone",
            sc_05
        ),
        case!(
            "SC-07",
            "rfc8628/5.2/device-code-guess-throttling",
            "A.9",
            "RFC 8628 §5.2",
            Info,
            None,
            None,
            "Are guesses of unknown device codes throttled?",
            sc_07
        ),
        case!(
            "SC-08",
            "rfc8628/5.2/codes-unpredictable",
            "A.9",
            "RFC 8628 §5.2",
            Info,
            None,
            None,
            "No visible pattern in sampled codes",
            sc_08
        ),
        case!(
            "BCP-01",
            "rfc9700/4.14.2/refresh-rotation",
            "A.10",
            "RFC 9700 §4.14.2",
            Must,
            Approve,
            None,
            "Refresh tokens of public clients are rotated and reuse is detected",
            bcp_01
        ),
    ]
}

/// Bits per code from the inferred alphabet and length.
fn entropy(codes: &[&str]) -> (String, usize, f64) {
    let alphabet: BTreeSet<char> = codes
        .iter()
        .flat_map(|c| c.chars())
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let len = codes
        .iter()
        .map(|c| c.chars().filter(|c| alphabet.contains(c)).count())
        .max()
        .unwrap_or(0);
    let bits = if alphabet.len() > 1 {
        len as f64 * (alphabet.len() as f64).log2()
    } else {
        0.0
    };
    (alphabet.into_iter().collect(), len, bits)
}

async fn sc_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let samples = ctx.samples().await;
    let codes: Vec<&str> = samples.iter().map(|a| a.user_code.as_str()).collect();
    let (alphabet, len, bits) = entropy(&codes);
    c.measure("alphabet", alphabet.clone());
    c.measure("length", len);
    c.measure("bits", (bits * 10.0).round() / 10.0);
    c.finish(format!(
        "{len} characters of a {}-character alphabet: about {bits:.1} bits (RFC 8628 §6.1's 8 base-20 characters: 34.6)",
        alphabet.chars().count()
    ))
}

async fn sc_02(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    let samples = ctx.samples().await;
    let codes: Vec<&str> = samples.iter().map(|a| a.device_code.as_str()).collect();
    let (alphabet, len, bits) = entropy(&codes);
    c.measure("alphabet_size", alphabet.chars().count());
    c.measure("length", len);
    c.measure("bits_upper_bound", (bits * 10.0).round() / 10.0);
    c.expect(
        bits >= 128.0,
        format!(
            "at most {bits:.0} bits ({len} characters of a {}-character alphabet)",
            alphabet.chars().count()
        ),
    );
    c.finish(format!(
        "up to {bits:.0} bits per device code (an upper bound: a black box cannot prove a CSPRNG)"
    ))
}

async fn sc_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    let Some(public) = ctx.public_client().cloned() else {
        return c.skip(Status::NotApplicable, "no public client configured");
    };
    let e = ctx
        .http
        .post_form(
            "public client, client_id only",
            &ctx.target.device_authorization_endpoint,
            Some(&public),
            &ctx.scope_params(),
        )
        .await;
    c.expect(
        e.status() == Some(200),
        format!("a public client's device authorization got {}", e.brief()),
    );
    c.evidence(e);
    c.finish("public clients work with client_id alone")
}

async fn sc_07(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..30 {
        let guess = format!("deviceflow-conformance-guess-{i:04}-AAAAAAAAAAAAAAAAAAAAAAAA");
        let e = ctx.poll(&format!("guess {}", i + 1), &guess).await;
        let label = match (e.status(), e.error_code()) {
            (Some(s), Some(code)) => format!("{s} {code}"),
            (Some(s), None) => format!("{s}"),
            (None, _) => "no response".to_owned(),
        };
        *answers.entry(label).or_default() += 1;
    }
    let throttled = answers.keys().any(|k| {
        k.starts_with("429") || k.contains("slow_down") || k.contains("temporarily_unavailable")
    });
    c.measure(
        "answers_to_30_guesses",
        serde_json::to_value(&answers).unwrap_or_default(),
    );
    c.measure("throttled", throttled);
    c.finish(if throttled {
        "guessing is throttled"
    } else {
        "30 guesses in a row were all answered, none throttled"
    })
}

async fn sc_08(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let samples = ctx.samples().await;
    let common_prefix = |codes: Vec<&str>| -> usize {
        let Some(first) = codes.first() else { return 0 };
        (0..first.len())
            .take_while(|&i| {
                codes
                    .iter()
                    .all(|c| c.as_bytes().get(i) == first.as_bytes().get(i))
            })
            .count()
    };
    let device_prefix = common_prefix(samples.iter().map(|a| a.device_code.as_str()).collect());
    let user_prefix = common_prefix(samples.iter().map(|a| a.user_code.as_str()).collect());
    c.measure("device_code_common_prefix", device_prefix);
    c.measure("user_code_common_prefix", user_prefix);
    c.finish(format!("common prefix across {} samples: device codes {device_prefix}, user codes {user_prefix} characters", samples.len()))
}

async fn bcp_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some((_, e)) = approved_token(&ctx, &mut c, "BCP-01").await else {
        return c.finish("");
    };
    c.evidence(e.clone());
    let rt1 = e.json().value.and_then(|v| {
        v.get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(rt1) = rt1 else {
        return c.skip(Status::NotApplicable, "no refresh token was issued");
    };
    let refresh = |rt: String, label: &'static str| {
        let ctx = ctx.clone();
        async move {
            ctx.http
                .post_form(
                    label,
                    &ctx.target.token_endpoint,
                    Some(ctx.client()),
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await
        }
    };
    let r = refresh(rt1.clone(), "refresh with RT1").await;
    c.evidence(r.clone());
    let rt2 = r.json().value.and_then(|v| {
        v.get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if !c.expect(
        r.status() == Some(200),
        format!("refreshing failed: {}", r.brief()),
    ) {
        return c.finish("");
    }
    let Some(rt2) = rt2 else {
        c.expect(
            ctx.client().is_confidential(),
            "a public client's refresh token was not rotated (RFC 9700 §4.14.2)",
        );
        return c.finish("not rotated: sender-constraint not checked");
    };
    c.expect(rt2 != rt1, "the new refresh token equals the old one");
    let reuse = refresh(rt1, "reuse of RT1").await;
    expect_error(&mut c, &reuse, &["invalid_grant"]);
    let after = refresh(rt2, "RT2 after RT1's reuse").await;
    c.evidence(after.clone());
    c.expect_soft(
        after.status() != Some(200),
        format!("RT2 still works after RT1 was reused: {}", after.brief()),
    );
    c.finish("rotated; reuse refused and the family revoked")
}
