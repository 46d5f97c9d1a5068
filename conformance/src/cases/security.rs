//! A.9: security considerations (RFC 8628 §5), and A.10: RFC 9700 as it applies.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{approved_token, case, enough_samples, expect_error, expect_success};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::Ctx;

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "SC-01",
            "rfc8628/5.1/user-code-entropy",
            "A.9",
            "RFC 8628 §5.1",
            Should,
            None,
            None,
            "User codes have at least the entropy of RFC 8628 §5.1's example (8 base-20 characters)",
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
            // The MUST is §2.2.2 (rotate or sender-constrain); §4.14.2 says how.
            "RFC 9700 §2.2.2, §4.14.2",
            Must,
            Approve,
            None,
            "Refresh tokens of public clients are rotated and reuse is detected",
            bcp_01
        ),
        // Not rows of the checklist (yet): RFC 6749 §6 rules on the refresh tokens a
        // device flow yields, ids RT-nn until the checklist gives them rows.
        case!(
            "RT-01",
            "rfc6749/6/refresh-works",
            "A.10",
            "RFC 6749 §6",
            Must,
            Approve,
            None,
            "A refresh token the device flow issued can be used, and answers 200 JSON",
            rt_01
        ),
        case!(
            "RT-02",
            "rfc6749/6/refresh-bound-to-client",
            "A.10",
            "RFC 6749 §6",
            Must,
            Approve,
            None,
            "Another client cannot use the refresh token",
            rt_02
        ),
        case!(
            "RT-03",
            "rfc6749/6/refresh-no-wider-scope",
            "A.10",
            "RFC 6749 §6",
            Must,
            Approve,
            None,
            "A refresh cannot widen the scope",
            rt_03
        ),
    ]
}

/// An approved flow's token response and its refresh token, or the verdict to give:
/// n/a when no refresh token was issued, the recorded failure when the flow failed.
async fn refreshable(
    ctx: &Ctx,
    mut c: Check,
    case: &str,
) -> Result<(Check, serde_json::Map<String, Value>, String), Verdict> {
    let Some((_, e, _)) = approved_token(ctx, &mut c, case).await else {
        return Err(c.finish(""));
    };
    c.evidence(e.clone());
    if super::needed_token_malformed(&mut c, &e) {
        return Err(c.finish(""));
    }
    if !c.expect(
        super::issued_token(&e),
        format!("the approved flow yields a token (got {})", e.brief()),
    ) {
        return Err(c.finish(""));
    }
    let t = e
        .json()
        .value
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    match t
        .get("refresh_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        Some(rt) => Ok((c, t, rt)),
        None => Err(c.skip(Status::NotApplicable, "no refresh token was issued")),
    }
}

/// A refresh token request (RFC 6749 §6) as `client`.
async fn refresh(
    ctx: &Ctx,
    label: &str,
    client: &crate::client::Client,
    rt: &str,
    scope: Option<&str>,
) -> crate::http::Exchange {
    let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    params.extend(scope.map(|s| ("scope", s)));
    ctx.http
        .post_form(label, &ctx.target.token_endpoint, Some(client), &params)
        .await
}

async fn rt_01(ctx: Ctx) -> Verdict {
    let (mut c, _, rt) = match refreshable(&ctx, Check::new(Level::Must), "RT-01").await {
        Ok(x) => x,
        Err(v) => return v,
    };
    let e = refresh(&ctx, "refresh", ctx.client(), &rt, None).await;
    // RFC 6749 §6: "If valid and authorized, the authorization server issues an access
    // token as described in Section 5.1".
    expect_success(&mut c, &e, &["access_token", "token_type"]);
    c.finish("the refresh token works: 200 JSON with a new access token")
}

