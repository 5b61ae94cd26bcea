//! Presence: each device claims online, away or do-not-disturb; a person's presence
//! combines their devices (offline when none is connected). Changes are announced only to
//! connections that follow that person, at most once per `min_interval`, and going offline
//! waits for `offline_grace` (so a page reload does not flicker). A device silent for
//! `away_after` counts as away.
//!
//! In a cluster each node knows its own devices and what the other nodes last said about
//! theirs (`Signal::Presence`, a change at a time plus a full snapshot every few seconds);
//! a node not heard from for `node_timeout` is forgotten, and its people go offline.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use qiao_bus::{NodeId, Status};
use qiao_domain::UserId;

use super::protocol::{ClientStatus, PresenceStatus};
use super::routing::ConnId;

/// How long a do-not-disturb turned off is still repeated to the other nodes (so one that
/// missed it catches up) before it is forgotten.
pub const DND_OFF_KEPT_MS: i64 = 10 * 60 * 1000;

#[derive(Clone, Copy, Debug)]
pub struct PresenceConfig {
    pub min_interval: Duration,
    pub offline_grace: Duration,
    pub away_after: Duration,
    /// Most people one connection may follow.
    pub max_subscriptions: usize,
    /// How long another node may stay silent before its people count as gone.
    pub node_timeout: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            min_interval: Duration::from_secs(2),
            offline_grace: Duration::from_secs(10),
            away_after: Duration::from_secs(300),
            max_subscriptions: 500,
            node_timeout: Duration::from_secs(15),
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
    /// Do-not-disturb settings: on or off, and when (ms since the epoch, for the latest to win
    /// across nodes). Settings turned off are forgotten after [`DND_OFF_KEPT_MS`].
    dnd: HashMap<UserId, (bool, i64)>,
    /// What followers were last told, and when.
    announced: HashMap<UserId, (PresenceStatus, Instant)>,
    /// People whose presence may have changed since it was last announced.
    dirty: HashSet<UserId>,
    /// When each person's last device disconnected.
    gone_since: HashMap<UserId, Instant>,
    followers: HashMap<UserId, HashSet<ConnId>>,
    following: HashMap<ConnId, Vec<UserId>>,
    /// What other nodes said about their devices.
    nodes: HashMap<NodeId, RemoteNode>,
    /// People whose devices here changed since the other nodes were last told.
    local_changed: HashSet<UserId>,
    /// What the other nodes were last told about this node's devices.
    published: HashMap<UserId, Status>,
}

struct RemoteNode {
    heard: Instant,
    users: HashMap<UserId, Status>,
}

impl Presence {
    pub fn new(config: PresenceConfig) -> Presence {
        Presence { config, ..Presence::default() }
    }

    /// The combined presence of a person now, over every node.
    pub fn status(&self, user: UserId, now: Instant) -> PresenceStatus {
        let remote = self.nodes.values().filter_map(|n| n.users.get(&user).copied());
        let mut combined = PresenceStatus::Offline;
        for s in self.local_status(user, now).into_iter().chain(remote) {
            combined = match (combined, s) {
                (_, Status::Dnd) | (PresenceStatus::Dnd, _) => PresenceStatus::Dnd,
                (_, Status::Online) | (PresenceStatus::Online, _) => PresenceStatus::Online,
                _ => PresenceStatus::Away,
            };
        }
        combined
    }

    /// A person's presence from the devices connected to this node only.
    pub fn local_status(&self, user: UserId, now: Instant) -> Option<Status> {
        let devices = self.devices.get(&user).filter(|d| !d.is_empty())?;
        if self.dnd.get(&user).is_some_and(|(on, _)| *on) {
            return Some(Status::Dnd);
        }
        let active = devices
            .values()
            .any(|d| d.status == ClientStatus::Online && now.duration_since(d.last_active) < self.config.away_after);
        Some(if active { Status::Online } else { Status::Away })
    }

