//! `--shard i/n`: a run split over several machines (or processes). Device ids are
//! global; shard i of n takes the ids i-1, i-1+n, i-1+2n, … of the whole fleet, each
//! with the same behaviour, person and start time as in a single run, so the merged
//! shards (`RunData::merge` in `report/results.rs`) add up to one run of the whole fleet.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { index: 0, count: 1 }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    /// `i/n`, 1 ≤ i ≤ n.
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("\"{s}\": write the shard as i/n with 1 <= i <= n, e.g. 1/2");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i: u64 = i.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if i == 0 || n == 0 || i > n {
            return Err(bad());
        }
        Ok(Shard {
            index: i - 1,
            count: n,
        })
    }
}

impl Shard {
    /// How many of `devices` this shard runs.
    pub fn devices_of(&self, devices: u64) -> u64 {
        devices.saturating_sub(self.index).div_ceil(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_ids_without_overlap() {
        let a: Shard = "1/3".parse().unwrap();
        let c: Shard = "3/3".parse().unwrap();
        assert_eq!((a.index, a.count), (0, 3));
        assert_eq!(c.to_string(), "3/3");
        let total: u64 = (1..=3)
            .map(|i| format!("{i}/3").parse::<Shard>().unwrap().devices_of(10))
            .sum();
        assert_eq!(total, 10);
        assert!("0/2".parse::<Shard>().is_err());
        assert!("3/2".parse::<Shard>().unwrap_err().contains("1 <= i <= n"));
    }
}