async fn rt_02(ctx: Ctx) -> Verdict {
    let Some(other) = ctx.target.second_client.clone() else {
        return Check::new(Level::Must).skip(
            Status::NotApplicable,
            "no second client configured (--second-client)",
        );
    };
    let (mut c, _, rt) = match refreshable(&ctx, Check::new(Level::Must), "RT-02").await {
        Ok(x) => x,
        Err(v) => return v,
    };
    let e = refresh(
        &ctx,
        "the other client refreshes with it",
        &other,
        &rt,
        None,
    )
    .await;
    // RFC 6749 §6: the server MUST "validate the refresh token" and "ensure that the
    // refresh token was issued to the authenticated client"; §5.2 invalid_grant.
    c.expect(
        !super::grants_access(&e),
        format!("another client gets no token with it (got {})", e.brief()),
    );
    expect_error(
        &mut c,
        &e,
        &["invalid_grant", "invalid_client", "unauthorized_client"],
    );
    c.finish("another client's refresh is refused")
}

async fn rt_03(ctx: Ctx) -> Verdict {
    let (mut c, t, rt) = match refreshable(&ctx, Check::new(Level::Must), "RT-03").await {
        Ok(x) => x,
        Err(v) => return v,
    };
    let granted = t
        .get("scope")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| ctx.target.scope.clone())
        .unwrap_or_default();
    let extra = "deviceflow-conformance-wider";
    let wider = format!("{granted} {extra}").trim().to_owned();
    let e = refresh(
        &ctx,
        "refresh asking for a wider scope",
        ctx.client(),
        &rt,
        Some(&wider),
    )
    .await;
    // RFC 6749 §6: "The requested scope MUST NOT include any scope not originally
    // granted by the resource owner"; §5.2: invalid_scope "exceeds the scope granted".
    if super::grants_access(&e) {
        c.evidence(e.clone());
        let got = e
            .json()
            .value
            .and_then(|v| v.get("scope").and_then(Value::as_str).map(str::to_owned));
        c.expect(
            got.as_deref()
                .is_some_and(|g| !g.split(' ').any(|s| s == extra)),
            format!(
                "a refresh grants nothing beyond the original {granted:?} (got scope {})",
                got.map_or(
                    "absent, which RFC 6749 §5.1 reads as the wider request".to_owned(),
                    |g| format!("{g:?}")
                )
            ),
        );
    } else {
        c.evidence(e.clone());
        c.expect(
            e.status().is_some_and(|s| (400..500).contains(&s)),
            format!(
                "the wider refresh is refused with an OAuth error (got {})",
                e.brief()
            ),
        );
        let code = e.error_code().unwrap_or_default();
        c.expect_soft(
            code == "invalid_scope",
            format!("the refusal is invalid_scope (got {code:?})"),
        );
    }
    c.finish("a refresh cannot widen the scope")
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

/// A user code's entropy, estimated per position from the sampled `codes` (RFC 8628
/// §5.1 is about what an attacker must guess, and a position that never varies, as
/// `DEVICE-` in `DEVICE-1234`, gives them nothing).
#[derive(Debug, Clone, PartialEq)]
struct CodeEntropy {
    /// About how many bits: the sum over positions.
    bits: f64,
    /// The longest code, in characters.
    length: usize,
    /// Positions whose character never varied across the samples (0 bits each).
    fixed: usize,
    /// Every character seen at a position that varies.
    alphabet: String,
}

/// The character class `c` belongs to, for the alphabet of a position.
fn class(c: char) -> u8 {
    if c.is_ascii_digit() {
        0
    } else if c.is_uppercase() {
        1
    } else if c.is_lowercase() {
        2
    } else {
        3
    }
}