    /// Whether any device anywhere is connected for this person.
    fn present(&self, user: UserId) -> bool {
        self.devices.contains_key(&user) || self.nodes.values().any(|n| n.users.contains_key(&user))
    }

    /// Another node said how its devices stand: every person it has when `full`, else
    /// only those that changed.
    pub fn remote(&mut self, node: NodeId, full: bool, users: Vec<(UserId, Option<Status>)>, now: Instant) {
        let entry = self.nodes.entry(node).or_insert_with(|| RemoteNode { heard: now, users: HashMap::new() });
        entry.heard = now;
        let mut touched: Vec<UserId> = Vec::new();
        if full {
            let old = std::mem::take(&mut entry.users);
            for (u, s) in &users {
                if let Some(s) = s {
                    entry.users.insert(*u, *s);
                }
                if old.get(u) != s.as_ref() {
                    touched.push(*u);
                }
            }
            touched.extend(old.into_keys().filter(|u| !entry.users.contains_key(u)));
        } else {
            for (u, s) in users {
                match s {
                    Some(s) => entry.users.insert(u, s),
                    None => entry.users.remove(&u),
                };
                touched.push(u);
            }
        }
        self.touch(touched, now);
    }

    /// Forgets what another node said (it left, or fell silent).
    pub fn node_gone(&mut self, node: NodeId, now: Instant) {
        if let Some(n) = self.nodes.remove(&node) {
            self.touch(n.users.into_keys().collect(), now);
        }
    }

    /// Forgets nodes not heard from for `node_timeout`.
    pub fn expire_nodes(&mut self, now: Instant) {
        let timeout = self.config.node_timeout;
        let silent: Vec<NodeId> =
            self.nodes.iter().filter(|(_, n)| now.duration_since(n.heard) >= timeout).map(|(id, _)| *id).collect();
        for node in silent {
            self.node_gone(node, now);
        }
    }

    fn touch(&mut self, users: Vec<UserId>, now: Instant) {
        for u in users {
            if self.present(u) {
                self.gone_since.remove(&u);
            } else {
                self.gone_since.entry(u).or_insert(now);
            }
            self.dirty.insert(u);
        }
    }

    /// Forgets what changed here (a single node has nobody to tell).
    pub fn drop_local_changes(&mut self) {
        self.local_changed.clear();
    }

    /// What the other nodes should be told about this node's devices: everyone connected
    /// here when `full`, else the people whose status here changed since last time.
    pub fn local_changes(&mut self, now: Instant, full: bool) -> Vec<(UserId, Option<Status>)> {
        let changed = std::mem::take(&mut self.local_changed);
        if full {
            let all: Vec<(UserId, Option<Status>)> =
                self.devices.keys().map(|u| (*u, self.local_status(*u, now))).collect();
            self.published = all.iter().filter_map(|(u, s)| s.map(|s| (*u, s))).collect();
            return all;
        }
        let mut out = Vec::new();
        for u in changed {
            let s = self.local_status(u, now);
            if self.published.get(&u).copied() != s {
                match s {
                    Some(s) => self.published.insert(u, s),
                    None => self.published.remove(&u),
                };
                out.push((u, s));
            }
        }
        out
    }

    pub fn connect(&mut self, conn: ConnId, user: UserId, now: Instant) {
        self.gone_since.remove(&user);
        self.devices.entry(user).or_default().insert(conn, Device { status: ClientStatus::Online, last_active: now });
        self.dirty.insert(user);
        self.local_changed.insert(user);
    }

    /// The person used a device (`active`, typing): it is online again if it said away or
    /// fell silent. Do-not-disturb, the person's own choice, stays.
    pub fn activity(&mut self, conn: ConnId, user: UserId, now: Instant) {
        if let Some(d) = self.devices.get_mut(&user).and_then(|d| d.get_mut(&conn)) {
            d.last_active = now;
            d.status = ClientStatus::Online;
            self.dirty.insert(user);
            self.local_changed.insert(user);
        }
    }

