//! The rules the fake can break: one flag each, with the checklist row it breaks.

/// One rule broken per flaw (the checklist row it breaks in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    // A.1 device authorization request
    DaStatus201,                   // [DA-01] success is 201, not 200
    CharsetRefusedAtDa,            // [DA-02] Content-Type compared as a string
    EmptyPost500,                  // [DA-02] an empty POST without Content-Type is a 500 page
    ClientIdOptional,              // [DA-03] no client_id still gets codes
    UnknownClientInvalidRequest,   // [DA-04] unknown client is invalid_request
    ConfidentialWithoutSecret,     // [DA-05] a confidential client_id alone is accepted
    BasicUnsupported,              // [DA-06] the Authorization header is ignored
    NoWwwAuthenticate,             // [DA-07] failed Basic is 400 without WWW-Authenticate
    EmptyScopeInvalid,             // [DA-08] scope= is invalid_scope
    UnknownParamRejectedAtDa,      // [DA-09]
    RepeatsAcceptedAtDa,           // [DA-10]
    TwoAuthMethodsAccepted,        // [DA-11]
    UnauthorizedClientAllowedAtDa, // [DA-13]
    GetServedAtDa,                 // [DA-15] GET with the query hands out codes
    // A.2 device authorization response
    DaTextPlain,               // [DR-01]
    NoDeviceCode,              // [DR-02]
    NoUserCode,                // [DR-03]
    RelativeVerificationUri,   // [DR-04]
    ExpiresInMissing,          // [DR-05]
    IntervalZero,              // [DR-06]
    CompleteUriWrongCode,      // [DR-07]
    DuplicateUserCodes,        // [DR-08]
    DuplicateMember,           // [DR-09]
    NoStoreMissingOnDa,        // [DR-10]
    StringNumbers,             // [DR-11]
    DaErrorsNotJson,           // [DR-12]
    UserCodeInVerificationUri, // [DR-13]
    DeviceCodeInCompleteUri,   // [DR-14]
    // A.3 verification
    VerificationPage404,    // [UI-01]
    CookieFirst,            // no flaw: a cookie set on a redirect to the page itself
    DeviceCodeOnPage,       // [UI-03]
    CompleteUriApproves,    // [UI-05]
    NoNormalization,        // [UI-07] typed codes must match exactly
    ConfusableAlphabet,     // [UI-08]
    SecondDecisionAccepted, // [UI-10]
    UnknownCodeAccepted,    // [UI-10] a decision on a code never issued is taken (HTTP 200)
    Framable,               // [UI-13]
    FramableByAnyone,       // [UI-13] CSP frame-ancestors * (which voids X-Frame-Options)
    // A.4 token request
    PendingIs200,                     // [TR-01, TS-01]
    HangingTokenEndpoint,             // [TR-01] never answers
    HtmlServerError,                  // [TR-02] a missing device_code is a 500 page
    EmptyDeviceCodeInvalidGrant,      // [TR-03]
    UnknownCode404,                   // [TR-04]
    PollWithoutClientIdAccepted,      // [TR-05]
    ConfidentialPollWithoutSecret,    // [TR-06]
    CrossClient,                      // [TR-07]
    RepeatsAcceptedAtToken,           // [TR-08]
    UnknownParamRejectedAtToken,      // [TR-09]
    WrongGrantInvalidRequest,         // [TR-10]
    MissingGrantInvalidGrant,         // [TS-02 passes] a well-formed error, an odd code
    UnauthorizedClientAllowedAtToken, // [TR-11]
    GetServedAtToken,                 // [TR-12]
    CharsetRefusedAtToken,            // [TR-13]
    // A.5 token responses
    TokenErrorsNotJson,    // [TS-02]
    TokenTextPlain,        // [TS-03]
    TokenMissingTokenType, // [TS-03]
    TokenStatus201,        // [TS-03] the token answer is 201, not 200
    AccessTokenEmpty,      // [TS-03] `"access_token": ""`
    NoStoreMissingOnToken, // [TS-04]
    ScopeWidened,          // [TS-05] the token grants more than requested
    ScopeWidenedUnnamed,   // [TS-05] more granted than requested, no scope member to say so
    UndefinedScopeGranted, // [TS-05] an undefined scope accepted, scope not named
    TokenTypeEmpty,        // [TS-06, TS-03] `"token_type": ""`
    DenyIsPending,         // [TS-07] a denial never reaches the device
    NoSingleUse,           // [TS-08]
    ReplayKeepsToken,      // [TS-09]
    RacyRedemption,        // [TS-10] check-then-set across an await
    DenialThenPending,     // [TS-11]
    DenialThenSlowDown,    // [TS-11] slow_down is pending too (RFC 8628 §3.5)
    DenialThenToken,       // [TS-07, TS-11] a token on the poll after the denial
    // A.6 polling
    NeverSlowDown,        // [PL-01 declared]
    SlowDownCompliant,    // [PL-02] slow_down unless a full second beyond the interval
    OverPenalty,          // [PL-03] +10 s per slow_down
    Livelock,             // [PL-04] no tolerance, rejected polls move the window
    FirstPollSlowDown,    // [PL-05]
    SlowDownBeforeStatus, // [PL-06] pace checked before approval (Keycloak)
    FixedWindow,          // [PL-07 declared] no +5 s tracked
    ResetAfterCompliant,  // [PL-07 declared] the +5 s dropped after one compliant poll (Dex)
    SlowDownAs429,        // [PL-09]
    // A.7 expiry
    NoExpiry,               // [EX-01]
    ApprovedOutlivesExpiry, // [EX-02]
    LateApprovalAccepted,   // [EX-03]
    ExpiredThenPending,     // [EX-04]
    // A.8 metadata
    NoDaInMetadata,       // [MD-01]
    NoGrantInMetadata,    // [MD-02]
    IssuerMismatch,       // [MD-03]
    NoTokenInMetadata,    // [MD-04]
    AdvertisesWrongToken, // [MD-05]
    NoMetadata,           // [MD-07]
    MetadataOnlyOpenid,   // [MD-07] only at /.well-known/openid-configuration
    // A.9 security
    ShortUserCode,        // [SC-01]
    FixedPrefixUserCode,  // [SC-01] `DEVICE-` and 4 digits: about 13 bits, not 10 positions' worth
    ShortDeviceCode,      // [SC-02]
    PublicClientsRefused, // [SC-05]
    // A.10 refresh tokens
    NoRotation,         // [BCP-01]
    ReuseNotDetected,   // [BCP-01]
    FamilyNotRevoked,   // [BCP-01, SHOULD]
    RefreshBroken,      // [RT-01]
    RefreshCrossClient, // [RT-02]
    RefreshWidens,      // [RT-03]
    // Not a device-flow server at all (for the root-cause tests).
    NotOAuth,
    // Not flaws: correct variations the RFCs allow, which the suite must not blame.
    /// RFC 6749 §3.3 ("MAY fully or partially ignore the scope requested"): undefined
    /// scopes are accepted at the device authorization and dropped (the default when
    /// none is left); the token names what was granted.
    UndefinedScopeIgnored,
    /// RFC 9110 §5.3, CSP 3 §3.1: the pages' policy in two `Content-Security-Policy`
    /// field lines, an application's and a proxy's `frame-ancestors 'none'`, and no
    /// X-Frame-Options: both policies are enforced, and framing is refused (UI-13).
    CspInTwoFields,
    /// RFC 8259 §6 (one number type): `interval` and `expires_in` written by an
    /// encoder that puts a point in every number (`6.0`, `20.0`), and an interval of
    /// 6 s, longer than the 5 s a client uses when it is absent, enforced.
    WholeNumbersWithPoint,
    /// Every token answer takes 1.5 s, longer than the 1 s interval (a distant or
    /// loaded server): polls sent one after the other are never too fast.
    SlowTokenAnswers,
    /// RFC 8628 §6.1: user codes of digits and upper-case letters (as
    /// django-oauth-toolkit's `0-9A-V`, without its confusables), with no separator;
    /// what is typed is stripped of every character outside that set and not
    /// upper-cased, which §6.1 asks only of codes in the A-Z range (UI-07).
    DigitCodesNotUpperCased,
    /// RFC 6749 §3.3, §5.2 (`invalid_scope`): an undefined scope is taken at the device
    /// authorization and the approval, and the token request then refused with
    /// `invalid_scope`, as django-oauth-toolkit does: nothing is granted (TS-05).
    UndefinedScopeRefusedAtToken,
    // Found in review (their tests are at the end of broken_servers.rs).
    /// `verification_uri_complete` a `javascript:` URL, which the suite cannot visit:
    /// UI-05 must not pass on a visit that never happened, nor UI-03 judge a page that
    /// never came.
    CompleteUriJavascript,
    ReplayErrorIs200, // [TS-02] a replay is refused as HTTP 200 {"error":"invalid_grant"}
    /// [MD-01] `device_authorization_endpoint` advertised as a relative reference
    /// (`/da`): RFC 8414 §2 asks for a URL, and a client using discovery cannot use it.
    RelativeDaInMetadata,
    /// [MD-04] `token_endpoint` advertised as a relative reference (`/token`).
    RelativeTokenInMetadata,
    /// [DA-04, DR-12] `invalid_client` answered with HTTP 401 but no `WWW-Authenticate`
    /// to a client that did not use the Authorization header (RFC 9110 §15.5.2: a 401
    /// MUST carry a challenge; RFC 6749 §5.2 allows the 401 only "to indicate which
    /// HTTP authentication schemes are supported").
    ChallengelessUnauthorized,
    /// [DR-01] the device authorization is HTTP 200 `application/json` whose body is
    /// not JSON (cut off after its first member).
    DaBodyNotJson,
    /// [MD-07, none of the endpoints] the metadata never answers (the suite's request
    /// times out); `/.well-known/openid-configuration` is an HTML 404.
    MetadataHangs,
    /// Not testable as it stands: the device authorization endpoint answers every
    /// request with `308 Permanent Redirect` to `/da/` (a trailing-slash rule, an
    /// http-to-https front), which a client must not follow blindly with its POST.
    DaRedirects,
    /// Not a flaw: `Cache-Control`, `Pragma` and `WWW-Authenticate` sent as lists in
    /// two field lines (RFC 9110 §5.3: one list, in order; RFC 9111 §5.2, RFC 9110
    /// §11.6.1: a challenge list may start with another scheme): `Cache-Control:
    /// private` then `no-store`; a `Bearer` challenge before the `Basic` one, in one
    /// line at the device authorization endpoint, in two at the token endpoint.
    ListFieldsInTwoLines,
    /// Not a flaw: each device authorization answer padded with almost 1 MiB of JSON
    /// whitespace (RFC 8259 §2 allows it), within what the suite reads of a body.
    PaddedAnswers,
    /// [DR-12, TS-02] every OAuth error (a pending poll, a denial, a refused client)
    /// sent with HTTP 200, its body a well-formed error object: no token is ever
    /// issued by one, so no case may read it as a token (UI-05, UI-07, TS-11, PL-06,
    /// TR-07 (b)), and DR-12 must judge it as an error with the wrong status.
    ErrorsAs200,
    /// Not a flaw (RFC 8628 §3.2: the user_code "or other information with the same
    /// function"): `verification_uri_complete` carries an opaque handle, `?h=…`, not
    /// the code (DR-07 cannot check it, and must not fail it).
    CompleteUriOpaqueHandle,
    /// Not a flaw: `verification_uri_complete` carries the code percent-encoded
    /// (RFC 3986 §2.1), its `-` written `%2D` (DR-07 reads the query decoded).
    CompleteUriPercentEncoded,
    /// Not a flaw (RFC 3986 §3.1: schemes are case-insensitive): `verification_uri` is
    /// `HTTPS://AS.EXAMPLE/device`, an https URI written in upper case (DR-04).
    UpperCaseHttpsVerificationUri,
    /// Not a flaw (RFC 6749 §3.3: a server without a default scope refuses a request
    /// without one with invalid_scope): an omitted scope, and so `scope=` (RFC 8628
    /// §3.1), is invalid_scope (DA-08).
    NoDefaultScope,
    /// Not a flaw (RFC 8628 §3.5 leaves the order to the server): an interval of
    /// [`super::LONG_INTERVAL`] s, longer than the 13 s between a poll 10 s before
    /// expiry and one 3 s after, and the pace judged before expiry: a poll sooner than
    /// the interval gets slow_down even past expires_in (EX-01).
    LongIntervalPaceFirst,
    /// [UI-13 warn] the verification pages redirect (302) to a sign-in page, as
    /// django-oauth-toolkit's do, which sends `X-Frame-Options: DENY` but no CSP
    /// `frame-ancestors` (RFC 9700 §4.16: SHOULD); the pages behind it go unseen.
    SignInPageWithoutCsp,
    /// Not a flaw (RFC 6749 §8.1: extension token types; §5.1: case-insensitive):
    /// `token_type` is `mac`, a type no IANA registry entry names (TS-06 passes, noting
    /// that a device that does not understand it cannot use the token, §7.1).
    TokenTypeMac,
    /// Not a flaw (RFC 6585 §4): a rate limit in front of the device authorization
    /// endpoint refuses the first request with `scope=` with `429 Too Many Requests`
    /// and `Retry-After: 1`; the same request sent again is answered as an omitted
    /// scope is (DA-08 must retry it, never fail it).
    EmptyScopeRateLimitedOnce,
    /// Not a flaw to judge (RFC 9110 §15.6.4): every request with `scope=` gets `503
    /// Service Unavailable` and `Retry-After: 1`, an HTML page from the front: how
    /// `scope=` is treated cannot be seen, and DA-08 is inconclusive, never failed.
    EmptyScopeUnavailable,
    /// Not a flaw (RFC 8628 §3.5 leaves the order to the server): the pace judged first,
    /// before the client binding and the state, as Keycloak does: a poll of a code
    /// sooner than its interval after the last poll taken, whoever sends it, gets
    /// slow_down, and every poll taken (another client's too) starts the interval again.
    PaceBeforeClient,
    /// Not a flaw (RFC 8628 §5.1 recommends rate limiting; RFC 6585 §4): a rate limit
    /// in front of the server refuses every other request to the device authorization
    /// endpoint (the second, the fourth, ...) and to the token endpoint (the first, the
    /// third, ...) with `429 Too Many Requests` and `Retry-After: 1`, before the server
    /// sees it. The same
    /// request sent again is answered by the server: no case may fail on the 429.
    RateLimitedEveryOther,
    /// Not a flaw to judge (RFC 6585 §4): every token request is refused by the front
    /// with `429` and `Retry-After: 1`: what the token endpoint does cannot be seen,
    /// and the cases that need it are inconclusive, never failed.
    TokenRateLimited,
    /// Not a flaw to judge: introspection answers every token `{"active":false}` (an
    /// introspection client allowed to see none of them, say): TS-09 cannot see a
    /// revocation by the replay, and must not take "inactive after it" for one.
    IntrospectionAlwaysInactive,
    /// Not a flaw to judge: a poll of a redeemed device code is never answered (the
    /// suite's request times out): what a replay does cannot be seen (TS-08, TS-09).
    ReplayHangs,
    /// [TS-03, and the cases that need a token] a token response that is HTTP 200
    /// `application/json` whose body is not JSON (cut after its first member).
    TokenBodyNotJson,
}
