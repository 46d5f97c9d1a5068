//! Configuration: the TOML file a team writes (`file.rs`), the embedded demo defaults
//! used when there is none, and their validation into the [`Settings`] the server runs
//! on (`settings.rs`).
//!
//! Command-line flags and environment variables override single fields; that merge
//! happens in the binary (`main.rs`), on a [`FileConfig`], before [`Settings::from_file`].

mod file;
mod settings;

pub use file::*;
pub use settings::*;

/// A configuration that cannot be run, said so a person can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. The I/O error is part of this message, not its
    /// source: a source would be said a second time by `{:#}` (one line, once).
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file, or what the text came from.
        path: String,
        /// What the TOML parser said.
        message: String,
    },
    /// The values cannot be run; the message names the field.
    #[error("{0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::session::{SlowDownPolicy, MAX_EXPIRES_IN_SECS};

    #[test]
    fn sha256_hex_matches_the_fips_180_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../deviceflow.example.toml");
        let s = Settings::from_file(FileConfig::parse(text, "deviceflow.example.toml").unwrap())
            .unwrap();
        assert!(s
            .clients
            .by_client_id("print-service")
            .is_some_and(|c| !c.is_public()));
        assert!(s.admin_token.is_some());
    }

    #[test]
    fn password_hashing_defaults_to_one_worker_per_core_and_a_queue_of_twice_that() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let s = Settings::from_file(FileConfig::parse("", "t.toml").unwrap()).unwrap();
        assert_eq!(
            (s.password_hash_workers, s.password_hash_queue),
            (cores, 2 * cores)
        );
        let text = "[limits]\npassword_hash_workers = 3";
        let s = Settings::from_file(FileConfig::parse(text, "t.toml").unwrap()).unwrap();
        assert_eq!((s.password_hash_workers, s.password_hash_queue), (3, 6));
        let text = "[limits]\npassword_hash_workers = 3\npassword_hash_queue = 0";
        let s = Settings::from_file(FileConfig::parse(text, "t.toml").unwrap()).unwrap();
        assert_eq!((s.password_hash_workers, s.password_hash_queue), (3, 0));
    }

    #[test]
    fn demo_configuration_is_valid() {
        let s = Settings::from_file(FileConfig::demo()).unwrap();
        assert!(s.clients.by_client_id("demo-device").unwrap().is_public());
        assert!(!s
            .clients
            .by_client_id("demo-confidential")
            .unwrap()
            .is_public());
        let demo = s.users.by_username("demo").unwrap();
        let phc = demo.password_hash.as_deref().unwrap();
        assert!(crate::accounts::password::verify(phc, DEMO_USER_PASSWORD));
    }

    /// The demo user's hash is the same at every start: on the demo defaults, a
    /// browser signed in on one instance of a Redis store was sent back to sign in on
    /// the others, and on every instance after a restart (helper-85).
    #[test]
    fn the_demo_users_hash_is_the_same_at_every_start() {
        use crate::accounts::password::verify;
        let hash = |c: FileConfig| c.users[0].password_hash.clone().unwrap();
        let first = hash(FileConfig::demo());
        assert_eq!(first, hash(FileConfig::demo()));
        assert!(verify(&first, DEMO_USER_PASSWORD));
        assert!(!verify(&first, "demo-passwort"));
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
    }

    #[test]
    fn a_full_file_parses() {
        let text = format!(
            r#"
            listen = "127.0.0.1:9000"
            issuer = "https://auth.example.test"
            [device]
            expires_in = 900
            interval = 5
            poll_tolerance_ms = 250
            slow_down = "off"
            [admin]
            token = "0123456789abcdef0123"
            [[clients]]
            client_id = "tv"
            scopes = ["openid", "tv"]
            [[clients]]
            client_id = "backend"
            secret_sha256 = "{}"
            auth_methods = ["client_secret_basic"]
            scopes = ["tv"]
            grant_types = ["refresh_token"]
            [[users]]
            username = "alice"
            "#,
            sha256_hex("s3cret")
        );
        let s = Settings::from_file(FileConfig::parse(&text, "test.toml").unwrap()).unwrap();
        assert_eq!(s.issuer.as_deref(), Some("https://auth.example.test"));
        assert_eq!(s.poll.slow_down, SlowDownPolicy::Off);
        let backend = s.clients.by_client_id("backend").unwrap();
        assert!(!backend.device_grant);
        assert!(backend.refresh_grant);
        assert_eq!(s.scopes.format(backend.allowed_scope), "tv");
    }

    #[test]
    fn invalid_configurations_are_refused_with_the_field_named() {
        let cases = [
            ("[device]\ninterval = 0", "device.interval"),
            (
                "[device]\nexpires_in = 5\ninterval = 5",
                "shorter than device.expires_in",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\n[[clients]]\nclient_id = \"a\"",
                "configured twice",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\nsecret_sha256 = \"zz\"",
                "64 hex digits",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\nscopes = [\"x\"]\ndefault_scopes = [\"y\"]",
                "default_scopes",
            ),
            (
                "[[clients]]\nclient_id = \"a\"\ngrant_types = [\"password\"]",
                "\"password\" is not served",
            ),
            // RFC 8628 §5.4: "Bank \u{202E}VT" reads "Bank TV" on the consent page.
            (
                "[[clients]]\nclient_id = \"a\"\nname = \"Bank \\u202EVT\"",
                "name must be 1 to 100 visible characters",
            ),
            ("issuer = \"auth.example\"", "absolute http(s) URL"),
            ("[admin]\ntoken = \"short\"", "admin.token"),
            ("[quotas]\nclient_share = 0", "quotas.client_share"),
            ("[quotas]\nclient_share = 1.5", "quotas.client_share"),
            ("[quotas]\nper_source_rate = -1", "quotas.per_source_rate"),
            ("[quotas]\nper_client_burst = 0", "quotas.per_client_burst"),
            (
                "[device]\ninterval = 30\n[limits]\nidle_timeout_ms = 30000",
                "limits.idle_timeout_ms",
            ),
            (
                "[limits]\npassword_hash_workers = 5000",
                "limits.password_hash_workers (5000) must be at most 1024",
            ),
            (
                "[limits]\npassword_hash_queue = 100000",
                "limits.password_hash_queue (100000) must be at most 65536",
            ),
            (
                "[[users]]\nusername = \"alice \"",
                "a username has no spaces around it",
            ),
            (
                "[[users]]\nusername = \"a\"\npassword_hash = \"hunter2\"",
                "user \"a\": password_hash is not a PHC string",
            ),
            (
                "[[users]]\nusername = \"a\"\npassword_hash = \"$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo\"",
                "only argon2id, argon2i and argon2d",
            ),
        ];
        for (text, expected) in cases {
            let file = FileConfig::parse(text, "t.toml").unwrap();
            let err = Settings::from_file(file).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn hostile_values_are_refused_with_the_field_named() {
        let empty_secret = sha256_hex("");
        let cases = [
            // A lifetime whose milliseconds overflow: it wrapped, or panicked.
            (
                "[device]\nexpires_in = 9223372036854775807".to_owned(),
                "device.expires_in (9223372036854775807) must be at most",
            ),
            (
                "[device]\nexpires_in = 9223372036854775807\ninterval = 9223372036854775806"
                    .to_owned(),
                "device.expires_in",
            ),
            (
                "[device]\nexpired_retention = 9223372036854775807".to_owned(),
                "device.expired_retention",
            ),
            (
                "[tokens]\naccess_token_ttl = 9223372036854775807".to_owned(),
                "tokens.access_token_ttl",
            ),
            (
                "[tokens]\nrefresh_token_ttl = 9223372036854775807".to_owned(),
                "tokens.refresh_token_ttl",
            ),
            // Tokens no request could ever present.
            (
                "[admin]\ntoken = \"\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\""
                    .to_owned(),
                "admin.token must be printable ASCII",
            ),
            (
                "[admin]\ntoken = \" 0123456789abcdef\"".to_owned(),
                "admin.token must be printable ASCII",
            ),
            (
                "[registration]\ninitial_access_token = \"0123456789abcdef\\t\"".to_owned(),
                "registration.initial_access_token must be printable ASCII",
            ),
            // An issuer without a host, or with a space.
            ("issuer = \"http://\"".to_owned(), "with a host"),
            ("issuer = \"https://:8080/x\"".to_owned(), "with a host"),
            (
                "issuer = \"http://auth example/\"".to_owned(),
                "with a host",
            ),
            // A confidential client whose secret is the empty string.
            (
                format!("[[clients]]\nclient_id = \"a\"\nsecret_sha256 = \"{empty_secret}\""),
                "empty secret",
            ),
            // RFC 6749 Appendix A.1: client-id = *VSCHAR.
            (
                "[[clients]]\nclient_id = \"a\\nb\"".to_owned(),
                "printable ASCII",
            ),
            (
                "[[clients]]\nclient_id = \"t\u{e9}l\u{e9}\"".to_owned(),
                "printable ASCII",
            ),
        ];
        let cases = cases.into_iter().chain([
            (
                format!("[device]\nexpires_in = {}", MAX_EXPIRES_IN_SECS + 1),
                "device.expires_in (2147484) must be at most 2147483 seconds (24 days)",
            ),
            // RFC 8414 §3.3: compared as a string, so not trimmed behind the writer's back.
            (
                "issuer = \"https://as.example/auth/\"".to_owned(),
                "issuer \"https://as.example/auth/\" must not end with \"/\": write \"https://as.example/auth\"",
            ),
        ]);
        for (text, expected) in cases {
            let file = FileConfig::parse(&text, "t.toml").unwrap();
            let err = Settings::from_file(file).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?} gave {err:?}");
        }
        // The largest lifetimes allowed still run.
        let text = format!(
            "[device]\nexpires_in = {MAX_EXPIRES_IN_SECS}\nexpired_retention = {MAX_LIFETIME_SECS}\n\
             [tokens]\naccess_token_ttl = {MAX_LIFETIME_SECS}\nrefresh_token_ttl = {MAX_LIFETIME_SECS}\n\
             [admin]\ntoken = \"abcDEF0123456789-._~+/==\"\n\
             [registration]\ninitial_access_token = \"correct!horse#battery$staple 42\""
        );
        Settings::from_file(FileConfig::parse(&text, "t.toml").unwrap()).unwrap();
    }

    #[test]
    fn max_sources_of_zero_is_refused_unless_the_quota_is_off() {
        let parse = |t: &str| Settings::from_file(FileConfig::parse(t, "t.toml").unwrap());
        let e = parse("[quotas]\nmax_sources = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("quotas.max_sources must be at least 1"), "{e}");
        assert!(e.contains("per_source_rate = 0"), "{e}");
        parse("[quotas]\nmax_sources = 0\nper_source_rate = 0\n").unwrap();
    }

    #[test]
    fn a_quota_rate_below_one_a_day_is_refused() {
        // 1e-300 a second told a refused device to retry in 18,446,744,073,709,552 s,
        // and its bucket's "full again" time overflowed (a panic in a debug build).
        let parse = |t: &str| Settings::from_file(FileConfig::parse(t, "t.toml").unwrap());
        for (name, value) in [("per_source", "1e-300"), ("per_client", "0.00001")] {
            let e = parse(&format!("[quotas]\n{name}_rate = {value}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("quotas.{name}_rate ({}) must be 0 (off) or at least one request a day (0.0000116 a second)", value.parse::<f64>().unwrap())),
                "{e}"
            );
        }
        parse("[quotas]\nper_source_rate = 0.0000116\nper_client_rate = 0\n").unwrap();
    }

    #[test]
    fn a_users_name_holds_only_characters_that_show_as_themselves() {
        // TOML basic strings, with TOML's escapes.
        for name in [
            r#""Alice\u202Enimda""#,
            r#""Alice\nAdmin""#,
            r#""\u200B""#,
            r#""""#,
        ] {
            let text = format!("[[users]]\nusername = \"alice\"\nname = {name}\n");
            let e = Settings::from_file(FileConfig::parse(&text, "t.toml").unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains("user \"alice\": name must be"), "{name:?}: {e}");
            assert!(!e.contains('\n'), "{name:?}: {e}");
        }
        let text = "[[users]]\nusername = \"alice\"\nname = \" Alice Example \"\n";
        let s = Settings::from_file(FileConfig::parse(text, "t.toml").unwrap()).unwrap();
        assert_eq!(
            s.users.by_username("alice").map(|u| u.name.as_str()),
            Some("Alice Example")
        );
    }

    #[test]
    fn parse_errors_are_one_line_naming_the_line_and_column() {
        for (text, expected) in [
            (
                "[device]\nexpire_in = 5",
                "my.toml: line 2, column 1: unknown field `expire_in`",
            ),
            (
                "[device]\ninterval = \"5\"",
                "my.toml: line 2, column 12, device.interval: invalid type: string \"5\", expected u64",
            ),
            (
                "[device]\ninterval = 5\ninterval = 6",
                "my.toml: line 3, column 1: duplicate key `interval`",
            ),
            ("[device\n", "my.toml: line 1, column 8:"),
        ] {
            let msg = FileConfig::parse(text, "my.toml").unwrap_err().to_string();
            assert!(msg.starts_with(expected), "{text:?} gave {msg:?}");
            assert!(!msg.contains('\n'), "{text:?} gave {msg:?}");
        }
    }

    #[test]
    fn an_unreadable_file_is_said_once() {
        let dir = std::env::temp_dir();
        let msg = format!(
            "{:#}",
            anyhow::Error::from(FileConfig::load(&dir).unwrap_err())
        );
        assert_eq!(msg.matches("(os error").count(), 1, "{msg}");
        assert!(
            msg.starts_with(&format!("cannot read {}: ", dir.display())),
            "{msg}"
        );
    }

    #[test]
    fn unknown_fields_are_parse_errors_that_name_the_file() {
        let err = FileConfig::parse("[device]\nexpire_in = 5", "my.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("my.toml:"), "{msg}");
        assert!(msg.contains("expire_in"), "{msg}");
    }
}