    /// A device's presence; `at` is the wall clock (ms). Returns the do-not-disturb setting it
    /// made (`dnd` turns it on, `online` off), for the other nodes.
    pub fn set(
        &mut self,
        conn: ConnId,
        user: UserId,
        status: ClientStatus,
        now: Instant,
        at: i64,
    ) -> Option<(bool, i64)> {
        let setting = match status {
            ClientStatus::Dnd => Some((true, at)),
            ClientStatus::Online => Some((false, at)),
            ClientStatus::Away => None,
        };
        if let Some((on, at)) = setting {
            self.do_not_disturb(user, on, at);
        }
        if let Some(d) = self.devices.get_mut(&user).and_then(|d| d.get_mut(&conn)) {
            d.status = if status == ClientStatus::Dnd { ClientStatus::Online } else { status };
            d.last_active = now;
        }
        self.dirty.insert(user);
        self.local_changed.insert(user);
        setting
    }

    /// A person's do-not-disturb setting, made `at` (ms) from any device on any node: the
    /// latest wins (on wins a tie); it covers their devices here.
    pub fn do_not_disturb(&mut self, user: UserId, on: bool, at: i64) {
        let newer = self.dnd.get(&user).is_none_or(|old| super::dnd::supersedes((on, at), *old));
        if !newer {
            return;
        }
        let was_on = self.dnd.get(&user).is_some_and(|(on, _)| *on);
        self.dnd.insert(user, (on, at));
        if was_on != on {
            self.dirty.insert(user);
            self.local_changed.insert(user);
        }
    }

    /// Whether the person has do-not-disturb on (as this node knows).
    pub fn do_not_disturb_on(&self, user: UserId) -> bool {
        self.dnd.get(&user).is_some_and(|(on, _)| *on)
    }

    /// The settings to repeat to the other nodes now and then (`now` in ms): all that are on,
    /// and those turned off within [`DND_OFF_KEPT_MS`] (older ones are forgotten).
    pub fn dnd_settings(&mut self, now: i64) -> Vec<(UserId, bool, i64)> {
        self.dnd.retain(|_, (on, at)| *on || now - *at < DND_OFF_KEPT_MS);
        self.dnd.iter().map(|(u, (on, at))| (*u, *on, *at)).collect()
    }

    pub fn disconnect(&mut self, conn: ConnId, user: UserId, now: Instant) {
        if let Some(d) = self.devices.get_mut(&user) {
            d.remove(&conn);
            if d.is_empty() {
                self.devices.remove(&user);
                if !self.present(user) {
                    self.gone_since.insert(user, now);
                }
            }
        }
        self.dirty.insert(user);
        self.local_changed.insert(user);
        self.unfollow(conn);
    }

