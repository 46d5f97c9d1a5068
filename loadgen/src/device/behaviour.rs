//! How a simulated device polls: the compliant client of RFC 8628 §3.5 and the
//! misbehaviours seen in the field (checklist A.11).

use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// One kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// CL-01, CL-02: waits `interval`, adding 5 s per `slow_down`, for every poll.
    Compliant,
    /// Compliant on average, with ±300 ms of timer and network jitter per poll
    /// (what checklist PL-04 holds a server to).
    Jittery,
    /// Polls at half the interval it was told to keep (crush#3399, authd#784's 1 s
    /// polling "for UX"); it does add 5 s per slow_down, so it stays eager, not deaf.
    Eager,
    /// Ignores slow_down (cli/oauth#76 and others) and polls a little early, at 0.7 ×
    /// the first interval, forever: the client a server's slow_down exists for.
    Deaf,
    /// Compliant, but nobody ever looks at the code: it runs to `expired_token`.
    Abandoned,
}

impl Behaviour {
    pub const ALL: [Behaviour; 5] = [
        Behaviour::Compliant,
        Behaviour::Jittery,
        Behaviour::Eager,
        Behaviour::Deaf,
        Behaviour::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Compliant => "compliant",
            Behaviour::Jittery => "jittery",
            Behaviour::Eager => "eager",
            Behaviour::Deaf => "deaf",
            Behaviour::Abandoned => "abandoned",
        }
    }

    /// Whether this device keeps RFC 8628 §3.5's pace (so any slow_down it gets is the
    /// server's doing).
    pub fn is_compliant(self) -> bool {
        matches!(self, Behaviour::Compliant | Behaviour::Abandoned)
    }

    /// The wait before the next poll, given the server's `interval` (seconds) and the
    /// `slow_downs` received so far.
    pub fn wait(self, interval: u64, slow_downs: u64, rng: &mut impl Rng) -> Duration {
        let required = Duration::from_secs(interval + 5 * slow_downs);
        match self {
            Behaviour::Compliant | Behaviour::Abandoned => required,
            Behaviour::Jittery => {
                let j: i64 = rng.gen_range(-300..=300);
                if j >= 0 {
                    required + Duration::from_millis(j as u64)
                } else {
                    required.saturating_sub(Duration::from_millis((-j) as u64))
                }
            }
            Behaviour::Eager => required / 2,
            Behaviour::Deaf => Duration::from_millis(interval * 700),
        }
    }
}

impl FromStr for Behaviour {
    type Err = String;
    fn from_str(s: &str) -> Result<Behaviour, String> {
        Behaviour::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "\"{s}\" is not a behaviour; use compliant, jittery, eager, deaf or abandoned"
                )
            })
    }
}

/// The share of each behaviour in a fleet, in percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix(pub Vec<(Behaviour, u32)>);

impl Default for Mix {
    fn default() -> Mix {
        Mix(vec![
            (Behaviour::Compliant, 60),
            (Behaviour::Jittery, 15),
            (Behaviour::Eager, 10),
            (Behaviour::Deaf, 5),
            (Behaviour::Abandoned, 10),
        ])
    }
}

impl Mix {
    /// The behaviour for a roll of 0..100: each behaviour takes its percentage of the
    /// rolls, in the mix's order.
    pub fn pick(&self, roll: u32) -> Behaviour {
        let mut upto = 0;
        for &(b, pct) in &self.0 {
            upto += pct;
            if roll < upto {
                return b;
            }
        }
        self.0.last().map_or(Behaviour::Compliant, |(b, _)| *b)
    }
}

impl FromStr for Mix {
    type Err = String;
    /// `compliant=60,jittery=15,eager=10,deaf=5,abandoned=10`: percentages summing to 100.
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut parts = Vec::new();
        for item in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, pct) = item
                .split_once('=')
                .ok_or_else(|| format!("\"{item}\": write behaviour=percent, e.g. compliant=60"))?;
            let b: Behaviour = name.trim().parse()?;
            let pct: u32 = pct
                .trim()
                .parse()
                .map_err(|_| format!("\"{pct}\" is not a whole percentage"))?;
            if parts.iter().any(|(seen, _)| *seen == b) {
                return Err(format!("{} is given twice", b.as_str()));
            }
            if pct > 0 {
                parts.push((b, pct));
            }
        }
        let total: u32 = parts.iter().map(|(_, p)| p).sum();
        if total != 100 {
            return Err(format!(
                "the behaviour percentages add up to {total}, not 100"
            ));
        }
        Ok(Mix(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_follow_rfc_8628_or_break_it_as_designed() {
        let mut rng = rand::thread_rng();
        assert_eq!(
            Behaviour::Compliant.wait(5, 0, &mut rng),
            Duration::from_secs(5)
        );
        assert_eq!(
            Behaviour::Compliant.wait(5, 2, &mut rng),
            Duration::from_secs(15)
        );
        assert_eq!(
            Behaviour::Deaf.wait(5, 2, &mut rng),
            Duration::from_millis(3_500)
        );
        assert_eq!(
            Behaviour::Eager.wait(5, 1, &mut rng),
            Duration::from_secs(5)
        );
        for _ in 0..100 {
            let w = Behaviour::Jittery.wait(5, 1, &mut rng);
            assert!(
                w >= Duration::from_millis(9_700) && w <= Duration::from_millis(10_300),
                "{w:?}"
            );
        }
    }

    #[test]
    fn mixes_must_add_up_to_100() {
        let m: Mix = "compliant=70, deaf=30".parse().unwrap();
        assert_eq!(m.0, [(Behaviour::Compliant, 70), (Behaviour::Deaf, 30)]);
        assert!("compliant=70"
            .parse::<Mix>()
            .unwrap_err()
            .contains("add up to 70"));
        assert!("polite=100"
            .parse::<Mix>()
            .unwrap_err()
            .contains("not a behaviour"));
        assert!("compliant=50,compliant=50"
            .parse::<Mix>()
            .unwrap_err()
            .contains("twice"));
        assert!("compliant".parse::<Mix>().is_err());
        assert_eq!(Mix::default().0.iter().map(|(_, p)| p).sum::<u32>(), 100);
    }
}
