//! Presence: each device claims online, away or do-not-disturb; a person's presence
//! combines their devices (offline when none is connected). Changes are announced only to
//! connections that follow that person, at most once per `min_interval`, and going offline
//! waits for `offline_grace` (so a page reload does not flicker). A device silent for
//! `away_after` counts as away.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use qiao_domain::UserId;

use super::protocol::{ClientStatus, PresenceStatus};
use super::routing::ConnId;

#[derive(Clone, Copy, Debug)]
pub struct PresenceConfig {
    pub min_interval: Duration,
    pub offline_grace: Duration,
    pub away_after: Duration,
    /// Most people one connection may follow.
    pub max_subscriptions: usize,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            min_interval: Duration::from_secs(2),
            offline_grace: Duration::from_secs(10),
            away_after: Duration::from_secs(300),
            max_subscriptions: 500,
        }
    }
}

struct Device {
    status: ClientStatus,
    last_active: Instant,
}

#[derive(Default)]
pub struct Presence {
    config: PresenceConfig,
    devices: HashMap<UserId, HashMap<ConnId, Device>>,
    dnd: HashSet<UserId>,
    /// What followers were last told, and when.
    announced: HashMap<UserId, (PresenceStatus, Instant)>,
    /// People whose presence may have changed since it was last announced.
    dirty: HashSet<UserId>,
    /// When each person's last device disconnected.
    gone_since: HashMap<UserId, Instant>,
    followers: HashMap<UserId, HashSet<ConnId>>,
    following: HashMap<ConnId, Vec<UserId>>,
}

impl Presence {
    pub fn new(config: PresenceConfig) -> Presence {
        Presence { config, ..Presence::default() }
    }

    /// The combined presence of a person now.
    pub fn status(&self, user: UserId, now: Instant) -> PresenceStatus {
        let Some(devices) = self.devices.get(&user).filter(|d| !d.is_empty()) else {
            return PresenceStatus::Offline;
        };
        if self.dnd.contains(&user) {
            return PresenceStatus::Dnd;
        }
        let active = devices
            .values()
            .any(|d| d.status == ClientStatus::Online && now.duration_since(d.last_active) < self.config.away_after);
        if active { PresenceStatus::Online } else { PresenceStatus::Away }
    }

    pub fn connect(&mut self, conn: ConnId, user: UserId, now: Instant) {
        self.gone_since.remove(&user);
        self.devices.entry(user).or_default().insert(conn, Device { status: ClientStatus::Online, last_active: now });
        self.dirty.insert(user);
    }

    /// A device said something (any frame but heartbeats).
    pub fn activity(&mut self, conn: ConnId, user: UserId, now: Instant) {
        if let Some(d) = self.devices.get_mut(&user).and_then(|d| d.get_mut(&conn)) {
            d.last_active = now;
            self.dirty.insert(user);
        }
    }

    pub fn set(&mut self, conn: ConnId, user: UserId, status: ClientStatus, now: Instant) {
        match status {
            ClientStatus::Dnd => {
                self.dnd.insert(user);
            }
            ClientStatus::Online => {
                self.dnd.remove(&user);
            }
            ClientStatus::Away => {}
        }
        if let Some(d) = self.devices.get_mut(&user).and_then(|d| d.get_mut(&conn)) {
            d.status = if status == ClientStatus::Dnd { ClientStatus::Online } else { status };
            d.last_active = now;
        }
        self.dirty.insert(user);
    }

    pub fn disconnect(&mut self, conn: ConnId, user: UserId, now: Instant) {
        if let Some(d) = self.devices.get_mut(&user) {
            d.remove(&conn);
            if d.is_empty() {
                self.devices.remove(&user);
                self.gone_since.insert(user, now);
            }
        }
        self.dirty.insert(user);
        self.unfollow(conn);
    }

    /// Replaces what `conn` follows; returns the current presence of each (to send now).
    pub fn follow(&mut self, conn: ConnId, users: Vec<UserId>, now: Instant) -> Vec<(UserId, PresenceStatus)> {
        self.unfollow(conn);
        let users: Vec<UserId> = users.into_iter().take(self.config.max_subscriptions).collect();
        for u in &users {
            self.followers.entry(*u).or_default().insert(conn);
        }
        let snapshot = users.iter().map(|u| (*u, self.announced_or_current(*u, now))).collect();
        self.following.insert(conn, users);
        snapshot
    }

    fn unfollow(&mut self, conn: ConnId) {
        for u in self.following.remove(&conn).unwrap_or_default() {
            if let Some(f) = self.followers.get_mut(&u) {
                f.remove(&conn);
                if f.is_empty() {
                    self.followers.remove(&u);
                }
            }
        }
    }

    /// What followers currently believe (the announced status), or the live one.
    fn announced_or_current(&self, user: UserId, now: Instant) -> PresenceStatus {
        self.announced.get(&user).map_or_else(|| self.status(user, now), |(s, _)| *s)
    }

