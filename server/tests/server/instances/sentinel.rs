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

/// Two failovers under a running instance. The first is Sentinel's own (`SENTINEL
/// FAILOVER`): the old primary lives on as a replica and refuses writes (`READONLY`).
/// The second follows a primary that stops: its address refuses connections, and
/// only the Sentinels know where the data went. Failed without asking the Sentinels
/// again on a lost connection: every request answered 503 after the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_follows_the_primary_the_sentinels_name_across_two_failovers() {
    let mut set = RedisSentinels::start(1, 3).unwrap();
    let (first, second) = (set.nodes()[0].port(), set.nodes()[1].port());
    let fleet = Instances::start(1, &config(&set.url()));
    let a = fleet.at(0);
    let da = a.authorize("tv").await;
    assert_still_pending(&a.poll("tv", &da.device_code).await);
    caught_up(&set.nodes()[1], &set.nodes()[0]);

    assert_eq!(
        set.sentinels()[0]
            .command(&["SENTINEL", "FAILOVER", RedisSentinels::SERVICE])
            .unwrap(),
        Reply::Status("OK".into())
    );
    assert_eq!(set.wait_for_a_primary_other_than(first).unwrap(), second);
    let polled = once_answered(&fleet, "a poll", || a.poll("tv", &da.device_code)).await;
    assert_still_pending(&polled);
    let decided = once_answered(&fleet, "the approval", || {
        a.decide(&da.user_code, "approve", "alice")
    })
    .await;
    assert_eq!(decided.status, 200, "{:?}", decided.body);

    caught_up(&set.nodes()[0], &set.nodes()[1]);
    set.nodes_mut()[1].stop().unwrap();
    assert_eq!(set.wait_for_a_primary_other_than(second).unwrap(), first);
    let polled = once_answered(&fleet, "a poll", || a.poll("tv", &da.device_code)).await;
    tokens(&polled);
    let issued = once_answered(&fleet, "a device authorization", || {
        a.post(DA, "client_id=tv")
    })
    .await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);

    let logs = fleet.logs();
    assert_eq!(
        logs.matches("the Sentinels name another primary").count(),
        2,
        "{logs}"
    );
    assert!(
        logs.contains(&format!("primary=127.0.0.1:{second}"))
            && logs.contains(&format!("primary=127.0.0.1:{first}")),
        "{logs}"
    );
}

/// What `check-config` says of a Sentinel URL: the primary found (with the URL's
/// password, which the Sentinels do not ask for), and in one line each, a wrong
/// password, a service no Sentinel watches, a Sentinel named as a Redis, and a URL
/// without its service.
#[test]
fn check_config_finds_the_primary_through_the_sentinels_or_says_why_not() {
    let set = RedisSentinels::start_with(0, 1, Some("s3ntinel-pw")).unwrap();
    assert!(set
        .url()
        .starts_with("redis+sentinel://:s3ntinel-pw@127.0.0.1:"));
    let (code, out, err) = check_config(&set.url());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("store         redis+sentinel://***@127.0.0.1:"),
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
        err.contains("no Sentinel names a primary by that name")
            && err.contains("SENTINEL MASTERS"),
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

    // The URL's form is the configuration's, read before any connection.
    let (code, out, err) = check_config(&format!("redis+sentinel://127.0.0.1:{port}"));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(
        err.trim_end(),
        format!("deviceflow-server: invalid configuration: store \"redis+sentinel://127.0.0.1:{port}\": name the service the Sentinels watch: redis+sentinel://host:port,host:port/SERVICE[/DB]")
    );
}
