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
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
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
    use crate::protocol::session::SlowDownPolicy;

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
        assert!(crate::verification::password::verify(
            phc,
            DEMO_USER_PASSWORD
        ));
    }

    #[test]
    fn a_full_file_parses() {
        let text = format!(
            r#"
            listen = "127.0.0.1:9000"
            issuer = "https://auth.example.test/"
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
    fn unknown_fields_are_parse_errors_that_name_the_file() {
        let err = FileConfig::parse("[device]\nexpire_in = 5", "my.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("my.toml:"), "{msg}");
        assert!(msg.contains("expire_in"), "{msg}");
    }
}