    pub fn followers(&self, user: UserId) -> impl Iterator<Item = ConnId> + '_ {
        self.followers.get(&user).into_iter().flatten().copied()
    }

    /// Changes due for announcement at `now`: (person, new status).
    pub fn due(&mut self, now: Instant) -> Vec<(UserId, PresenceStatus)> {
        // Devices that went quiet turn away without saying so.
        let quiet: Vec<UserId> = self
            .devices
            .iter()
            .filter(|(u, _)| self.announced.get(u).is_some_and(|(s, _)| *s == PresenceStatus::Online))
            .map(|(u, _)| *u)
            .collect();
        self.dirty.extend(quiet);
        let mut out = Vec::new();
        let mut still = HashSet::new();
        for user in std::mem::take(&mut self.dirty) {
            let status = self.status(user, now);
            let (last, at) = self
                .announced
                .get(&user)
                .copied()
                .unwrap_or((PresenceStatus::Offline, now - self.config.offline_grace * 2));
            if status == last {
                continue;
            }
            // Offline only after the grace period since the last device left; anything else
            // at most once per `min_interval`.
            let grace_over = status != PresenceStatus::Offline
                || self
                    .gone_since
                    .get(&user)
                    .is_none_or(|since| now.duration_since(*since) >= self.config.offline_grace);
            if grace_over && now.duration_since(at) >= self.config.min_interval {
                self.announced.insert(user, (status, now));
                out.push((user, status));
            } else {
                still.insert(user);
            }
        }
        self.dirty = still;
        // Forget people who are offline and followed by nobody.
        self.announced.retain(|u, (s, _)| *s != PresenceStatus::Offline || self.followers.contains_key(u));
        let devices = &self.devices;
        let dirty = &self.dirty;
        self.gone_since.retain(|u, _| !devices.contains_key(u) && dirty.contains(u));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence() -> Presence {
        Presence::new(PresenceConfig {
            min_interval: Duration::from_secs(2),
            offline_grace: Duration::from_secs(10),
            away_after: Duration::from_secs(60),
            max_subscriptions: 3,
        })
    }

    #[test]
    fn devices_combine_into_one_status() {
        let mut p = presence();
        let (u, t) = (UserId::new(), Instant::now());
        assert_eq!(p.status(u, t), PresenceStatus::Offline);
        p.connect(1, u, t);
        p.connect(2, u, t);
        assert_eq!(p.status(u, t), PresenceStatus::Online);
        p.set(1, u, ClientStatus::Away, t);
        assert_eq!(p.status(u, t), PresenceStatus::Online, "one active device is enough");
        p.set(2, u, ClientStatus::Away, t);
        assert_eq!(p.status(u, t), PresenceStatus::Away);
        p.set(2, u, ClientStatus::Dnd, t);
        assert_eq!(p.status(u, t), PresenceStatus::Dnd);
        p.set(1, u, ClientStatus::Online, t);
        assert_eq!(p.status(u, t), PresenceStatus::Online, "online clears do-not-disturb");
        // Silence turns a device away.
        assert_eq!(p.status(u, t + Duration::from_secs(61)), PresenceStatus::Away);
        p.disconnect(1, u, t);
        p.disconnect(2, u, t);
        assert_eq!(p.status(u, t), PresenceStatus::Offline);
    }

    #[test]
    fn announcements_are_rate_limited_and_offline_waits_for_a_grace_period() {
        let mut p = presence();
        let (u, t0) = (UserId::new(), Instant::now());
        p.connect(1, u, t0);
        assert_eq!(p.due(t0), vec![(u, PresenceStatus::Online)]);
        p.set(1, u, ClientStatus::Away, t0);
        assert!(p.due(t0 + Duration::from_secs(1)).is_empty(), "too soon");
        assert_eq!(p.due(t0 + Duration::from_secs(2)), vec![(u, PresenceStatus::Away)]);
        // A reload: disconnect and reconnect within the grace period announces nothing.
        p.disconnect(1, u, t0 + Duration::from_secs(4));
        assert!(p.due(t0 + Duration::from_secs(5)).is_empty());
        p.connect(2, u, t0 + Duration::from_secs(6));
        p.set(2, u, ClientStatus::Away, t0 + Duration::from_secs(6));
        assert!(p.due(t0 + Duration::from_secs(20)).is_empty(), "still away, nothing to say");
        p.disconnect(2, u, t0 + Duration::from_secs(21));
        assert!(p.due(t0 + Duration::from_secs(21)).is_empty());
        assert_eq!(p.due(t0 + Duration::from_secs(33)), vec![(u, PresenceStatus::Offline)]);
    }

    #[test]
    fn following_is_bounded_and_returns_a_snapshot() {
        let mut p = presence();
        let t = Instant::now();
        let people: Vec<UserId> = (0..5).map(|_| UserId::new()).collect();
        p.connect(9, people[0], t);
        let snap = p.follow(1, people.clone(), t);
        assert_eq!(snap.len(), 3, "at most max_subscriptions");
        assert_eq!(snap[0], (people[0], PresenceStatus::Online));
        assert_eq!(snap[1].1, PresenceStatus::Offline);
        assert_eq!(p.followers(people[0]).collect::<Vec<_>>(), vec![1]);
        p.follow(1, vec![people[4]], t);
        assert_eq!(p.followers(people[0]).count(), 0, "replaced");
        p.disconnect(1, people[1], t);
        assert_eq!(p.followers(people[4]).count(), 0, "a disconnect drops what it followed");
    }
}
