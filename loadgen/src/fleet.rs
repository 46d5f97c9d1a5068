//! A fleet: the shared state every device reports into, and the goose attack that
//! runs the devices.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deviceflow_conformance::approver::Approver;
use deviceflow_conformance::client::Client;
use goose::client::GooseClientBuilder;
use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::metrics::{GooseCoordinatedOmissionMitigation, GooseMetrics};
use goose::prelude::*;
use serde::Serialize;

use crate::behaviour::{Behaviour, Mix};
use crate::device::{run_device, DeviceRecord, Outcome, People};
use crate::timeline::Timeline;

/// What the operator expects the server to hand out; a mismatch is reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Expectations {
    pub expires_in: Option<u64>,
    pub interval: Option<u64>,
}

/// Shared by every device of a run.
pub struct Fleet {
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    pub client: Client,
    pub scope: Option<String>,
    pub approver: Approver,
    pub people: People,
    pub expect: Expectations,
    /// Poll once more after the token, to catch a second token for one code.
    pub verify_single_use: bool,
    /// A device gives up (outcome unfinished) after this long without a final answer.
    pub max_flow: Option<Duration>,
    pub start: Instant,
    pub timeline: Timeline,
    devices: Mutex<Vec<Arc<Mutex<DeviceRecord>>>>,
}

impl Fleet {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device_authorization_endpoint: String,
        token_endpoint: String,
        client: Client,
        scope: Option<String>,
        approver: Approver,
        people: People,
        expect: Expectations,
        verify_single_use: bool,
        horizon: Duration,
    ) -> Fleet {
        Fleet {
            device_authorization_endpoint,
            token_endpoint,
            client,
            scope,
            approver,
            people,
            expect,
            verify_single_use,
            max_flow: None,
            start: Instant::now(),
            timeline: Timeline::new(horizon.as_secs() as usize + 1),
            devices: Mutex::new(Vec::new()),
        }
    }

    pub fn register(&self, record: Arc<Mutex<DeviceRecord>>) {
        self.devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// A copy of every device's record so far.
    pub fn records(&self) -> Vec<DeviceRecord> {
        let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        devices
            .iter()
            .map(|d| d.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// (started, finished, tokens, slow_downs) so far, for the progress line.
    fn progress(&self) -> (usize, usize, usize, u64) {
        let devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let mut finished = 0;
        let mut tokens = 0;
        let mut slow = 0;
        for d in devices.iter() {
            let r = d.lock().unwrap_or_else(|e| e.into_inner());
            if r.finished_ms.is_some() {
                finished += 1;
            }
            if r.outcome == Outcome::Token {
                tokens += 1;
            }
            slow += u64::from(r.slow_downs);
        }
        (devices.len(), finished, tokens, slow)
    }
}

/// Runs `fleet` with goose, behaviours mixed by scenario weight. Without a run time,
/// each goose user is one device running one flow (`--iterations 1`), and the run ends
/// when every flow has. With `--run-time`, each goose user is a device slot that starts
/// a new device whenever its last flow ends, until the time is up (flows cut off are
/// counted unfinished). One HTTP client and pool is shared by every device. Prints a
/// progress line every `progress_every` unless zero.
pub async fn run(
    fleet: Arc<Fleet>,
    mix: &Mix,
    goose: GooseConfiguration,
    host: &str,
    progress_every: Duration,
) -> anyhow::Result<GooseMetrics> {
    let mut goose = goose;
    if goose.verbose == 0 && goose.quiet == 0 {
        // A line per device start and stop is noise at thousands of devices; -v brings
        // it back. (goose sets up its logger before defaults apply, hence here.)
        goose.quiet = 1;
    }
    let timed = goose.run_time.is_some() || goose.iterations.is_some();
    let mut attack = GooseAttack::initialize_with_config(goose)?
        .set_client_builder_without_cookies(
            GooseClientBuilder::new()
                .without_cookies()
                .timeout(Duration::from_secs(30)),
        )?;
    for &(behaviour, pct) in &mix.0 {
        let f = Arc::clone(&fleet);
        let device: TransactionFunction = Arc::new(move |user| {
            let f = Arc::clone(&f);
            Box::pin(async move { run_device(user, f, behaviour).await })
        });
        let scenario = Scenario::new(behaviour.as_str())
            .set_weight(pct as usize)?
            .register_transaction(Transaction::new(device).set_name("device flow"));
        attack = attack.register_scenario(scenario);
    }
    let mut attack = attack.set_default(GooseDefault::Host, host)?.set_default(
        GooseDefault::CoordinatedOmissionMitigation,
        GooseCoordinatedOmissionMitigation::Average,
    )?;
    if !timed {
        // One device flow per goose user.
        attack = attack.set_default(GooseDefault::Iterations, 1)?;
    }
    let ticker = (!progress_every.is_zero()).then(|| {
        let fleet = Arc::clone(&fleet);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(progress_every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (started, finished, tokens, slow) = fleet.progress();
                let s = fleet.start.elapsed().as_secs();
                let polls: u64 = (s.saturating_sub(progress_every.as_secs())..s)
                    .map(|sec| crate::timeline::Answer::ALL.iter().map(|a| fleet.timeline.answers_at(sec as usize, *a)).sum::<u64>())
                    .sum();
                eprintln!(
                    "[{s:4} s] devices {started} started, {finished} done, {tokens} tokens; {slow} slow_downs; {:.0} polls/s",
                    polls as f64 / progress_every.as_secs_f64()
                );
            }
        })
    });
    let metrics = attack.execute().await;
    if let Some(t) = ticker {
        t.abort();
    }
    metrics.map_err(|e| anyhow::anyhow!("goose: {e:?}"))
}

/// The behaviours in a mix, in a stable order.
pub fn behaviours(mix: &Mix) -> Vec<Behaviour> {
    let mut v: Vec<Behaviour> = mix.0.iter().map(|(b, _)| *b).collect();
    v.sort();
    v
}
