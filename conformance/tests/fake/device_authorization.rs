//! The fake's device authorization endpoint (RFC 8628 §3.1-§3.2), and each flaw of
//! its request checks, its codes and its response.

use std::time::{Duration, Instant};

use super::{
    authenticate, check_form, Code, Fake, Flaw, FormRules, Reply, Req, State, Store, ALPHABET,
    CLIENTS, CONFUSABLE, EXPIRES_IN, INTERVAL, LONG_INTERVAL, POINT_INTERVAL, SCOPES,
};

/// RFC 8628 §3.1-§3.2: checks the request, issues a pair of codes, answers with them.
pub(super) fn device_authorization(fake: &Fake, req: &Req) -> Reply {
    if let Some(refusal) = front_refusal(fake, req) {
        return refusal;
    }
    match check_device_request(fake, req) {
        Ok((client, scope)) => {
            device_authorization_response(fake, issue_codes(fake, client, scope))
        }
        Err(refusal) => *refusal,
    }
}

/// What a front (a rate limit, a proxy) answers in the server's stead, for
/// [`Flaw::EmptyScopeRateLimitedOnce`] and [`Flaw::EmptyScopeUnavailable`]: a request
/// with `scope=` refused with a 429 once, or a 503 always, each with `Retry-After: 1`.
fn front_refusal(fake: &Fake, req: &Req) -> Option<Reply> {
    if req.raw("scope") != Some("") {
        return None;
    }
    let (status, content_type, body) = if fake.has(Flaw::EmptyScopeUnavailable) {
        (503, "text/html", "<h1>503 Service Unavailable</h1>")
    } else if fake.has(Flaw::EmptyScopeRateLimitedOnce)
        && !std::mem::replace(&mut fake.store.lock().unwrap().rate_limited, true)
    {
        (429, "text/plain", "Too Many Requests")
    } else {
        return None;
    };
    Some(
        hyper::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("retry-after", "1")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                body.as_bytes(),
            )))
            .unwrap(),
    )
}

/// RFC 8628 §3.1: the client and scope of an acceptable request, or the refusal (boxed:
/// a response is large beside the answer).
fn check_device_request(fake: &Fake, req: &Req) -> Result<(String, String), Box<Reply>> {
    let err = |code| {
        Err(Box::new(fake.error(
            code,
            false,
            req.authorization.is_some(),
        )))
    };
    if req.empty && req.content_type.is_none() && fake.has(Flaw::EmptyPost500) {
        return Err(Box::new(
            fake.page(500, "<h1>Server Error (500)</h1>".into()),
        ));
    }
    check_form(
        fake,
        req,
        &FormRules {
            get_served: Flaw::GetServedAtDa,
            charset_refused: Flaw::CharsetRefusedAtDa,
            repeats_accepted: Flaw::RepeatsAcceptedAtDa,
            unknown_rejected: Flaw::UnknownParamRejectedAtDa,
            known: &["client_id", "client_secret", "scope"],
            at_token: false,
        },
    )?;
    let client = match authenticate(fake, req, false) {
        Ok(Some(c)) => c.id.to_owned(),
        Ok(None) if fake.has(Flaw::ClientIdOptional) => "client-a".to_owned(),
        Ok(None) => return err("invalid_request"),
        Err(code) => return err(code),
    };
    let def = CLIENTS.iter().find(|c| c.id == client).unwrap();
    if !def.device_grant && !fake.has(Flaw::UnauthorizedClientAllowedAtDa) {
        return err("unauthorized_client");
    }
    // RFC 6749 §3.3: the requested scope, or the default; unknown scopes refused.
    let scope = match req.raw("scope") {
        Some("") if fake.has(Flaw::EmptyScopeInvalid) => return err("invalid_scope"),
        None | Some("") if fake.has(Flaw::NoDefaultScope) => return err("invalid_scope"),
        None | Some("") => "openid".to_owned(),
        Some(s) if fake.has(Flaw::UndefinedScopeIgnored) => {
            let defined: Vec<&str> = s.split(' ').filter(|x| SCOPES.contains(x)).collect();
            if defined.is_empty() {
                "openid".to_owned()
            } else {
                defined.join(" ")
            }
        }
        Some(s) => {
            let ok = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .all(|x| SCOPES.contains(&x));
            if !ok
                && !fake.has(Flaw::UndefinedScopeGranted)
                && !fake.has(Flaw::UndefinedScopeRefusedAtToken)
            {
                return err("invalid_scope");
            }
            s.to_owned()
        }
    };
    Ok((client, scope))
}

/// The codes of one device authorization, and a user code that is not its own (for
/// [`Flaw::CompleteUriWrongCode`]).
struct Issued {
    device_code: String,
    user_code: String,
    other_user_code: String,
}

/// Stores a pending authorization for `client` and `scope` under fresh codes.
fn issue_codes(fake: &Fake, client: String, scope: String) -> Issued {
    let mut g = fake.store.lock().unwrap();
    g.next += 1;
    let device_code = if fake.has(Flaw::ShortDeviceCode) {
        g.chars(b"0123456789abcdef", 12)
    } else {
        g.chars(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            43,
        )
    };
    let user_code = new_user_code(fake, &mut g);
    g.last_user_code = user_code.clone();
    g.codes.insert(
        device_code.clone(),
        Code {
            client,
            user_code: user_code.clone(),
            scope,
            issued: Instant::now(),
            state: State::Pending,
            interval: Duration::from_secs(if fake.has(Flaw::WholeNumbersWithPoint) {
                POINT_INTERVAL
            } else if fake.has(Flaw::LongIntervalPaceFirst) {
                LONG_INTERVAL
            } else {
                INTERVAL
            }),
            last_poll: fake.has(Flaw::FirstPollSlowDown).then(Instant::now),
            told_denied: false,
            told_expired: false,
            tokens: Vec::new(),
        },
    );
    let other_user_code = g.chars(ALPHABET, 8);
    Issued {
        device_code,
        user_code,
        other_user_code,
    }
}