    /// Replaces what `conn` follows; returns the presence of each one it did not follow
    /// before (to send now), and whether that is news to their other followers too.
    ///
    /// A snapshot must be what followers believe, or the next announcement repeats it. Someone
    /// never announced is believed offline; if they are not, announcing them now (to all
    /// their followers) keeps the snapshot both current and consistent.
    pub fn follow(&mut self, conn: ConnId, users: Vec<UserId>, now: Instant) -> Vec<(UserId, PresenceStatus, bool)> {
        let before: HashSet<UserId> = self.following.get(&conn).into_iter().flatten().copied().collect();
        self.unfollow(conn);
        let mut seen = HashSet::new();
        let users: Vec<UserId> =
            users.into_iter().filter(|u| seen.insert(*u)).take(self.config.max_subscriptions).collect();
        for u in &users {
            self.followers.entry(*u).or_default().insert(conn);
        }
        // Those followed already know their status, and hear its changes.
        let mut snapshot = Vec::new();
        for u in users.iter().filter(|u| !before.contains(u)) {
            match self.announced.get(u) {
                Some((status, _)) => snapshot.push((*u, *status, false)),
                None => {
                    let status = self.status(*u, now);
                    let news = status != PresenceStatus::Offline;
                    if news {
                        self.announced.insert(*u, (status, now));
                    }
                    snapshot.push((*u, status, news));
                }
            }
        }
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
        let gone: Vec<UserId> =
            self.gone_since.keys().filter(|u| self.present(**u) || !self.dirty.contains(u)).copied().collect();
        for u in gone {
            self.gone_since.remove(&u);
        }
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
            node_timeout: Duration::from_secs(15),
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
        p.set(1, u, ClientStatus::Away, t, 1000);
        assert_eq!(p.status(u, t), PresenceStatus::Online, "one active device is enough");
        p.set(2, u, ClientStatus::Away, t, 2000);
        assert_eq!(p.status(u, t), PresenceStatus::Away);
        p.set(2, u, ClientStatus::Dnd, t, 3000);
        assert_eq!(p.status(u, t), PresenceStatus::Dnd);
        p.set(1, u, ClientStatus::Online, t, 4000);
        assert_eq!(p.status(u, t), PresenceStatus::Online, "online clears do-not-disturb");
        // Silence turns a device away; using it brings it back.
        let later = t + Duration::from_secs(61);
        assert_eq!(p.status(u, later), PresenceStatus::Away);
        p.activity(2, u, later);
        assert_eq!(p.status(u, later), PresenceStatus::Online);
        // So does using a device that said away; do-not-disturb stays until `online`.
        p.set(1, u, ClientStatus::Away, later, 5000);
        p.set(2, u, ClientStatus::Away, later, 6000);
        p.activity(1, u, later);
        assert_eq!(p.status(u, later), PresenceStatus::Online);
        p.set(2, u, ClientStatus::Dnd, later, 7000);
        p.activity(1, u, later);
        assert_eq!(p.status(u, later), PresenceStatus::Dnd);
        p.set(1, u, ClientStatus::Online, later, 8000);
        // Another node's device turns it on and off (a signal), for the devices here too.
        p.do_not_disturb(u, true, 100_000);
        assert_eq!(p.status(u, later), PresenceStatus::Dnd);
        p.do_not_disturb(u, false, 100_001);
        assert_eq!(p.status(u, later), PresenceStatus::Online);
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
        p.set(1, u, ClientStatus::Away, t0, 9000);
        assert!(p.due(t0 + Duration::from_secs(1)).is_empty(), "too soon");
        assert_eq!(p.due(t0 + Duration::from_secs(2)), vec![(u, PresenceStatus::Away)]);
        // A reload: disconnect and reconnect within the grace period announces nothing.
        p.disconnect(1, u, t0 + Duration::from_secs(4));
        assert!(p.due(t0 + Duration::from_secs(5)).is_empty());
        p.connect(2, u, t0 + Duration::from_secs(6));
        p.set(2, u, ClientStatus::Away, t0 + Duration::from_secs(6), 10000);
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
        assert_eq!(snap[0], (people[0], PresenceStatus::Online, true), "never announced: news to all");
        assert_eq!(snap[1], (people[1], PresenceStatus::Offline, false));
        assert_eq!(p.followers(people[0]).collect::<Vec<_>>(), vec![1]);
        assert!(p.due(t + Duration::from_secs(1)).is_empty(), "the snapshot is not announced again");
        let again = p.follow(1, vec![people[1], people[4], people[4]], t);
        assert_eq!(again, vec![(people[4], PresenceStatus::Offline, false)], "only the newly followed");
        assert_eq!(p.followers(people[0]).count(), 0, "replaced");
        p.disconnect(1, people[1], t);
        assert_eq!(p.followers(people[4]).count(), 0, "a disconnect drops what it followed");
    }