/// [`CodeEntropy`] of `codes`, position by position: a position that never varies adds
/// nothing; one that varies adds log2 of the characters it draws from, which is the
/// characters seen there, capped by the characters of the same classes (digits, upper
/// case, lower case, others) seen at any varying position. Where uniform draws from
/// all of those could well have shown as few as were seen (a chance of at least
/// [`TOO_FEW_BY_CHANCE`]), the cap is taken: a base-20 position sampled 20 times
/// shows about 13 of its 20 characters, by chance alone.
fn code_entropy(codes: &[&str]) -> CodeEntropy {
    let codes: Vec<Vec<char>> = codes.iter().map(|c| c.chars().collect()).collect();
    let length = codes.iter().map(Vec::len).max().unwrap_or(0);
    let columns: Vec<Vec<char>> = (0..length)
        .map(|i| codes.iter().filter_map(|c| c.get(i).copied()).collect())
        .collect();
    let distinct = |col: &[char]| col.iter().copied().collect::<BTreeSet<char>>();
    let alphabet: BTreeSet<char> = columns
        .iter()
        .map(|col| distinct(col))
        .filter(|d| d.len() > 1)
        .flatten()
        .collect();
    let mut chance = std::collections::HashMap::new();
    let (mut bits, mut fixed) = (0.0, 0);
    for col in &columns {
        let seen = distinct(col);
        if seen.len() <= 1 {
            fixed += 1;
            continue;
        }
        let classes: BTreeSet<u8> = seen.iter().map(|&c| class(c)).collect();
        let cap = alphabet
            .iter()
            .filter(|&&c| classes.contains(&class(c)))
            .count();
        let p = chance
            .entry((cap, col.len()))
            .or_insert_with(|| distinct_counts(cap, col.len()));
        let at_most_seen: f64 = p.iter().take(seen.len() + 1).sum();
        let k = if at_most_seen >= TOO_FEW_BY_CHANCE {
            cap
        } else {
            seen.len()
        };
        bits += (k as f64).log2();
    }
    CodeEntropy {
        bits,
        length,
        fixed,
        alphabet: alphabet.into_iter().collect(),
    }
}

/// Below this chance, a position that showed fewer characters than its cap is taken
/// to draw from only those (see [`code_entropy`]).
const TOO_FEW_BY_CHANCE: f64 = 1e-4;

/// The distribution of how many distinct characters `n` uniform draws from `cap`
/// show: element `d` is the chance of exactly `d` (the occupancy problem).
fn distinct_counts(cap: usize, n: usize) -> Vec<f64> {
    let mut p = vec![0.0; cap + 1];
    p[0] = 1.0;
    let c = cap as f64;
    for _ in 0..n {
        for d in (0..=cap).rev() {
            let stay = p[d] * d as f64 / c;
            let arrive = if d > 0 {
                p[d - 1] * (c - (d - 1) as f64) / c
            } else {
                0.0
            };
            p[d] = stay + arrive;
        }
    }
    p
}

/// RFC 8628 §5.1's reference: 8 characters of base 20, "roughly 34.5 bits", which
/// with at most 5 guesses per code lifetime bounds an attacker's success at 2^-32.
const USER_CODE_REFERENCE_BITS: f64 = 34.0;

async fn sc_01(ctx: Ctx) -> Verdict {
    let samples = match enough_samples(&ctx, Level::Should).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut c = Check::new(Level::Should);
    let codes: Vec<&str> = samples.iter().map(|a| a.user_code.as_str()).collect();
    let CodeEntropy {
        bits,
        length,
        fixed,
        alphabet,
    } = code_entropy(&codes);
    c.measure("samples", samples.len());
    c.measure("alphabet", alphabet.clone());
    c.measure("length", length);
    c.measure("fixed_positions", fixed);
    c.measure("bits", (bits * 10.0).round() / 10.0);
    let shape = format!(
        "{length} characters, {} of them varying over a {}-character alphabet, {fixed} never varying across {} samples",
        length - fixed,
        alphabet.chars().count(),
        samples.len()
    );
    // RFC 8628 §5.1: a SHOULD; fewer bits need harder guess limits than a black box can
    // see, so this warns, never fails (checklist SC-01: "do not FAIL on bits alone").
    c.expect(
        bits >= USER_CODE_REFERENCE_BITS,
        format!(
            "user codes carry at least {USER_CODE_REFERENCE_BITS} bits, counted per position (got about {bits:.1}: {shape})"
        ),
    );
    c.finish(format!(
        "about {bits:.1} bits, counted per position ({shape}; RFC 8628 §5.1's example, 8 base-20 characters: 34.5)"
    ))
}