/// [`Flaw::DigitCodesNotUpperCased`]'s alphabet: digits and upper-case letters, none
/// of them confusable.
const DIGIT_ALPHABET: &[u8] = b"34679CDFGHJKMNPQRTVWXY";

/// RFC 8628 §6.1: eight characters of the base-20 alphabet, unless a flaw says otherwise.
fn new_user_code(fake: &Fake, g: &mut Store) -> String {
    if fake.has(Flaw::DuplicateUserCodes) && g.next.is_multiple_of(3) {
        g.last_user_code.clone()
    } else if fake.has(Flaw::ShortUserCode) {
        g.chars(ALPHABET, 4)
    } else if fake.has(Flaw::FixedPrefixUserCode) {
        format!("DEVICE-{}", g.chars(b"0123456789", 4))
    } else if fake.has(Flaw::DigitCodesNotUpperCased) {
        // A digit first, so that every code holds one.
        format!("{}{}", g.chars(b"34679", 1), g.chars(DIGIT_ALPHABET, 7))
    } else if fake.has(Flaw::ConfusableAlphabet) {
        let a = g.chars(CONFUSABLE, 4);
        let b = g.chars(CONFUSABLE, 4);
        format!("{a}-{b}")
    } else {
        let a = g.chars(ALPHABET, 4);
        let b = g.chars(ALPHABET, 4);
        format!("{a}-{b}")
    }
}

/// RFC 8628 §3.2: the JSON answer carrying `issued`.
fn device_authorization_response(fake: &Fake, issued: Issued) -> Reply {
    let Issued {
        device_code,
        user_code,
        other_user_code,
    } = issued;
    let base = &fake.base;
    let verification_uri = if fake.has(Flaw::RelativeVerificationUri) {
        "/device".to_owned()
    } else if fake.has(Flaw::UpperCaseHttpsVerificationUri) {
        "HTTPS://AS.EXAMPLE/device".to_owned()
    } else if fake.has(Flaw::UserCodeInVerificationUri) {
        format!("{base}/device/{user_code}")
    } else {
        format!("{base}/device")
    };
    let complete = if fake.has(Flaw::CompleteUriWrongCode) {
        format!("{base}/device?user_code={other_user_code}")
    } else if fake.has(Flaw::CompleteUriOpaqueHandle) {
        format!("{base}/device?h={}", other_user_code.to_lowercase())
    } else if fake.has(Flaw::CompleteUriPercentEncoded) {
        format!("{base}/device?user_code={}", user_code.replace('-', "%2D"))
    } else if fake.has(Flaw::CompleteUriJavascript) {
        format!("javascript:alert('{user_code}')")
    } else if fake.has(Flaw::DeviceCodeInCompleteUri) {
        format!("{base}/device?user_code={user_code}&device_code={device_code}")
    } else {
        format!("{base}/device?user_code={user_code}")
    };
    let number = |n: u64| -> serde_json::Value {
        if fake.has(Flaw::StringNumbers) {
            n.to_string().into()
        } else {
            n.into()
        }
    };
    let mut body = serde_json::Map::new();
    if !fake.has(Flaw::NoDeviceCode) {
        body.insert("device_code".into(), device_code.into());
    }
    if !fake.has(Flaw::NoUserCode) {
        body.insert("user_code".into(), user_code.into());
    }
    body.insert("verification_uri".into(), verification_uri.into());
    body.insert("verification_uri_complete".into(), complete.into());
    if !fake.has(Flaw::ExpiresInMissing) {
        body.insert("expires_in".into(), number(EXPIRES_IN));
    }
    let interval = if fake.has(Flaw::IntervalZero) {
        0
    } else if fake.has(Flaw::LongIntervalPaceFirst) {
        LONG_INTERVAL
    } else {
        INTERVAL
    };
    body.insert("interval".into(), number(interval));
    if fake.has(Flaw::WholeNumbersWithPoint) {
        body.insert("expires_in".into(), (EXPIRES_IN as f64).into());
        body.insert("interval".into(), (POINT_INTERVAL as f64).into());
    }
    let mut text = serde_json::Value::Object(body).to_string();
    if fake.has(Flaw::DuplicateMember) {
        text = text.replacen('{', &format!(r#"{{"interval":{INTERVAL},"#), 1);
    }
    let status = if fake.has(Flaw::DaStatus201) {
        201
    } else {
        200
    };
    if fake.has(Flaw::PaddedAnswers) {
        text.push_str(&" ".repeat(1000 * 1024));
    }
    if fake.has(Flaw::DaBodyNotJson) {
        // Cut after the first member, as a body broken off by a proxy would be.
        text = text[..text.find(',').unwrap_or(text.len())].to_owned();
    }
    let mut r = fake.json(status, text, !fake.has(Flaw::NoStoreMissingOnDa));
    if fake.has(Flaw::DaTextPlain) {
        r.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
    }
    r
}