    #[test]
    fn other_nodes_count_until_they_leave_or_fall_silent() {
        let mut p = presence();
        let (u, v, t) = (UserId::new(), UserId::new(), Instant::now());
        let (a, b) = (NodeId(1), NodeId(2));
        p.remote(a, false, vec![(u, Some(Status::Away))], t);
        assert_eq!(p.status(u, t), PresenceStatus::Away);
        p.connect(1, u, t);
        assert_eq!(p.status(u, t), PresenceStatus::Online, "online here beats away there");
        p.remote(b, true, vec![(u, Some(Status::Dnd)), (v, Some(Status::Online))], t);
        assert_eq!(p.status(u, t), PresenceStatus::Dnd);
        assert_eq!(p.status(v, t), PresenceStatus::Online);
        let due = p.due(t);
        assert!(due.contains(&(u, PresenceStatus::Dnd)) && due.contains(&(v, PresenceStatus::Online)), "{due:?}");
        // A full snapshot without v: v left node b, and goes offline after the grace period.
        let t1 = t + Duration::from_secs(5);
        p.remote(b, true, vec![(u, Some(Status::Dnd))], t1);
        assert_eq!(p.status(v, t1), PresenceStatus::Offline);
        assert!(!p.due(t1).contains(&(v, PresenceStatus::Offline)), "grace period");
        assert!(p.due(t1 + Duration::from_secs(11)).contains(&(v, PresenceStatus::Offline)));
        // Node a falls silent; b is still heard; a's people are forgotten.
        p.disconnect(1, u, t1);
        p.expire_nodes(t + Duration::from_secs(16));
        assert_eq!(p.status(u, t1), PresenceStatus::Dnd, "still on node b");
        p.expire_nodes(t1 + Duration::from_secs(15));
        assert_eq!(p.status(u, t1), PresenceStatus::Offline, "node b fell silent too");
        p.remote(b, false, vec![(v, Some(Status::Online))], t1);
        p.node_gone(b, t1);
        assert_eq!(p.status(v, t1), PresenceStatus::Offline, "a node that leaves takes its people");
    }

    #[test]
    fn do_not_disturb_the_latest_setting_wins_and_is_repeated_until_forgotten() {
        let mut p = presence();
        let (u, v, t) = (UserId::new(), UserId::new(), Instant::now());
        p.connect(1, u, t);
        // Turned on here at 10 s, off on another node at 9 s (a signal that crossed ours):
        // the later one wins on every node, whatever order they arrive in.
        assert_eq!(p.set(1, u, ClientStatus::Dnd, t, 10_000), Some((true, 10_000)));
        p.do_not_disturb(u, false, 9_000);
        assert_eq!(p.status(u, t), PresenceStatus::Dnd);
        p.do_not_disturb(u, false, 11_000);
        assert_eq!(p.status(u, t), PresenceStatus::Online);
        p.do_not_disturb(u, true, 10_500);
        assert_eq!(p.status(u, t), PresenceStatus::Online, "an older setting repeated later changes nothing");
        assert_eq!(p.set(1, u, ClientStatus::Away, t, 12_000), None, "away is the device's, not a setting");
        // Repeated to the other nodes: everything on, and what was turned off lately.
        p.do_not_disturb(v, true, 12_000);
        let mut repeated = p.dnd_settings(20_000);
        repeated.sort_by_key(|s| s.2);
        assert_eq!(repeated, vec![(u, false, 11_000), (v, true, 12_000)]);
        assert_eq!(p.dnd_settings(11_000 + DND_OFF_KEPT_MS), vec![(v, true, 12_000)], "an old 'off' is forgotten");
    }

    #[test]
    fn this_nodes_changes_are_published_once() {
        let mut p = presence();
        let (u, t) = (UserId::new(), Instant::now());
        p.connect(1, u, t);
        assert_eq!(p.local_changes(t, false), vec![(u, Some(Status::Online))]);
        p.activity(1, u, t);
        assert!(p.local_changes(t, false).is_empty(), "nothing new to say");
        p.set(1, u, ClientStatus::Dnd, t, 11000);
        assert_eq!(p.local_changes(t, false), vec![(u, Some(Status::Dnd))]);
        assert_eq!(p.local_changes(t, true), vec![(u, Some(Status::Dnd))], "a snapshot lists everyone");
        p.disconnect(1, u, t);
        assert_eq!(p.local_changes(t, false), vec![(u, None)]);
        assert!(p.local_changes(t, true).is_empty());
    }
}
