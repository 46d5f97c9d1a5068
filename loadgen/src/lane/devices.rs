//! The lane's devices by slot, kept in chunks that never move: adding a device never
//! copies the others. A vector that doubled as it filled copied itself whole (31 MB
//! at 262,144 devices a lane) and held the lane's thread for about 100 ms in the
//! middle of a run, which its requests then paid as lateness (README "Scale").

use std::ops::{Index, IndexMut};

use crate::device::Device;

/// Devices a chunk holds (about 7 MB of them).
const CHUNK: usize = 1 << 16;

#[derive(Default)]
pub(super) struct Devices {
    chunks: Vec<Vec<Device>>,
    len: usize,
}

impl Devices {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Adds `d` and returns its slot.
    pub(super) fn push(&mut self, d: Device) -> u32 {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks[self.len / CHUNK].push(d);
        self.len += 1;
        (self.len - 1) as u32
    }
}

impl Index<usize> for Devices {
    type Output = Device;

    fn index(&self, slot: usize) -> &Device {
        &self.chunks[slot / CHUNK][slot % CHUNK]
    }
}

impl IndexMut<usize> for Devices {
    fn index_mut(&mut self, slot: usize) -> &mut Device {
        &mut self.chunks[slot / CHUNK][slot % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::behaviour::Behaviour;
    use crate::device::Plan;

    #[test]
    fn slots_stay_put_across_chunks() {
        let mut devices = Devices::default();
        for id in 0..(CHUNK as u64 * 2 + 3) {
            let slot = devices.push(Device::new(id, Behaviour::Compliant, Plan::Never));
            assert_eq!(u64::from(slot), id);
        }
        assert_eq!(devices.len(), CHUNK * 2 + 3);
        let first = devices.chunks[0].as_ptr();
        devices.push(Device::new(7, Behaviour::Compliant, Plan::Never));
        assert_eq!(devices.chunks[0].as_ptr(), first, "a chunk never moves");
        assert_eq!(devices[CHUNK + 1].id, CHUNK as u64 + 1);
        devices[CHUNK * 2].polls = 4;
        assert_eq!(devices[CHUNK * 2].polls, 4);
    }
}
