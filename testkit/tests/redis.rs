//! The harness against a real redis-server: it starts, answers, stops, comes back on
//! the same port with or without its data, dies with its owner, and three of it make a
//! cluster with every slot served.

use std::net::{Ipv4Addr, TcpStream};

use deviceflow_testkit::{RedisCluster, RedisOptions, RedisSentinels, RedisServer, Reply};

fn get(redis: &RedisServer, key: &str) -> Reply {
    redis.command(&["GET", key]).unwrap()
}

fn refuses(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would still have one, so this
    // also proves the harness waited for it.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_redis_starts_answers_stops_and_restarts_empty_on_its_port() {
    let mut redis = RedisServer::start().unwrap();
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
    let pid = redis.pid().unwrap();
    assert!(redis
        .info("server")
        .unwrap()
        .contains(&format!("process_id:{pid}")));
    assert!(redis.info("persistence").unwrap().contains("aof_enabled:0"));
    assert_eq!(
        redis.command(&["SET", "k", "v"]).unwrap(),
        Reply::Status("OK".into())
    );
    assert_eq!(get(&redis, "k"), Reply::Bulk(Some(b"v".to_vec())));

    redis.stop().unwrap();
    assert_eq!(redis.pid(), None);
    assert!(refuses(port), "port {port} still accepts after stop");
    assert!(!alive(pid));
    assert!(redis.info("server").is_err());

    redis.restart().unwrap();
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), Some(pid));
    assert_eq!(get(&redis, "k"), Reply::Bulk(None), "no persistence: empty");
}

#[test]
fn with_persistence_a_restart_keeps_the_data() {
    let mut redis = RedisServer::start_with(RedisOptions {
        persistence: true,
        ..RedisOptions::default()
    })
    .unwrap();
    assert!(redis.info("persistence").unwrap().contains("aof_enabled:1"));
    redis.command(&["SET", "k", "kept"]).unwrap();
    redis.command(&["PEXPIRE", "k", "600000"]).unwrap();
    redis.restart().unwrap();
    assert_eq!(get(&redis, "k"), Reply::Bulk(Some(b"kept".to_vec())));
    let ttl = redis.command(&["PTTL", "k"]).unwrap();
    assert!(
        matches!(ttl, Reply::Integer(ms) if ms > 0 && ms <= 600_000),
        "{ttl:?}"
    );
}

#[test]
fn a_dropped_redis_is_killed_and_its_directory_removed() {
    let redis = RedisServer::start().unwrap();
    let (port, pid, dir) = (redis.port(), redis.pid().unwrap(), redis.dir().to_owned());
    assert!(dir.join("redis.log").is_file());
    drop(redis);
    assert!(refuses(port));
    assert!(!alive(pid));
    assert!(!dir.exists());
}

#[test]
fn two_redis_servers_get_two_ports() {
    let a = RedisServer::start().unwrap();
    let b = RedisServer::start().unwrap();
    assert_ne!(a.port(), b.port());
    a.command(&["SET", "only-a", "1"]).unwrap();
    assert_eq!(get(&b, "only-a"), Reply::Bulk(None));
}

#[test]
fn three_masters_make_a_cluster_that_serves_every_slot() {
    let cluster = RedisCluster::start(3).unwrap();
    let ports: Vec<u16> = cluster.nodes().iter().map(RedisServer::port).collect();
    assert_eq!(
        cluster.url(),
        format!(
            "redis+cluster://127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
            ports[0], ports[1], ports[2]
        )
    );
    for node in cluster.nodes() {
        let info = match node.command(&["CLUSTER", "INFO"]).unwrap() {
            Reply::Bulk(Some(b)) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
    }
    // Keys are spread: of a few keys, some belong to a node other than the first,
    // which answers MOVED for them.
    let moved = (0..20)
        .filter(|i| {
            let key = format!("key-{i}");
            matches!(cluster.nodes()[0].command(&["GET", &key]).unwrap(),
                Reply::Error(e) if e.starts_with("MOVED "))
        })
        .count();
    assert!(moved > 0 && moved < 20, "{moved} of 20 keys moved");

    let pids: Vec<u32> = cluster.nodes().iter().map(|n| n.pid().unwrap()).collect();
    drop(cluster);
    for (port, pid) in ports.into_iter().zip(pids) {
        assert!(refuses(port));
        assert!(!alive(pid));
    }
}

#[test]
fn sentinels_replace_a_primary_that_stops_with_its_replica() {
    let mut set = RedisSentinels::start(1, 3).unwrap();
    let (primary, replica) = (set.nodes()[0].port(), set.nodes()[1].port());
    assert_eq!(set.primary_port().unwrap(), primary);
    let sentinels: Vec<String> = set
        .sentinels()
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    assert_eq!(
        set.url(),
        format!("redis+sentinel://{}/deviceflow", sentinels.join(","))
    );
    assert_eq!(
        set.nodes()[0].command(&["SET", "k", "v"]).unwrap(),
        Reply::Status("OK".into())
    );
    set.nodes_mut()[0].stop().unwrap();
    assert_eq!(set.wait_for_a_primary_other_than(primary).unwrap(), replica);
    assert_eq!(set.primary_port().unwrap(), replica);
    assert_eq!(
        set.nodes()[1].command(&["SET", "k2", "v2"]).unwrap(),
        Reply::Status("OK".into()),
        "the replica took writes once promoted"
    );
}

#[test]
fn a_cluster_needs_three_masters() {
    let err = RedisCluster::start(2).err().unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// Run as its own process (see below): starts a Redis, prints its PID and port, and
/// exits without dropping it, as a test binary does with one kept in a `static`.
#[allow(
    clippy::print_stdout,
    reason = "the parent reads this line; a test may panic if it cannot be written"
)]
fn owner_that_never_drops() {
    let redis = RedisServer::start().unwrap();
    println!("redis {} {}", redis.pid().unwrap(), redis.port());
    std::mem::forget(redis);
}

#[test]
fn a_redis_never_dropped_dies_with_the_process_that_started_it() {
    if std::env::var_os("DEVICEFLOW_TESTKIT_OWNER").is_some() {
        return owner_that_never_drops();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_redis_never_dropped_dies_with_the_process_that_started_it",
            "--nocapture",
        ])
        .env("DEVICEFLOW_TESTKIT_OWNER", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("redis "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let (pid, port) = line.split_once(' ').unwrap();
    let (pid, port): (u32, u16) = (pid.parse().unwrap(), port.parse().unwrap());
    // The owner has exited; its watchdog kills the Redis within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !alive(pid),
        "redis-server {pid} outlived the process that started it"
    );
    assert!(refuses(port));
}