async fn sc_02(ctx: Ctx) -> Verdict {
    let samples = match enough_samples(&ctx, Level::Should).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut c = Check::new(Level::Should);
    let codes: Vec<&str> = samples.iter().map(|a| a.device_code.as_str()).collect();
    let (alphabet, len, bits) = entropy(&codes);
    c.measure("alphabet_size", alphabet.chars().count());
    c.measure("length", len);
    c.measure("bits_upper_bound", (bits * 10.0).round() / 10.0);
    c.expect(
        bits >= 128.0,
        format!(
            "device codes carry at least 128 bits (got at most {bits:.0}: {len} characters of a {}-character alphabet)",
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
        .device_authorization(
            "public client, client_id only",
            Some(&public),
            &ctx.scope_params(),
        )
        .await;
    c.expect(
        e.status() == Some(200),
        format!(
            "a public client's device authorization gets HTTP 200 (got {})",
            e.brief()
        ),
    );
    c.evidence(e);
    c.finish("public clients work with client_id alone")
}

async fn sc_07(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..30 {
        let guess = format!("deviceflow-conformance-guess-{i:04}-AAAAAAAAAAAAAAAAAAAAAAAA");
        let e = ctx.poll_raw(&format!("guess {}", i + 1), &guess).await;
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
    let samples = match enough_samples(&ctx, Level::Info).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut c = Check::new(Level::Info);
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
    let Some((_, e, _)) = approved_token(&ctx, &mut c, "BCP-01").await else {
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
        super::grants_access(&r),
        format!("refreshing with RT1 works (got {})", r.brief()),
    ) {
        return c.finish("");
    }
    let Some(rt2) = rt2 else {
        c.expect(
            ctx.client().is_confidential(),
            "a public client's refresh token is rotated (got no new refresh_token; RFC 9700 §2.2.2: rotate or sender-constrain; rotation as §4.14.2 says)",
        );
        return c.finish("not rotated: sender-constraint not checked");
    };
    // RFC 9700 §4.14.2: rotation issues a new refresh token with every refresh.
    c.expect(
        rt2 != rt1,
        if rt2 == rt1 {
            "the new refresh token differs from the old one (got the same refresh token again)"
        } else {
            "the new refresh token differs from the old one"
        },
    );
    let reuse = refresh(rt1, "reuse of RT1").await;
    expect_error(&mut c, &reuse, &["invalid_grant"]);
    let after = refresh(rt2, "RT2 after RT1's reuse").await;
    c.evidence(after.clone());
    // Worded for what happened (helper-86: "RT2 … is revoked once RT1 was reused" was
    // the words of a warning that RT2 still worked).
    let revoked = !super::grants_access(&after);
    let what = if revoked {
        format!(
            "RT2, the family's active refresh token, is revoked once RT1 was reused, as RFC 9700 §4.14.2 describes (got {})",
            after.brief()
        )
    } else {
        format!(
            "RT2, the family's active refresh token, should be revoked once RT1 was reused, as RFC 9700 §4.14.2 describes, and still works (a warning: the MUST of RFC 9700 §2.2.2, rotation, holds) (got {})",
            after.brief()
        )
    };
    c.expect_soft(revoked, what);
    c.finish("rotated; reuse refused and the family revoked")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` codes of `len` characters drawn from `alphabet`, after `prefix`.
    fn codes(n: usize, prefix: &str, alphabet: &[u8], len: usize) -> Vec<String> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                let tail: String = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        alphabet[(x % alphabet.len() as u64) as usize] as char
                    })
                    .collect();
                format!("{prefix}{tail}")
            })
            .collect()
    }

    fn bits(codes: &[String]) -> CodeEntropy {
        code_entropy(&codes.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn positions_that_never_vary_carry_no_entropy() {
        // `DEVICE-1234`: 11 characters of a 15-character alphabet read as 39 bits; 4
        // digits are about 13.3.
        let e = bits(&codes(200, "DEVICE-", b"0123456789", 4));
        assert!((e.bits - 4.0 * 10f64.log2()).abs() < 0.01, "{e:?}");
        assert_eq!((e.length, e.fixed), (11, 7));
        assert_eq!(e.alphabet, "0123456789");
    }

    #[test]
    fn a_base_20_code_is_about_34_5_bits_even_from_few_samples() {
        // RFC 8628 §5.1's example, its separator fixed; 50 and 20 samples show fewer
        // than 20 characters at a position by chance alone, and must not warn for it.
        for n in [20, 50, 200] {
            let e = bits(&codes(n, "", b"BCDFGHJKLMNPQRSTVWXZ", 8));
            assert!((e.bits - 8.0 * 20f64.log2()).abs() < 0.01, "{n}: {e:?}");
            assert!(e.bits >= USER_CODE_REFERENCE_BITS, "{n}: {e:?}");
        }
        let dashed: Vec<String> = codes(200, "", b"BCDFGHJKLMNPQRSTVWXZ", 8)
            .into_iter()
            .map(|c| format!("{}-{}", &c[..4], &c[4..]))
            .collect();
        let e = bits(&dashed);
        assert_eq!(e.fixed, 1, "{e:?}");
        assert!((e.bits - 8.0 * 20f64.log2()).abs() < 0.01, "{e:?}");
    }

    /// `n` codes of `len` characters drawn from `alphabet` with `rng`, a
    /// SplitMix64 state (a seed per trial, so that many trials are many samples).
    fn random_codes(rng: &mut u64, n: usize, alphabet: &[u8], len: usize) -> Vec<String> {
        let mut next = || {
            *rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..n)
            .map(|_| {
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn correct_codes_are_judged_right_at_few_samples_trial_after_trial() {
        // RFC 8628 §5.1's 8 base-20 characters (34.6 bits), 20 samples (the fewest
        // judged) and 50 (the mutation harness's): a position showing fewer than 80 %
        // of what it should by chance had counted only those it showed, and warned
        // in a third of the runs at 20 samples (the fixed sample above passed).
        let mut rng = 7;
        for (n, most_warnings) in [(20, 8), (50, 0)] {
            let warned = (0..400)
                .filter(|_| {
                    let c = random_codes(&mut rng, n, b"BCDFGHJKLMNPQRSTVWXZ", 8);
                    bits(&c).bits < USER_CODE_REFERENCE_BITS
                })
                .count();
            assert!(warned <= most_warnings, "{n} samples: {warned}/400 warned");
        }
        // Nine digits (RFC 8628 §6.1's numeric codes): 29.9 bits, every time.
        for n in [20, 200] {
            for _ in 0..100 {
                let e = bits(&random_codes(&mut rng, n, b"0123456789", 9));
                assert!((e.bits - 9.0 * 10f64.log2()).abs() < 0.01, "{n}: {e:?}");
            }
        }
    }

    #[test]
    fn distinct_counts_is_a_distribution() {
        let p = distinct_counts(20, 20);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let mean: f64 = p.iter().enumerate().map(|(d, q)| d as f64 * q).sum();
        // 20·(1 − (19/20)^20) ≈ 12.83.
        assert!(
            (mean - 20.0 * (1.0 - 0.95f64.powi(20))).abs() < 1e-9,
            "{mean}"
        );
        assert_eq!(distinct_counts(2, 1), [0.0, 1.0, 0.0]);
    }

    #[test]
    fn a_position_drawing_from_few_characters_counts_only_those() {
        // Letters at the first four positions, then one of two digits: 4·log2(20) + 4.
        let a = codes(200, "", b"BCDFGHJKLMNPQRSTVWXZ", 4);
        let b = codes(200, "", b"01", 4);
        let mixed: Vec<String> = a.iter().zip(&b).map(|(x, y)| format!("{x}{y}")).collect();
        let e = bits(&mixed);
        assert!((e.bits - (4.0 * 20f64.log2() + 4.0)).abs() < 0.01, "{e:?}");
    }
}
