//! Sonyflake customer IDs (SPEC section 3): 39 bits of time in 10 ms units since
//! 2014-09-01 UTC, an 8-bit sequence, a 16-bit machine id. Unique across replicas as long as
//! each replica has its own machine id (`MACHINE_ID`; by default the low 16 bits of the
//! host's private IPv4 address, as the Go library does).

use std::sync::{Arc, Mutex};

use crate::domain::clock::Clock;

/// 2014-09-01T00:00:00Z in milliseconds.
const EPOCH_MILLIS: u64 = 1_409_529_600_000;
const TIME_UNIT_MILLIS: u64 = 10;
const SEQUENCE_BITS: u32 = 8;
const MACHINE_BITS: u32 = 16;
const TIME_BITS: u32 = 39;

#[derive(Debug, Default)]
struct State {
    elapsed: u64,
    sequence: u64,
}

pub struct IdGenerator {
    machine_id: u16,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Debug, thiserror::Error)]
#[error("the Sonyflake time range (174 years from 2014) is exhausted")]
pub struct IdOverflow;

impl IdGenerator {
    pub fn new(machine_id: u16, clock: Arc<dyn Clock>) -> Self {
        Self {
            machine_id,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    pub fn machine_id(&self) -> u16 {
        self.machine_id
    }

    /// The next ID. When 256 IDs were taken within one 10 ms unit, the next unit is used
    /// ahead of the clock instead of sleeping: IDs stay unique and ordered without blocking.
    pub fn next_id(&self) -> Result<u64, IdOverflow> {
        let now = self.clock.now_millis().saturating_sub(EPOCH_MILLIS) / TIME_UNIT_MILLIS;
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.elapsed < now {
            state.elapsed = now;
            state.sequence = 0;
        } else {
            state.sequence = (state.sequence + 1) & ((1 << SEQUENCE_BITS) - 1);
            if state.sequence == 0 {
                state.elapsed += 1;
            }
        }
        if state.elapsed >= 1 << TIME_BITS {
            return Err(IdOverflow);
        }
        Ok(state.elapsed << (SEQUENCE_BITS + MACHINE_BITS)
            | state.sequence << MACHINE_BITS
            | u64::from(self.machine_id))
    }
}

/// The machine id: `configured` (`MACHINE_ID`), else the low 16 bits of the private IPv4
/// address, else random (with a warning to set it). Logged with where it came from.
pub fn machine_id(configured: Option<u16>) -> u16 {
    let (id, source) = match configured {
        Some(id) => (id, "MACHINE_ID"),
        None => match machine_id_from_private_ip() {
            Some(id) => (id, "private IPv4 address"),
            None => (
                rand::random(),
                "random (no private IPv4 address; set MACHINE_ID)",
            ),
        },
    };
    tracing::info!(machine_id = id, source, "Sonyflake machine id");
    id
}

/// The low 16 bits of the first private IPv4 address of this host, as sonyflake's default.
pub fn machine_id_from_private_ip() -> Option<u16> {
    private_ipv4_addresses()
        .into_iter()
        .next()
        .map(|ip| u16::from_be_bytes([ip.octets()[2], ip.octets()[3]]))
}

fn is_private(ip: std::net::Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 10
        || (o[0] == 172 && (16..32).contains(&o[1]))
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 169 && o[1] == 254)
}

#[cfg(unix)]
fn private_ipv4_addresses() -> Vec<std::net::Ipv4Addr> {
    let mut found = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list that we only read and then free once.
    #[expect(unsafe_code, reason = "getifaddrs has no safe wrapper in std")]
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return found;
        }
        let mut cursor = head;
        while !cursor.is_null() {
            let addr = (*cursor).ifa_addr;
            if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let v4 = &*(addr as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
                if is_private(ip) {
                    found.push(ip);
                }
            }
            cursor = (*cursor).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    found
}

#[cfg(not(unix))]
fn private_ipv4_addresses() -> Vec<std::net::Ipv4Addr> {
    Vec::new()
}

/// This replica's Sonyflake machine id, as configured.
#[derive(Debug, Clone)]
pub struct IdSettings {
    /// `None` = the low 16 bits of the private IPv4 address.
    pub machine_id: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Fixed(u64);
    impl Clock for Fixed {
        fn now_millis(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn layout_matches_sonyflake() {
        let at = EPOCH_MILLIS + 12_345 * TIME_UNIT_MILLIS;
        let ids = IdGenerator::new(0xBEEF, Arc::new(Fixed(at)));
        let first = ids.next_id().unwrap();
        assert_eq!(first >> 24, 12_345);
        assert_eq!((first >> 16) & 0xff, 0);
        assert_eq!(first & 0xffff, 0xBEEF);
        assert_eq!((ids.next_id().unwrap() >> 16) & 0xff, 1);
    }

    #[test]
    fn unique_and_increasing_even_past_256_per_tick() {
        let ids = IdGenerator::new(1, Arc::new(Fixed(EPOCH_MILLIS + 1_000)));
        let all: Vec<u64> = (0..2_000).map(|_| ids.next_id().unwrap()).collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    }

    #[test]
    fn different_machines_never_collide() {
        let clock: Arc<dyn Clock> = Arc::new(Fixed(EPOCH_MILLIS + 5));
        let a = IdGenerator::new(1, clock.clone());
        let b = IdGenerator::new(2, clock);
        let from_a: HashSet<u64> = (0..1000).map(|_| a.next_id().unwrap()).collect();
        assert!((0..1000).all(|_| !from_a.contains(&b.next_id().unwrap())));
    }

    #[test]
    fn private_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "127.0.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
