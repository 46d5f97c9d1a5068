//! A primary that Redis Sentinels watch (`redis+sentinel://`): an instance asks the
//! Sentinels where the primary is at start, and again after a failover, and goes on
//! without a restart, losing nothing that was replicated.

use std::time::Instant;

use deviceflow_testkit::{RedisSentinels, Reply};

use super::*;

/// `ask` again while it is answered 503 (the store away during a failover), for up to
/// 20 s; the first other answer.
async fn once_answered<F, Fut>(fleet: &Instances, what: &str, mut ask: F) -> Answer
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ask().await;
        if answer.status != 503 {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still 503 20 s after the failover\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits up to `within` for `line` to have been logged `times` times.
async fn logged(fleet: &Instances, line: &str, times: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while fleet.logs().matches(line).count() < times {
        assert!(
            Instant::now() < deadline,
            "not logged {times} times within {within:?}: {line}\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two failovers under a running instance.
///
/// The first is Sentinel's own (`SENTINEL FAILOVER`): the old primary takes writes for
/// seconds more, until a Sentinel makes it a replica, and drops them at its first
/// sync. The instance must move when the Sentinels name the new primary, not when the
/// old one refuses a write: what it wrote in between was lost, answered 200.
///
/// The second follows a primary that stops while the first Sentinel listed is frozen
/// (it takes connections and answers nothing): the other two elect a new primary, and
/// the instance must not wait on the frozen one to follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_follows_the_primary_the_sentinels_name_across_two_failovers() {
    let mut set = RedisSentinels::start(1, 3).unwrap();
    let (first, second) = (set.nodes()[0].port(), set.nodes()[1].port());
    let fleet = Instances::start(1, &config(&set.url()));
    let a = fleet.at(0);
    let before = a.authorize("tv").await;
    assert_still_pending(&a.poll("tv", &before.device_code).await);
    caught_up(&set.nodes()[1], &set.nodes()[0]);

    assert_eq!(
        set.sentinels()[0]
            .command(&["SENTINEL", "FAILOVER", RedisSentinels::SERVICE])
            .unwrap(),
        Reply::Status("OK".into())
    );
    assert_eq!(set.wait_until_named_other_than(first).unwrap(), second);
    let moved = "the Sentinels name another primary";
    logged(&fleet, moved, 1, Duration::from_secs(5)).await;
    // Written after the move, while the old primary may still take writes.
    let during = a.authorize("tv").await;
    let decided = a.decide(&during.user_code, "approve", "alice").await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    // The old primary made a replica, and synced from the new one.
    assert_eq!(set.wait_for_a_primary_other_than(first).unwrap(), second);
    caught_up(&set.nodes()[0], &set.nodes()[1]);
    tokens(&a.poll("tv", &during.device_code).await);
    assert_still_pending(&a.poll("tv", &before.device_code).await);

    set.pause_sentinel(0).unwrap();
    set.nodes_mut()[1].stop().unwrap();
    assert_eq!(set.wait_until_named_other_than(second).unwrap(), first);
    logged(&fleet, moved, 2, Duration::from_secs(10)).await;
    let decided = once_answered(&fleet, "the approval", || {
        a.decide(&before.user_code, "approve", "alice")
    })
    .await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);
    tokens(&once_answered(&fleet, "a poll", || a.poll("tv", &before.device_code)).await);
    let issued = once_answered(&fleet, "a device authorization", || {
        a.post(DA, "client_id=tv")
    })
    .await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    set.resume_sentinel(0).unwrap();

    let logs = fleet.logs();
    assert_eq!(logs.matches(moved).count(), 2, "{logs}");
    assert!(
        logs.contains(&format!("primary=127.0.0.1:{second} was=127.0.0.1:{first}"))
            && logs.contains(&format!("primary=127.0.0.1:{first} was=127.0.0.1:{second}")),
        "{logs}"
    );
}

/// What `check-config` says of a Sentinel URL: the primary found (with the URL's
/// password, which the Sentinels do not ask for, or do), and in one line each, a wrong
/// password, a service no Sentinel watches, no Sentinel answering, Sentinels asking a
/// password the URL lacks, a Sentinel named as a Redis, and a URL without its service.
#[test]
fn check_config_finds_the_primary_through_the_sentinels_or_says_why_not() {
    let set = RedisSentinels::start_with(0, 1, Some("s3ntinel-pw"), false).unwrap();
    assert!(set
        .url()
        .starts_with("redis+sentinel://:s3ntinel-pw@127.0.0.1:"));
    let (code, out, err) = check_config(&set.url());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("store         redis+sentinel://***@127.0.0.1:"),
        "{out}"
    );
    let primary = set.nodes()[0].port();
    assert!(
        out.contains(&format!(
            "store         reachable: the Sentinels name 127.0.0.1:{primary} as the primary"
        )),
        "{out}"
    );
    assert!(!format!("{out}{err}").contains("s3ntinel-pw"), "{out}{err}");

    let wrong = set.url().replace("s3ntinel-pw", "wrong-pw");
    let (code, out, err) = check_config(&wrong);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("wrong-pw"), "{err}");
    assert!(err.contains("Password authentication failed"), "{err}");

    let unknown = set.url().replace("/deviceflow", "/typo");
    let (code, out, err) = check_config(&unknown);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("no Sentinel knows a primary named \"typo\" (`SENTINEL MASTERS` on a Sentinel lists what it watches)"),
        "{err}"
    );

    // No Sentinel answers: each one is named, with what its connection said.
    let nobody = deviceflow_testkit::free_port().unwrap();
    let (code, out, err) = check_config(&format!("redis+sentinel://127.0.0.1:{nobody}/deviceflow"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "cannot reach Redis: no Sentinel answered: 127.0.0.1:{nobody} ("
        )),
        "{err}"
    );

    let port = set.sentinels()[0].port();
    let (code, out, err) = check_config(&format!("redis://127.0.0.1:{port}"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("this is a Redis Sentinel (watching deviceflow), not a Redis: name it as redis+sentinel://HOST:PORT/deviceflow"),
        "{err}"
    );

    // Sentinels that ask for Redis's password too (as Bitnami's chart sets them up):
    // it is sent to them once they ask. Without it in the URL, their refusal is said.
    let guarded = RedisSentinels::start_with(0, 1, Some("shared-pw"), true).unwrap();
    let (code, out, err) = check_config(&guarded.url());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("store         reachable: the Sentinels name"),
        "{out}"
    );
    let bare = guarded.url().replace(":shared-pw@", "");
    let (code, out, err) = check_config(&bare);
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("no Sentinel answered")
            && err.contains("NOAUTH")
            && err.contains("(a Sentinel asks for a password: write it in the URL"),
        "{err}"
    );

    // The URL's form is the configuration's, read before any connection.
    let (code, out, err) = check_config(&format!("redis+sentinel://127.0.0.1:{port}"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        err.trim_end(),
        format!("deviceflow-server: invalid configuration: store \"redis+sentinel://127.0.0.1:{port}\": name the service the Sentinels watch: redis+sentinel://host:port,host:port/SERVICE[/DB]")
    );
}
